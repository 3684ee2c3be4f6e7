/**
 * The inference stack as the infrastructure tests build it: over a data stack, in an app of its own
 * checked by cdk-nag, and what its templates are expected to hold of the data stack's resources.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, expect } from 'vitest';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack, type InferenceStackProps } from '#lib/stacks/inference-stack.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { CDK_CONTEXT, NO_BUNDLING, synthFindings } from './cdk.ts';
import type { Statement } from './cfn-template.ts';

export const STAGE = 'test';
export const ENV = { account: '111122223333', region: 'eu-west-1' };

/** Scratch directory of the importing test file (cloud assemblies, configs), removed after its tests. */
export const TMP = mkdtempSync(join(tmpdir(), 'keel-inference-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** An app with cdk.json's context plus `context`, synthesizing into a directory of its own under TMP. */
export function newApp(context: Record<string, unknown> = {}): App {
  return new App({ context: { ...CDK_CONTEXT, ...context }, outdir: mkdtempSync(join(TMP, 'cdk.out-')) });
}

/** An app (bundling skipped) with the data stack alone, for stacks and constructs built over it. */
export function dataApp() {
  const app = newApp(NO_BUNDLING);
  return { app, data: new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV }) };
}

/** The data stack and an inference stack over it, in one app checked by cdk-nag. */
export function inferenceApp(
  props: Partial<InferenceStackProps> = {},
  context: Record<string, unknown> = {},
) {
  const app = newApp(context);
  addNagChecks(app);
  const data = new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV });
  const stack = new InferenceStack(app, 'Keel-test-Inference', {
    stage: STAGE,
    env: ENV,
    buckets: data.buckets,
    tables: data.tables,
    ...props,
  });
  return { app, data, stack };
}

/** {@link inferenceApp}, synthesized: what cdk-nag and CDK's checks found, the inference stack's template. */
export function synthesizedInferenceApp(
  props: Partial<InferenceStackProps> = {},
  context: Record<string, unknown> = {},
) {
  const built = inferenceApp(props, context);
  const findings = synthFindings(built.app);
  return { ...built, findings, template: Template.fromStack(built.stack) };
}

/** The generated part of an export name of the data stack (ExportsOutputFnGetAtt…). */
export const EXPORT_ID = /(?<=ExportsOutput)[A-Za-z0-9]+/;

/** `{Fn::ImportValue: "Keel-test-Data:ExportsOutput…<logical id>…"}` of an attribute of the data stack. */
function imported(logicalId: string): unknown {
  return {
    'Fn::ImportValue': expect.stringMatching(new RegExp(`^Keel-test-Data:ExportsOutput.*${logicalId}`)),
  };
}

const dataIds = (data: DataStack) => ({
  models: data.resolve(data.buckets.models.bucketName).Ref as string,
  registry: data.resolve(data.tables.modelRegistry.tableName).Ref as string,
  online: data.resolve(data.tables.onlineFeatures.tableName).Ref as string,
  outputs: data.resolve(data.buckets.outputs.bucketName).Ref as string,
});

/**
 * The variables the predict handler is configured through (readPredictConfig reads them), the same for
 * the Lambda function and the container; each adds its own (NODE_OPTIONS, PORT).
 */
export function predictVariables(data: DataStack): Record<string, unknown> {
  const ids = dataIds(data);
  return {
    [RESOURCE_ENV.models]: imported(ids.models),
    [RESOURCE_ENV.modelRegistry]: imported(ids.registry),
    [RESOURCE_ENV.onlineFeatures]: imported(ids.online),
    [RESOURCE_ENV.outputs]: imported(ids.outputs),
    KEEL_MODEL_NAME: 'churn',
    KEEL_MODEL_BACKEND: 'onnx',
    KEEL_CAPTURE_SAMPLE_RATE: '1',
    POWERTOOLS_SERVICE_NAME: 'keel',
    POWERTOOLS_METRICS_NAMESPACE: 'Keel',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
    POWERTOOLS_TRACER_CAPTURE_ERROR: 'false',
  };
}

/**
 * The statements serving needs (grantPredictAccess), for the role of the Lambda function or the task:
 * no write (captures leave as lines on stdout, test/infra/capture-stream.test.ts).
 */
export function servingStatements(data: DataStack): Statement[] {
  const ids = dataIds(data);
  return [
    {
      Effect: 'Allow',
      Action: 's3:GetObject',
      Resource: { 'Fn::Join': ['', [imported(ids.models), '/models/churn/*']] },
    },
    { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:Query'], Resource: imported(ids.registry) },
    {
      Effect: 'Allow',
      Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
      Resource: imported(ids.online),
    },
  ];
}
