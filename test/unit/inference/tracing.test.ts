import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PREDICT_POWERTOOLS } from '#lib/predict-settings.ts';
import { powertoolsVariables } from '#lib/process-environment.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import type { ModelHolder } from '#shared/inference/model-holder.ts';

/**
 * X-Ray gets no customer data from the predict handler (docs/security.md): with tracing on, as in
 * Lambda with the variables the stacks set, an invocation records its subsegment, annotations and
 * error flag, but neither the response (customer id, probability) nor an error's message.
 */

/** A sub/segment that records what the tracer writes into it, in place of X-Ray's. */
class RecordingSegment {
  readonly subsegments: RecordingSegment[] = [];
  readonly annotations: Record<string, unknown> = {};
  readonly metadata: Record<string, Record<string, unknown>> = {};
  readonly errors: unknown[] = [];
  errorFlag = false;
  closed = false;
  constructor(readonly name: string) {}
  addNewSubsegment(name: string) {
    const subsegment = new RecordingSegment(name);
    this.subsegments.push(subsegment);
    return subsegment;
  }
  addAnnotation(key: string, value: unknown) {
    this.annotations[key] = value;
  }
  addMetadata(key: string, value: unknown, namespace = 'default') {
    this.metadata[namespace] = { ...this.metadata[namespace], [key]: value };
  }
  addError(error: unknown) {
    this.errors.push(error);
  }
  addErrorFlag() {
    this.errorFlag = true;
  }
  close() {
    this.closed = true;
  }
}

const CUSTOMER = 'c-0042-traced';

const event = (body: unknown) =>
  ({
    httpMethod: 'POST',
    path: '/predict',
    headers: {},
    isBase64Encoded: false,
    body: JSON.stringify(body),
    requestContext: { requestId: 'api-1' },
  }) as unknown as APIGatewayProxyEvent;

/** Every feature given, so the online store is never read; the model is a stub, or fails with `failure`. */
async function tracedInvocation(body: unknown, failure?: Error) {
  // The module-level tracer reads its switches when created: load it afresh in a Lambda-like environment.
  vi.resetModules();
  const { tracer } = await import('#shared/observability.ts');
  const { createApiHandler } = await import('#shared/inference/predict-handler.ts');
  expect(tracer.isTracingEnabled()).toBe(true);
  const lambdaSegment = new RecordingSegment('facade');
  let current = lambdaSegment;
  vi.spyOn(tracer.provider, 'getSegment').mockImplementation(() => current as never);
  vi.spyOn(tracer.provider, 'setSegment').mockImplementation((segment) => {
    current = segment as unknown as RecordingSegment;
  });
  const scorer = {
    kind: 'js',
    featureCount: 0,
    scoreOne: async () => {
      if (failure) throw failure;
      return 0.8125;
    },
  };
  const models = {
    requireServing: async () => ({
      champion: { name: 'churn', version: 'v3', threshold: 0.5, featureSet: FEATURE_SET, scorer },
    }),
  };
  const handler = createApiHandler(
    {
      models: models as unknown as ModelHolder,
      readRecords: () => Promise.reject(new Error('this test reads no store')),
      maxRecordAgeMs: 86_400_000,
    },
    { prediction() {} },
  );
  const response = await handler(event(body), { awsRequestId: 'lambda-1' } as Context);
  const [handlerSegment] = lambdaSegment.subsegments;
  return { response, handlerSegment: handlerSegment! };
}

const predictBody = async () => {
  const { generateRecords } = await import('#shared/data/generate.ts');
  const { FEATURE_FIELD_NAMES } = await import('#shared/features/index.ts');
  const [record] = generateRecords({ rows: 1, seed: 5, asOf: new Date('2026-01-01T00:00:00Z') });
  return {
    customerId: CUSTOMER,
    attributes: Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, record![name]])),
  };
};

describe('the predict handler under X-Ray', () => {
  beforeEach(() => {
    // Lambda's environment, plus exactly the Powertools variables the stacks give the predict process.
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs22.x');
    vi.stubEnv('_HANDLER', 'index.handler');
    vi.stubEnv('POWERTOOLS_TRACE_ENABLED', 'true');
    for (const [name, value] of Object.entries(powertoolsVariables(PREDICT_POWERTOOLS)))
      vi.stubEnv(name, value);
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('traces a prediction without putting its response in the trace, even without the variable', async () => {
    // The handler itself turns response capture off: the ECS container and a bench run get it too.
    vi.stubEnv('POWERTOOLS_TRACER_CAPTURE_RESPONSE', undefined);
    const { response, handlerSegment } = await tracedInvocation(await predictBody());
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain(CUSTOMER);
    // Traced: the handler's subsegment with its annotations, closed.
    expect(handlerSegment.name).toBe('## index.handler');
    expect(handlerSegment.annotations).toMatchObject({ Service: 'keel' });
    expect(handlerSegment.closed).toBe(true);
    // Nothing of the response: no metadata at all, and the customer id nowhere in the segment.
    expect(handlerSegment.metadata).toEqual({});
    expect(JSON.stringify(handlerSegment)).not.toContain(CUSTOMER);
  });

  it('keeps a failure’s message out of the trace, flagging the subsegment only', async () => {
    const failure = new Error(`scoring failed for ${CUSTOMER}`);
    const { response, handlerSegment } = await tracedInvocation(await predictBody(), failure);
    expect(response.statusCode).toBe(500);
    expect(handlerSegment.errorFlag).toBe(true);
    expect(handlerSegment.errors).toEqual([]);
    expect(handlerSegment.metadata).toEqual({});
    expect(JSON.stringify(handlerSegment)).not.toContain(CUSTOMER);
  });
});
