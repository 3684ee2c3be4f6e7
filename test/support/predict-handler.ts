import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT, FEATURE_FIELD_NAMES, FEATURE_SET } from '#shared/features/index.ts';
import type { ModelHolder } from '#shared/inference/model-holder.ts';
import { createApiHandler, createInferenceRuntime } from '#shared/inference/predict-handler.ts';

/**
 * The predict handler as the Lambda entry and the ECS container build it, for tests of what surrounds
 * the model (capture, metrics). Importing this module imports the observability module: a test that
 * turns Powertools' metrics on must set the variable before it imports this.
 */

/** A model holder whose champion, churn `version()`, scores every row 0.8. */
export function fixedScoreModels(version: () => string = () => 'v3'): ModelHolder {
  return {
    requireServing: async () => ({
      champion: {
        name: 'churn',
        version: version(),
        threshold: 0.5,
        featureSet: FEATURE_SET,
        scorer: {
          kind: 'js',
          featureCount: FEATURE_COUNT,
          scoreOne: async () => 0.8,
          scoreBatch: async (_x: Float32Array, rows: number) => new Float64Array(rows).fill(0.8),
          release: async () => undefined,
        },
      },
    }),
  } as unknown as ModelHolder;
}

/** The handler over `models`, capturing at `capture.sampleRate` when given. */
export function predictHandlerOver(models: ModelHolder, capture?: { readonly sampleRate: number }) {
  const runtime = createInferenceRuntime(
    {
      modelsBucket: 'm',
      registryTable: 'r',
      onlineTable: 'o',
      modelName: 'churn',
      refreshIntervalMs: 0,
      backend: 'onnx',
      sagemakerEndpoint: undefined,
      maxRecordAgeMs: 86_400_000,
      capture,
    },
    // Never called: every request carries all its fields, so the store is not read.
    { region: 'us-east-1', endpoints: { s3: 'http://127.0.0.1:9', dynamodb: 'http://127.0.0.1:9' } },
  );
  return {
    handler: createApiHandler({ ...runtime.deps, models }, runtime.observer),
    capture: runtime.capture,
  };
}

export const lambdaContext = { awsRequestId: 'lambda-1', functionName: 'keel-predict' } as Context;

/** A POST to `path` through API Gateway. */
export const apiEvent = (path: string, body: unknown) =>
  ({
    httpMethod: 'POST',
    path,
    headers: {},
    isBase64Encoded: false,
    body: JSON.stringify(body),
    requestContext: { requestId: 'api-1' },
  }) as unknown as APIGatewayProxyEvent;

const customer = [...generateRecords({ rows: 1, seed: 3, asOf: new Date('2026-01-01T00:00:00Z') })][0]!;
/** Every field a prediction needs, so that no request reads the store. */
export const customerAttributes = Object.fromEntries(
  FEATURE_FIELD_NAMES.map((name) => [name, customer[name]]),
);
