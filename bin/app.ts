import { App } from 'aws-cdk-lib';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';

// A fixed dummy account lets `cdk synth` run offline with no credentials; a deploy sets the real ones.
const env = {
  account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012',
  region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
};

const app = new App();
const stage: unknown = app.node.tryGetContext('stage') ?? 'dev';
if (typeof stage !== 'string') {
  throw new Error(`context "stage" must be a string, e.g. -c stage=dev (got ${JSON.stringify(stage)})`);
}
addNagChecks(app);

new DataStack(app, `Keel-${stage}-Data`, { stage, env });
