import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchDeps, planBatch, scoreSegment } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { readCapturedWindow } from '#shared/drift/job.ts';
import { encodeFeatures, FEATURE_COUNT } from '#shared/features/index.ts';
import {
  type CaptureEvent,
  type CaptureRecord,
  captureHourPrefix,
  createPredictionCapture,
  type PredictionCapture,
} from '#shared/inference/capture.ts';
import { readPredictConfig } from '#shared/inference/config.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';
import { startToggleProxy, type ToggleProxy } from '../support/toggle-proxy.ts';

/**
 * Prediction capture: what the API served reaches S3 in the background; an S3 outage neither fails
 * nor slows a request, and the buffered records are written once S3 is back.
 */
let aws: TestAws;
let s3Proxy: ToggleProxy;
let api: TestApi;
let capture: PredictionCapture;

const asOf = new Date();
const customers = [...generateRecords({ rows: 3000, seed: 21, asOf })];
const port = (url: string) => Number(new URL(url).port);

beforeAll(async () => {
  aws = await startTestAws();
  s3Proxy = await startToggleProxy(port(aws.target.endpoints!.s3));
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 20 });
  await promoteVersion(aws, version);
  await writeRecords(
    { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
    customers.slice(0, 300).map(({ churned: _label, ...raw }) => raw),
  );
  api = await startTestApi(aws, {
    // S3 (models and captures) behind a switch; DynamoDB direct.
    target: {
      region: aws.target.region,
      endpoints: { s3: s3Proxy.url, dynamodb: aws.target.endpoints!.dynamodb },
    },
    refreshIntervalMs: 600_000,
    captureSampleRate: 1,
  });
  capture = api.capture!;
}, 60_000);

afterAll(async () => {
  await api?.close();
  await s3Proxy?.close();
  await aws?.close();
});

async function post(path: string, body: unknown) {
  const started = performance.now();
  const response = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { requestId: string; probability: number; prediction: number };
  return { status: response.status, body: json, ms: performance.now() - started };
}

async function capturedRecords(s3: S3Client, bucket: string): Promise<CaptureRecord[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'captures/' }));
  const records: CaptureRecord[] = [];
  for (const object of listed.Contents ?? []) {
    const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key! }));
    const text = await body.Body!.transformToString();
    records.push(
      ...text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as CaptureRecord),
    );
  }
  return records;
}

describe('prediction capture through the API', () => {
  it('writes a burst of predictions to S3 with the vector the model scored', async () => {
    await expect.poll(async () => (await fetch(`${api.url}/health`)).status, { timeout: 10_000 }).toBe(200);
    const one = await post('/predict', { customerId: 'c-000042' });
    expect(one.status).toBe(200);
    const batch = await post('/predict/batch', {
      items: customers.slice(0, 99).map((c) => ({ customerId: c.customer_id })),
    });
    expect(batch.status).toBe(200);
    expect(capture.stats()).toMatchObject({ sampled: 100 });
    await capture.flush();
    expect(capture.stats()).toMatchObject({ written: 100, buffered: 0, failedFlushes: 0 });

    const records = await capturedRecords(aws.clients.s3, aws.names.outputs);
    expect(records).toHaveLength(100);
    const mine = records.find((r) => r.requestId === one.body.requestId && r.customerId === 'c-000042')!;
    expect(mine).toMatchObject({
      model: 'churn',
      version: 'v1',
      probability: one.body.probability,
      prediction: one.body.prediction,
    });
    expect(Date.now() - Date.parse(mine.t)).toBeLessThan(60_000);
    const { churned: _label, ...raw } = customers[41]!;
    const encoded = encodeFeatures(raw);
    expect(encoded.ok).toBe(true);
    expect(mine.x).toEqual(Array.from(Float32Array.from(encoded.ok ? encoded.vector : [])));
    expect(records.every((r) => r.x.length === FEATURE_COUNT)).toBe(true);
    const listed = await aws.clients.s3.send(
      new ListObjectsV2Command({
        Bucket: aws.names.outputs,
        Prefix: captureHourPrefix('churn', new Date(mine.t)),
      }),
    );
    expect(listed.Contents?.[0]?.Key).toMatch(
      /^captures\/model=churn\/date=\d{4}-\d\d-\d\d\/hour=\d\d\/.+\.jsonl$/,
    );
  }, 20_000);

  it('answers 200 while S3 is down, and writes the buffered records once it is back', async () => {
    const before = capture.stats();
    await s3Proxy.down();
    try {
      const replies = [];
      for (let i = 0; i < 20; i++)
        replies.push(await post('/predict', { customerId: customers[i]!.customer_id }));
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
      // Nothing on the request path waits for S3: no reply took a retry's worth of time.
      expect(Math.max(...replies.map((r) => r.ms))).toBeLessThan(1_000);
      // A flush against the dead S3 fails in the background; the requests never waited for it.
      await capture.flush();
      const during = capture.stats();
      expect(during.failedFlushes).toBeGreaterThan(before.failedFlushes);
      expect(during.buffered).toBe(20);
      expect(during.written).toBe(before.written);
      const after = await post('/predict', { customerId: 'c-000001' });
      expect(after.status).toBe(200);
    } finally {
      await s3Proxy.up();
    }
    await capture.flush();
    expect(capture.stats()).toMatchObject({ buffered: 0, written: before.written + 21 });
    expect(await capturedRecords(aws.clients.s3, aws.names.outputs)).toHaveLength(before.written + 21);
  }, 30_000);
});

describe('createPredictionCapture', () => {
  const served = (i: number) => ({
    customerId: `c-${i}`,
    requestId: `r-${i}`,
    model: { name: 'churn', version: 'v1' },
    probability: 0.5,
    prediction: 1,
    vector: new Float32Array(FEATURE_COUNT).fill(i),
  });
  const failingS3 = (calls: { n: number }) =>
    ({
      send: async () => {
        calls.n++;
        throw new Error('S3 is down');
      },
    }) as unknown as S3Client;

  it('samples by rate: 0 captures nothing, 0.5 what the random draw lets through', () => {
    const calls = { n: 0 };
    const off = createPredictionCapture({ s3: failingS3(calls), bucket: 'b', sampleRate: 0 });
    for (let i = 0; i < 10; i++) off.record(served(i));
    expect(off.stats()).toMatchObject({ sampled: 0, buffered: 0 });
    let draw = 0;
    const half = createPredictionCapture({
      s3: failingS3(calls),
      bucket: 'b',
      sampleRate: 0.5,
      random: () => (draw++ % 2) * 0.9,
    });
    for (let i = 0; i < 10; i++) half.record(served(i));
    expect(half.stats()).toMatchObject({ sampled: 5, buffered: 5 });
    expect(calls.n).toBe(0);
  });

  it('bounds the buffer while S3 fails: the oldest are dropped and counted, requests never see it', async () => {
    const calls = { n: 0 };
    const events: CaptureEvent[] = [];
    const c = createPredictionCapture({
      s3: failingS3(calls),
      bucket: 'b',
      sampleRate: 1,
      batchSize: 5,
      maxBuffered: 8,
      onEvent: (e) => events.push(e),
    });
    for (let i = 0; i < 20; i++) c.record(served(i));
    await c.flush();
    const stats = c.stats();
    expect(stats.buffered).toBe(8);
    expect(stats.dropped).toBe(12);
    expect(stats.failedFlushes).toBeGreaterThanOrEqual(1);
    expect(events.some((e) => e.type === 'flush-failed')).toBe(true);
    expect(events.some((e) => e.type === 'dropped')).toBe(true);
    await c.close();
  });

  it('flushes by age without being asked', async () => {
    const sent: string[] = [];
    const s3 = {
      send: async (command: { input: { Key: string; Body: string } }) => {
        sent.push(command.input.Body);
        return {};
      },
    } as unknown as S3Client;
    const c = createPredictionCapture({ s3, bucket: 'b', sampleRate: 1, maxAgeMs: 50 });
    c.record(served(1));
    c.record(served(2));
    expect(sent).toHaveLength(0);
    await expect.poll(() => c.stats().written, { timeout: 2_000 }).toBe(2);
    expect(sent.join('').trim().split('\n')).toHaveLength(2);
  });

  it('costs microseconds per recorded prediction on the request path', () => {
    const c = createPredictionCapture({
      s3: failingS3({ n: 0 }),
      bucket: 'b',
      sampleRate: 1,
      batchSize: 1_000_000,
      maxBuffered: 1_000_000,
      maxAgeMs: 60_000,
    });
    const prediction = served(3);
    const n = 20_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) c.record(prediction);
    const perRecordUs = ((performance.now() - started) * 1000) / n;
    console.log(`capture.record: ${perRecordUs.toFixed(2)} µs per prediction`);
    expect(perRecordUs).toBeLessThan(50);
  });
});

describe('readPredictConfig capture settings', () => {
  const base = {
    [RESOURCE_ENV.models]: 'm',
    [RESOURCE_ENV.modelRegistry]: 'r',
    [RESOURCE_ENV.onlineFeatures]: 'o',
  };
  it('captures everything into the outputs bucket by default, nothing at rate 0 or without the bucket', () => {
    expect(readPredictConfig({ ...base, [RESOURCE_ENV.outputs]: 'out' }).capture).toEqual({
      bucket: 'out',
      sampleRate: 1,
    });
    expect(
      readPredictConfig({ ...base, [RESOURCE_ENV.outputs]: 'out', KEEL_CAPTURE_SAMPLE_RATE: '0.1' }).capture,
    ).toEqual({ bucket: 'out', sampleRate: 0.1 });
    expect(
      readPredictConfig({ ...base, [RESOURCE_ENV.outputs]: 'out', KEEL_CAPTURE_SAMPLE_RATE: '0' }).capture,
    ).toBeUndefined();
    expect(readPredictConfig(base).capture).toBeUndefined();
    expect(() => readPredictConfig({ ...base, KEEL_CAPTURE_SAMPLE_RATE: '1.5' })).toThrow(
      /KEEL_CAPTURE_SAMPLE_RATE/,
    );
  });
});

describe('batch scoring captures its predictions too', () => {
  const batchDeps = (capture?: BatchDeps['capture']): BatchDeps => ({
    registry: {
      s3: aws.clients.s3,
      dynamo: aws.clients.dynamo,
      bucket: aws.names.models,
      table: aws.names.modelRegistry,
    },
    dynamo: aws.clients.dynamo,
    s3: aws.clients.s3,
    onlineTable: aws.names.onlineFeatures,
    outputsBucket: aws.names.outputs,
    rawBucket: aws.names.raw,
    ...(capture ? { capture } : {}),
  });
  /** Scores the whole store in two segments; the prediction CSV lines by customer. */
  async function scoreStore(deps: BatchDeps) {
    const plan = await planBatch(deps, { name: 'churn', segments: 2 });
    const predictions = new Map<string, string[]>();
    for (const segment of plan.segments) {
      const result = await scoreSegment(deps, plan, segment);
      const part = await aws.clients.s3.send(
        new GetObjectCommand({ Bucket: aws.names.outputs, Key: result.key }),
      );
      for (const line of (await part.Body!.transformToString()).trim().split('\n').slice(1)) {
        const fields = line.split(',');
        predictions.set(fields[0]!, fields);
      }
    }
    return { plan, predictions };
  }
  const batchRecords = async () =>
    (await capturedRecords(aws.clients.s3, aws.names.outputs)).filter((r) => r.source === 'batch');

  it('writes every scored row as a capture record (source batch) the drift job reads, or none when off', async () => {
    const from = new Date();
    await scoreStore(batchDeps());
    expect(await batchRecords()).toEqual([]);

    const { plan, predictions } = await scoreStore(batchDeps({ sampleRate: 1 }));
    const records = await batchRecords();
    expect(records).toHaveLength(300);
    expect(new Set(records.map((r) => r.customerId)).size).toBe(300);
    for (const record of records) {
      const [, probability, prediction, version] = predictions.get(record.customerId)!;
      expect(record).toMatchObject({
        requestId: plan.runId,
        model: 'churn',
        version,
        probability: Number(probability),
        prediction: Number(prediction),
      });
    }
    const c42 = records.find((r) => r.customerId === 'c-000042')!;
    const { churned: _label, ...raw } = customers[41]!;
    const encoded = encodeFeatures(raw);
    expect(c42.x).toEqual(Array.from(Float32Array.from(encoded.ok ? encoded.vector : [])));
    // The API's records say where they came from as well.
    expect(
      (await capturedRecords(aws.clients.s3, aws.names.outputs)).filter((r) => r.source === 'api').length,
    ).toBeGreaterThan(0);

    const window = await readCapturedWindow(
      { s3: aws.clients.s3, outputsBucket: aws.names.outputs, modelName: 'churn' },
      'v1',
      from,
      new Date(Date.now() + 1),
    );
    expect(window.rows).toBe(300);
  }, 60_000);

  it('samples by the rate', async () => {
    const before = (await batchRecords()).length;
    let draw = 0;
    // Every other row is below 0.5.
    await scoreStore(batchDeps({ sampleRate: 0.5, random: () => (draw++ % 2 === 0 ? 0.25 : 0.75) }));
    expect((await batchRecords()).length - before).toBe(150);
  }, 60_000);
});
