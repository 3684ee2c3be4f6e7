import { App } from 'aws-cdk-lib';
import { contextChoice, contextString, INFERENCE_KINDS, modelBackendFromContext } from '#lib/context.ts';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack } from '#lib/stacks/inference-stack.ts';
import { MonitoringStack } from '#lib/stacks/monitoring-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';

// A fixed dummy account lets `cdk synth` run offline with no credentials; a deploy sets the real ones.
const env = {
  account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012',
  region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
};

const app = new App();
const stage = contextString(app.node, 'stage', 'dev');
const inference = contextChoice(app.node, 'inference', INFERENCE_KINDS, 'lambda');
const modelBackend = modelBackendFromContext(app.node);
addNagChecks(app);

const data = new DataStack(app, `Keel-${stage}-Data`, { stage, env });
const inferenceStack = new InferenceStack(app, `Keel-${stage}-Inference`, {
  stage,
  env,
  buckets: data.buckets,
  tables: data.tables,
  inference,
  modelBackend,
});
const pipelines = new PipelinesStack(app, `Keel-${stage}-Pipelines`, {
  stage,
  env,
  buckets: data.buckets,
  tables: data.tables,
});
new MonitoringStack(app, `Keel-${stage}-Monitoring`, {
  stage,
  env,
  stateMachines: pipelines.stateMachines,
  schedulesDeadLetterQueue: pipelines.schedules.deadLetterQueue,
  predictFunction: inferenceStack.predictFunction?.function,
  predictLogGroup: inferenceStack.predictFunction?.logGroup,
  api: inferenceStack.api.api,
  // The hourly drift job publishes the metrics the drift alarms watch.
  driftJob: { buckets: data.buckets, tables: data.tables },
  // On-call endpoints: -c onCallEmail=… -c onCallWebhookUrl=https://…, or the stack's deploy-time
  // parameters OnCallEmail / OnCallWebhookUrl when these are absent.
  onCallEmail: contextString(app.node, 'onCallEmail'),
  onCallWebhookUrl: contextString(app.node, 'onCallWebhookUrl'),
  retrainOnDrift: contextChoice(app.node, 'retrainOnDrift', ['true', 'false'], 'false') === 'true',
});
