import { App } from 'aws-cdk-lib';
import { stageConfigFromContext } from '#lib/context.ts';
import { addKeelStacks } from '#lib/keel-app.ts';
import { addNagChecks } from '#lib/nag.ts';

// A fixed dummy account lets `cdk synth` run offline with no credentials; a deploy sets the real ones.
const env = {
  account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012',
  region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
};

const app = new App();
// `-c stage=prod` reads config/prod.json (`-c config=FILE` another file); see docs/configuration.md.
const { stage, config } = stageConfigFromContext(app.node);
addNagChecks(app);
addKeelStacks(app, { stage, env, config });
