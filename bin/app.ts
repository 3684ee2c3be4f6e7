import { App } from 'aws-cdk-lib';
import { addKeelStacks } from '#lib/keel-app.ts';
import { addNagChecks } from '#lib/nag.ts';
import { stageConfigFromContext } from '#lib/stage-context.ts';
import { KeelConfigError } from '#shared/config/keel-config.ts';

// A fixed dummy account lets `cdk synth` run offline with no credentials; a deploy sets the real ones.
const env = {
  account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012',
  region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
};

const app = new App();
// `-c stage=prod` reads config/prod.json (`-c config=FILE` another file); see docs/configuration.md.
const { stage, config } = (() => {
  try {
    return stageConfigFromContext(app.node);
  } catch (error) {
    // The message names the key, the value and what is allowed; a stack trace would only bury it.
    if (!(error instanceof KeelConfigError)) throw error;
    console.error(`${error.name}: ${error.message}`);
    process.exit(1);
  }
})();
addNagChecks(app);
addKeelStacks(app, { stage, env, config });
