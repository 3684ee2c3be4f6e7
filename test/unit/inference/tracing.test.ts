import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PREDICT_POWERTOOLS } from '#lib/predict-settings.ts';
import { powertoolsVariables } from '#lib/process-environment.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import type { ModelHolder } from '#shared/inference/model-holder.ts';
import { xrayTracingEnabled } from '#shared/observability.ts';

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
  const { createApiHandler } = await import('#shared/inference/predict-handler.ts');
  const { tracer } = await import('#shared/inference/tracing.ts');
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

describe('the X-Ray SDK, loaded only where it traces', () => {
  it('traces in Lambda only, unless POWERTOOLS_TRACE_ENABLED is false', () => {
    expect(xrayTracingEnabled({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' })).toBe(true);
    expect(
      xrayTracingEnabled({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'TRUE' }),
    ).toBe(true);
    expect(
      xrayTracingEnabled({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'False' }),
    ).toBe(false);
    // The ECS container: no X-Ray daemon beside it.
    expect(xrayTracingEnabled({ AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE' })).toBe(false);
    // The local platform, the command line, the benchmarks.
    expect(xrayTracingEnabled({ POWERTOOLS_TRACE_ENABLED: 'true' })).toBe(false);
  });

  /** Whether importing `modules` in a fresh process with `env` loads the X-Ray SDK (its async hooks). */
  async function loadsXray(modules: readonly string[], env: Record<string, string> = {}) {
    const script = `
      for (const m of ${JSON.stringify(modules)}) await import(m);
      const { createRequire } = await import('node:module');
      const loaded = Object.keys(createRequire(process.cwd() + '/').cache);
      console.log(JSON.stringify(loaded.some((path) => path.includes('/aws-xray-sdk-core/'))));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { env: { PATH: process.env.PATH ?? '', POWERTOOLS_LOG_LEVEL: 'SILENT', ...env } },
    );
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as boolean;
  }

  it('is not loaded by the pipelines, nor by the predict handler outside Lambda (the ECS container)', async () => {
    // Every pipeline task and the ECS container pay for its async hooks on every promise when it is.
    expect(
      await loadsXray([
        '#shared/observability.ts',
        '#shared/pipelines/step.ts',
        '#shared/etl/etl.ts',
        '#shared/batch/batch.ts',
        '#shared/inference/predict-handler.ts',
      ]),
    ).toBe(false);
    expect(
      await loadsXray(['#shared/inference/predict-handler.ts'], {
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
        POWERTOOLS_TRACE_ENABLED: 'false',
      }),
    ).toBe(false);
  }, 60_000);

  it('is loaded by the predict handler in Lambda', async () => {
    expect(
      await loadsXray(['#shared/inference/predict-handler.ts'], {
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      }),
    ).toBe(true);
  }, 60_000);
});
