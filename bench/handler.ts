/**
 * In-process latency of one prediction, one call at a time (as Lambda serves), after a warm-up:
 *   (a) features + model: `encodeFeatures` (shared/features) + the onnxruntime scorer's `scoreOne`;
 *   (b) the domain `predictOne`, with the online-store read against the embedded DynamoDB (dynalite);
 *   (c) the whole middy handler (Powertools logger, metrics, tracer, error mapping) invoked with an API
 *       Gateway event, no HTTP.
 * Plus the parts that explain the differences: encode only, scoreOne only, the store read alone.
 * Everything is built by the project's own `createInferenceRuntime` / `createApiHandler`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { encodeFeatures, FEATURE_FIELD_NAMES, type PartialFeatureFields } from '#shared/features/index.ts';
import { KEEL_ID_BODY, keelAttributesBody } from './bodies.ts';
import { apiGatewayEvent, BENCH_CUSTOMER, lambdaContext, servingEnvironment } from './events.ts';
import type { KeelFixture } from './keel-fixture.ts';
import { type LatencySummary, round, timeCalls } from './util.ts';

export interface HandlerBenchOptions {
  readonly calls: number;
  readonly warmup: number;
}

export interface HandlerBenchResult {
  calls: number;
  warmup: number;
  /** (a) encodeFeatures + Float32Array + onnxruntime scoreOne. */
  featuresAndModel: LatencySummary;
  encodeOnly: LatencySummary;
  scoreOneOnly: LatencySummary;
  /** The online-store read predictOne makes (BatchGetItem of one key against dynalite). */
  storeRead: LatencySummary;
  /** The same BatchGetItem as a plain keep-alive HTTP POST (no SDK): dynalite's share of storeRead. */
  storeReadWithoutSdk: LatencySummary;
  /** (b) predictOne({customerId}) and predictOne({customerId, attributes: every field}). */
  predictOne: LatencySummary;
  predictOneAttributes: LatencySummary;
  /** (c) the middy handler with an API Gateway event (JSON body parsed inside, EMF metrics flushed). */
  handler: LatencySummary;
  handlerAttributes: LatencySummary;
  /** Non-200 results of the handler calls (must be 0). */
  handlerNon200: number;
  /** The same customer's probability from (a), (b) and (c): they must agree. */
  probability: { featuresAndModel: number; predictOne: number; handler: number };
  model: { version: string; trees: number };
}

export async function runHandlerBench(
  fixture: KeelFixture,
  options: HandlerBenchOptions,
): Promise<HandlerBenchResult> {
  // Powertools reads its settings when the observability module is first imported: set them, then load.
  for (const [name, value] of Object.entries(servingEnvironment())) process.env[name] ??= value;
  const { redirectMetrics } = await import('#shared/observability.ts');
  const { createApiHandler, createInferenceRuntime } = await import('#shared/inference/predict-handler.ts');
  const { predictOne } = await import('#shared/inference/service.ts');
  await mkdir(join(fixture.home, 'metrics'), { recursive: true });
  const metricsSink = createWriteStream(join(fixture.home, 'metrics', 'bench-emf.jsonl'));
  redirectMetrics(metricsSink);

  const runtime = createInferenceRuntime(fixture.config, fixture.servers.target);
  const { deps, observer } = runtime;
  try {
    const model = await deps.models.require();
    const handler = createApiHandler(deps, observer);
    const fields: PartialFeatureFields = Object.fromEntries(
      FEATURE_FIELD_NAMES.map((name) => [name, fixture.sample[name]]),
    );
    const attributesBody = keelAttributesBody(fixture.sample);
    const attributesRequest = JSON.parse(attributesBody) as unknown;
    const encoded = encodeFeatures(fields);
    if (!encoded.ok) throw new Error(`the sample record does not encode: ${encoded.missing.join(', ')}`);
    const vector32 = Float32Array.from(encoded.vector);
    const timing = { calls: options.calls, warmup: options.warmup };

    const scoreFromFields = async () => {
      const e = encodeFeatures(fields);
      if (!e.ok) throw new Error('encode failed');
      return model.scorer.scoreOne(Float32Array.from(e.vector));
    };
    let handlerNon200 = 0;
    const invoke = async (body: string) => {
      const result = await handler(apiGatewayEvent('POST', '/predict', body), lambdaContext());
      if (result.statusCode !== 200) handlerNon200++;
      return result;
    };

    const featuresAndModel = await timeCalls(scoreFromFields, timing);
    const encodeOnly = await timeCalls(() => encodeFeatures(fields), timing);
    const scoreOneOnly = await timeCalls(() => model.scorer.scoreOne(vector32), timing);
    const storeRead = await timeCalls(() => deps.readRecords([BENCH_CUSTOMER]), timing);
    const rawRead = rawBatchGet(fixture);
    let storeReadWithoutSdk: LatencySummary;
    try {
      storeReadWithoutSdk = await timeCalls(rawRead.call, timing);
    } finally {
      rawRead.close();
    }
    const predictById = await timeCalls(
      () => predictOne(deps, { customerId: BENCH_CUSTOMER }, 'bench'),
      timing,
    );
    const predictWithAttributes = await timeCalls(() => predictOne(deps, attributesRequest, 'bench'), timing);
    const handlerById = await timeCalls(() => invoke(KEEL_ID_BODY), timing);
    const handlerWithAttributes = await timeCalls(() => invoke(attributesBody), timing);

    const viaHandler = JSON.parse((await invoke(KEEL_ID_BODY)).body) as { probability: number };
    const viaDomain = await predictOne(deps, { customerId: BENCH_CUSTOMER }, 'bench');
    return {
      calls: options.calls,
      warmup: options.warmup,
      featuresAndModel,
      encodeOnly,
      scoreOneOnly,
      storeRead,
      storeReadWithoutSdk,
      predictOne: predictById,
      predictOneAttributes: predictWithAttributes,
      handler: handlerById,
      handlerAttributes: handlerWithAttributes,
      handlerNon200,
      probability: {
        featuresAndModel: round(await scoreFromFields(), 6),
        predictOne: round(viaDomain.body.probability, 6),
        handler: round(viaHandler.probability, 6),
      },
      model: { version: model.version, trees: fixture.info.model.trees },
    };
  } finally {
    await runtime.close();
    // Later metric lines (none are expected) go nowhere instead of to a closed file.
    redirectMetrics(new Writable({ write: (_chunk, _encoding, callback) => callback() }));
    await new Promise<void>((resolve) => metricsSink.end(resolve));
  }
}

/**
 * BatchGetItem of the bench customer straight over HTTP (keep-alive, like the SDK's handler) with a
 * dummy signature, which dynalite does not check: what the embedded DynamoDB costs without the client.
 */
function rawBatchGet(fixture: KeelFixture): { call: () => Promise<void>; close: () => void } {
  const endpoint = new URL(fixture.servers.target.endpoints!.dynamodb);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({
    RequestItems: { [fixture.config.onlineTable]: { Keys: [{ customer_id: { S: BENCH_CUSTOMER } }] } },
  });
  const headers = {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(body),
    'x-amz-target': 'DynamoDB_20120810.BatchGetItem',
    'x-amz-date': '20260101T000000Z',
    authorization:
      'AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
  };
  const call = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { host: endpoint.hostname, port: endpoint.port, path: '/', method: 'POST', headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode !== 200 || !text.includes(BENCH_CUSTOMER)) {
              reject(new Error(`dynalite answered ${res.statusCode}: ${text.slice(0, 200)}`));
            } else resolve();
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { call, close: () => agent.destroy() };
}
