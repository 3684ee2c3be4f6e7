import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import {
  encodeFeatures,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  featureSetOf,
  type RawRecord,
} from '#shared/features/index.ts';
import { type ApiServer, startApiServer } from '#shared/http/apigw-server.ts';
import { MAX_BODY_BYTES } from '#shared/http/responses.ts';
import { openApiDocument } from '#shared/inference/openapi.ts';
import { createApiHandler, createInferenceRuntime } from '#shared/inference/predict-handler.ts';
import type { InferenceDeps } from '#shared/inference/service.ts';
import { createJsScorer } from '#shared/model/scorer.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { promote, type RegistryDeps, rollback } from '#shared/registry/registry.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { LATER_FIELD, laterFieldDefinition } from '../support/feature-definitions.ts';
import { validateJson } from '../support/json-schema.ts';
import { registerModelOn, registerTrainedModel } from '../support/model.ts';
import { startToggleProxy, type ToggleProxy } from '../support/toggle-proxy.ts';

/**
 * The predict handler over real HTTP (the API Gateway adapter), against the local S3 and DynamoDB
 * behind switchable proxies: every route and error code of the contract (docs/architecture.md, "Inference API").
 */
let aws: TestAws;
let s3Proxy: ToggleProxy;
let dynamoProxy: ToggleProxy;
let api: ApiServer;
let testApi: TestApi;
let registry: RegistryDeps;

const asOf = new Date();
const customers = [...generateRecords({ rows: 3000, seed: 21, asOf })];

const trainVersion = (seed: number, nTrees: number) => registerTrainedModel(aws, customers, { seed, nTrees });

const port = (url: string) => Number(new URL(url).port);
type ErrorReply = { error: { code: string; details?: unknown } };

beforeAll(async () => {
  aws = await startTestAws();
  s3Proxy = await startToggleProxy(port(aws.target.endpoints!.s3));
  dynamoProxy = await startToggleProxy(port(aws.target.endpoints!.dynamodb));
  const proxied = { region: aws.target.region, endpoints: { s3: s3Proxy.url, dynamodb: dynamoProxy.url } };
  testApi = await startTestApi(aws, { target: proxied, refreshIntervalMs: 200 });
  api = testApi.server;
  registry = {
    s3: aws.clients.s3,
    dynamo: aws.clients.dynamo,
    bucket: aws.names.models,
    table: aws.names.modelRegistry,
  };
  await writeRecords(
    { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
    customers.slice(0, 500).map(({ churned: _label, ...raw }) => raw),
  );
});

afterAll(async () => {
  await testApi?.close();
  await s3Proxy?.close();
  await dynamoProxy?.close();
  await aws?.close();
});

async function call(
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  const result = {
    status: response.status,
    body: text ? JSON.parse(text) : undefined,
    headers: response.headers,
  };
  expectDocumented(method, path, result);
  return result;
}

const DOCUMENT = openApiDocument('/') as {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, { content: Record<string, { schema: Record<string, unknown> }> }> }
    >
  >;
};

/** Every answer of a documented route has its status in the OpenAPI document and a body its schema accepts. */
function expectDocumented(method: string, path: string, result: { status: number; body: unknown }) {
  const route = path.replace(/\?.*$/, '').replace(/(.)\/+$/, '$1');
  const operation = DOCUMENT.paths[route]?.[method.toLowerCase()];
  if (!operation) return;
  const response = operation.responses[String(result.status)];
  expect(response, `${method} ${path} answered ${result.status}, not in the OpenAPI document`).toBeDefined();
  const schema = response!.content['application/json']!.schema;
  expect(validateJson(DOCUMENT, schema, result.body), `${method} ${path} ${result.status}`).toEqual([]);
}
const post = (path: string, body: unknown) => call('POST', path, JSON.stringify(body));

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function expectError(response: { status: number; body: unknown }, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.body).toMatchObject({ error: { code, message: expect.any(String) } });
}

let v1: Awaited<ReturnType<typeof trainVersion>>;

describe('inference API over HTTP', () => {
  it('serves its OpenAPI document at GET /openapi.json', async () => {
    const response = await call('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.body).toEqual(openApiDocument(api.url));
    expect(Object.keys(response.body.paths).sort()).toEqual([
      '/health',
      '/openapi.json',
      '/predict',
      '/predict/batch',
    ]);
  });

  it('names the server that served it, which a generated client then calls', async () => {
    const serverOf = async (headers: Record<string, string> = {}) => {
      const { servers } = (await call('GET', '/openapi.json', undefined, headers)).body;
      expect(servers).toHaveLength(1);
      return servers[0].url as string;
    };
    const local = await serverOf();
    expect(local).toBe(`http://127.0.0.1:${api.port}`);
    // A client joins the server URL and the path, as generated clients do.
    const health = await fetch(`${local}/health`);
    expect(health.headers.get('x-amzn-requestid')).toBeTruthy();
    // fetch sends its own Host: ask as a client that named the host another way.
    const named = await new Promise<string>((resolve, reject) =>
      request(`${api.url}/openapi.json`, { headers: { host: `localhost:${api.port}` } }, (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve(JSON.parse(text).servers[0].url));
      })
        .on('error', reject)
        .end(),
    );
    expect(named).toBe(`http://localhost:${api.port}`);
    // Behind API Gateway's VPC link (the Fargate service), from the headers the integration maps.
    const forwarded = {
      'x-forwarded-host': 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
      'x-forwarded-prefix': 'v1',
      'x-forwarded-proto': 'https',
    };
    expect(await serverOf(forwarded)).toBe('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1');
    expect(await serverOf({ 'x-forwarded-host': 'bad host/x' })).toBe('/');
    expect(await serverOf()).toBe(local);
  });

  it('answers 503 NoModel on health and predict while no model is promoted', async () => {
    expectError(await call('GET', '/health'), 503, 'NoModel');
    expectError(await post('/predict', { customerId: 'c-000001' }), 503, 'NoModel');
    expectError(await post('/predict/batch', { items: [{ customerId: 'c-000001' }] }), 503, 'NoModel');
  });

  it('serves the champion once promoted, with the contract body', async () => {
    v1 = await trainVersion(1, 20);
    await promote(registry, {
      name: 'churn',
      version: v1.version,
      reason: 't',
      actor: 't',
    });
    await waitFor(async () => (await call('GET', '/health')).status === 200);
    expect((await call('GET', '/health')).body).toEqual({
      status: 'ok',
      model: { name: 'churn', version: 'v1' },
    });

    const response = await post('/predict', { customerId: 'c-000042' });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      customerId: 'c-000042',
      prediction: expect.any(Number),
      probability: expect.any(Number),
      model: { name: 'churn', version: 'v1', variant: 'champion' },
      featureSet: { version: FEATURE_SET.version, fingerprint: FEATURE_SET.fingerprint },
      requestId: expect.any(String),
    });
    const encoded = encodeFeatures(customers[41]!);
    if (!encoded.ok) throw new Error('unexpected');
    const expected = await createJsScorer(v1.model).scoreOne(Float32Array.from(encoded.vector));
    expect(Math.abs(response.body.probability - expected)).toBeLessThan(1e-6);
    expect(response.body.prediction).toBe(response.body.probability >= 0.5 ? 1 : 0);
    expect(response.headers.get('x-amzn-requestid')).toBe(response.body.requestId);
  });

  it('serves the verified champion through a SageMaker endpoint when that is the backend', async () => {
    const sagemaker = createInferenceRuntime(
      {
        modelsBucket: aws.names.models,
        registryTable: aws.names.modelRegistry,
        onlineTable: aws.names.onlineFeatures,
        modelName: 'churn',
        refreshIntervalMs: 0,
        backend: 'sagemaker',
        sagemakerEndpoint: 'churn-endpoint',
        maxRecordAgeMs: 86_400_000,
      },
      aws.target,
    );
    const model = await sagemaker.deps.models.require();
    expect(model.version).toBe('v1');
    expect(model.scorer.kind).toBe('sagemaker');
    await sagemaker.deps.models.close();
  });

  it('lets attributes override stored fields and scores customers the store does not know', async () => {
    const stored = await post('/predict', { customerId: 'c-000007' });
    const changed = await post('/predict', {
      customerId: 'c-000007',
      attributes: { support_tickets_90d: 12, tenure_months: 0 },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.probability).toBeGreaterThan(stored.body.probability);
    const { customer_id: _id, event_time: _t, churned: _c, ...fields } = customers[2999]!;
    const unknown = await post('/predict', {
      customerId: 'new-1',
      attributes: { ...fields, plan: 'enterprise' },
    });
    expect(unknown.status).toBe(200);
    expect(unknown.body.warnings).toEqual(['unseen category in: plan']);
  });

  it('accepts a full raw customer record in attributes (the contract lists event_time and customer_id too)', async () => {
    const { churned: _label, ...raw } = customers[2998]!;
    const full = await post('/predict', { customerId: raw.customer_id, attributes: raw });
    expect(full.status).toBe(200);
    expect(full.body.customerId).toBe(raw.customer_id);
    const other = await post('/predict', { customerId: 'c-000001', attributes: raw });
    expect(other.status).toBe(400);
    expect(other.body.error.details).toEqual([
      { path: 'attributes.customer_id', message: 'names another customer than customerId (c-000001)' },
    ]);
  });

  it('answers a batch in order, each item succeeding or failing on its own', async () => {
    const response = await post('/predict/batch', {
      items: [
        { customerId: 'c-000001' },
        { customerId: 'c-999999' },
        { customerId: 7 },
        { customerId: 'c-000002' },
      ],
    });
    expect(response.status).toBe(200);
    const [a, b, c, d] = response.body.results;
    expect(a).toMatchObject({ customerId: 'c-000001', model: { version: 'v1' } });
    expect(b).toEqual({ error: expect.objectContaining({ code: 'UnknownEntity' }) });
    expect(c).toEqual({
      error: expect.objectContaining({
        code: 'ValidationError',
        details: [expect.objectContaining({ path: 'items.2.customerId' })],
      }),
    });
    expect(d).toMatchObject({ customerId: 'c-000002' });
    const single = await post('/predict', { customerId: 'c-000001' });
    expect(Math.abs(a.probability - single.body.probability)).toBeLessThan(1e-6);
    expectError(await post('/predict/batch', { items: [] }), 400, 'ValidationError');
    expectError(
      await post('/predict/batch', {
        items: Array.from({ length: 101 }, () => ({ customerId: 'c-000001' })),
      }),
      400,
      'ValidationError',
    );
  });

  it('rejects bad input with 4xx and the contract error body, naming every bad field', async () => {
    const wrongTypes = await post('/predict', {
      customerId: 'c-000001',
      attributes: { income: 'lots', orders: 1.5, age: -3 },
      extra: true,
    });
    expectError(wrongTypes, 400, 'ValidationError');
    expect(wrongTypes.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(
      ['(body)', 'attributes.age', 'attributes.income', 'attributes.orders'].sort(),
    );
    expectError(await call('POST', '/predict', '{"customerId": "c-000001",'), 400, 'ValidationError');
    expectError(
      await call('POST', '/predict', '{"customerId":"c-000001","attributes":{"income":NaN}}'),
      400,
      'ValidationError',
    );
    const infinite = await call(
      'POST',
      '/predict',
      '{"customerId":"c-000001","attributes":{"income":1e400}}',
    );
    expectError(infinite, 400, 'ValidationError');
    expect(infinite.body.error.details[0].path).toBe('attributes.income');
    expectError(await call('POST', '/predict', '[[[['.repeat(50_000)), 400, 'ValidationError');
    expectError(
      await call('POST', '/predict', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      400,
      'ValidationError',
    );
    expectError(await call('POST', '/predict'), 400, 'ValidationError');
    expectError(await post('/predict', {}), 400, 'ValidationError');
    expectError(
      await call('POST', '/predict', JSON.stringify({ customerId: 'c-1', pad: 'x'.repeat(MAX_BODY_BYTES) })),
      413,
      'PayloadTooLarge',
    );
    expectError(await call('POST', '/predict', 'x'.repeat(11 * 1024 * 1024)), 413, 'PayloadTooLarge');
    expectError(await call('GET', '/nope'), 404, 'UnknownEntity');
    expectError(await call('DELETE', '/predict'), 404, 'UnknownEntity');
  });

  it('says 404 for an unknown customer and 422 naming missing fields for partial attributes', async () => {
    const unknown = await post('/predict', { customerId: 'c-999999' });
    expectError(unknown, 404, 'UnknownEntity');
    const partial = await post('/predict', { customerId: 'c-999999', attributes: { age: 30, income: 1000 } });
    expectError(partial, 422, 'IncompleteFeatures');
    expect(partial.body.error.details.missing).toEqual([
      'plan',
      'region',
      'tenure_months',
      'total_spend',
      'orders',
      'days_since_last_order',
    ]);
  });

  it('follows a promotion without dropping requests', async () => {
    const v2 = await trainVersion(2, 10);
    const results: number[] = [];
    let done = false;
    const load = (async () => {
      while (!done) results.push((await post('/predict', { customerId: 'c-000010' })).status);
    })();
    await promote(registry, {
      name: 'churn',
      version: v2.version,
      reason: 't',
      actor: 't',
    });
    await waitFor(
      async () => (await post('/predict', { customerId: 'c-000010' })).body.model.version === 'v2',
    );
    done = true;
    await load;
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results)).toEqual(new Set([200]));
  });

  it('promotes a version of another definition and rolls it back under load: no failed request, every answer stamped, the old scores exactly as before', async () => {
    const ids = customers.slice(0, 40).map((c) => c.customer_id);
    const scores = async () => {
      const { status, body } = await post('/predict/batch', {
        items: ids.map((customerId) => ({ customerId })),
      });
      expect(status).toBe(200);
      // Everything of each answer but the request's own id.
      return (body.results as { requestId: string; model: { version: string }; probability: number }[]).map(
        ({ requestId: _id, ...answer }) => answer,
      );
    };
    const before = await scores();
    expect(new Set(before.map((r) => r.model.version))).toEqual(new Set(['v2']));

    // A later definition reads logins_30d, a field this code's schema does not know: the ETL of a later
    // code loaded it into the store, and v3 was trained on it.
    const later = featureSetOf(laterFieldDefinition({ kind: 'impute', value: 0 }));
    const withLogins = customers.map((c, i) =>
      i % 2 === 0 ? { ...c, [LATER_FIELD]: c.churned ? 0 : 20 + (i % 7) } : c,
    );
    const v3 = await registerModelOn(registry, later, withLogins.slice(0, 1500), { seed: 3, nTrees: 10 });
    await writeRecords(
      { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
      withLogins.slice(0, 500).map(({ churned: _label, ...raw }) => raw as RawRecord),
    );
    const storeFields = new Set([...FEATURE_FIELD_NAMES, LATER_FIELD]);

    const answers: { status: number; version?: string; featureSet?: unknown }[] = [];
    let done = false;
    const load = (async () => {
      for (let i = 0; !done; i++) {
        const { status, body } = await post('/predict', { customerId: ids[i % ids.length] });
        answers.push({ status, version: body.model?.version, featureSet: body.featureSet });
      }
    })();
    const served = (version: string) => async () =>
      (await post('/predict', { customerId: ids[0] })).body.model?.version === version;
    await promote(registry, {
      name: 'churn',
      version: v3.version,
      reason: 'logins',
      actor: 't',
      storeFields,
    });
    // The load itself must meet each version, however fast the switches are.
    const loadMet = (version: string, from: number) => async () =>
      answers.slice(from).some((a) => a.version === version);
    // Every instance of the function has followed the move: past the refresh interval, a round of
    // concurrent requests (one per instance) all answered by `version`.
    const settledOn = async (version: string) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await waitFor(async () => {
        const round = await Promise.all(
          ids.slice(0, 6).map((customerId) => post('/predict', { customerId })),
        );
        return round.every((answer) => answer.body.model?.version === version);
      });
    };
    await waitFor(served(v3.version));
    await waitFor(loadMet(v3.version, 0));
    await settledOn(v3.version);
    const during = await scores();
    const rolledBackAt = answers.length;
    await rollback(registry, { name: 'churn', reason: 'roll back', actor: 't', storeFields });
    await waitFor(served('v2'));
    await waitFor(loadMet('v2', rolledBackAt));
    await settledOn('v2');
    done = true;
    await load;

    // No request failed, and every answer names the version and the feature set that produced it.
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const stamps = new Set(answers.map((a) => JSON.stringify([a.version, a.featureSet])));
    const stamp = (version: string, set: FeatureSet) =>
      JSON.stringify([version, { version: set.version, fingerprint: set.fingerprint }]);
    expect(stamps).toEqual(new Set([stamp('v2', FEATURE_SET), stamp(v3.version, later)]));
    // v3 scored each customer with its own features: the stored logins where the store has them.
    for (const [i, result] of during.entries()) {
      const { churned: _label, ...record } = withLogins[i]!;
      const encoded = later.encode(record);
      if (!encoded.ok) throw new Error('unexpected');
      const expected = await createJsScorer(v3.model).scoreOne(Float32Array.from(encoded.vector));
      expect(result.model.version).toBe(v3.version);
      expect(Math.abs(result.probability - expected)).toBeLessThan(1e-6);
    }
    // Rolled back, v2 scores exactly as before the change, the new field in the store notwithstanding.
    expect(await scores()).toEqual(before);
  });

  it('answers 503 Unavailable while DynamoDB is down and recovers by itself', async () => {
    await dynamoProxy.down();
    try {
      const started = Date.now();
      const down = await post('/predict', { customerId: 'c-000001' });
      expectError(down, 503, 'Unavailable');
      expect(down.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await post('/predict/batch', { items: [{ customerId: 'c-000001' }] })).status).toBe(503);
      // A request that carries every field never needs the store, so it is still answered.
      const { customer_id: _id, event_time: _t, churned: _c, ...fields } = customers[0]!;
      const complete = await post('/predict', { customerId: 'c-000001', attributes: fields });
      expect(complete.status).toBe(200);
      expect(complete.body.warnings).toBeUndefined();
    } finally {
      await dynamoProxy.up();
    }
    await waitFor(async () => (await post('/predict', { customerId: 'c-000001' })).status === 200);
  });

  it('answers 503 Unavailable on a cold start while S3 is down, and serves once it is back', async () => {
    await s3Proxy.down();
    const coldApi = await startTestApi(aws, {
      target: { region: aws.target.region, endpoints: { s3: s3Proxy.url, dynamodb: dynamoProxy.url } },
    });
    try {
      const response = await fetch(`${coldApi.url}/predict`, {
        method: 'POST',
        body: JSON.stringify({ customerId: 'c-000001' }),
      });
      expect(response.status).toBe(503);
      expect(((await response.json()) as ErrorReply).error.code).toBe('Unavailable');
      await s3Proxy.up();
      const ok = await fetch(`${coldApi.url}/predict`, {
        method: 'POST',
        body: JSON.stringify({ customerId: 'c-000001' }),
      });
      expect(ok.status).toBe(200);
    } finally {
      await s3Proxy.up().catch(() => undefined);
      await coldApi.close();
    }
  });

  it('answers 500 Internal without internals when something unexpected breaks', async () => {
    // A scorer that throws cannot be planted in the function's environment: this one runs in-process.
    const { deps } = createInferenceRuntime(
      {
        modelsBucket: aws.names.models,
        registryTable: aws.names.modelRegistry,
        onlineTable: aws.names.onlineFeatures,
        modelName: 'churn',
        refreshIntervalMs: 0,
        backend: 'onnx',
        sagemakerEndpoint: undefined,
        maxRecordAgeMs: 86_400_000,
      },
      aws.target,
    );
    const broken: InferenceDeps = {
      ...deps,
      models: {
        require: async () => ({
          ...(await deps.models.require()),
          scorer: {
            scoreOne: async () => {
              throw new Error('secret internal detail at /opt/x');
            },
          },
        }),
      } as unknown as InferenceDeps['models'],
    };
    const brokenApi = await startApiServer({
      handler: createApiHandler(broken, { prediction() {} }),
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const response = await fetch(`${brokenApi.url}/predict`, {
        method: 'POST',
        body: JSON.stringify({ customerId: 'c-000001' }),
      });
      const body = (await response.json()) as ErrorReply;
      expect(response.status).toBe(500);
      expect(body.error.code).toBe('Internal');
      expect(JSON.stringify(body)).not.toContain('secret');
      expect(body.error.details).toBeUndefined();
    } finally {
      await brokenApi.close();
      await deps.models.close();
    }
  });
});
