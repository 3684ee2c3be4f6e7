import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalApi } from '#local/api.ts';
import type { CaptureDelivery } from '#local/capture-delivery.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { type BatchDeps, planBatch, scoreSegment } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { readCapturedWindow } from '#shared/drift/job.ts';
import { encodeFeatures, FEATURE_COUNT } from '#shared/features/index.ts';
import {
  type CaptureRecord,
  captureHourPrefix,
  captureLine,
  captureRecord,
} from '#shared/inference/capture.ts';
import { jsonObjectsOf } from '#shared/inference/capture-reader.ts';
import { readPredictConfig } from '#shared/inference/predict-environment.ts';
import { isEmfLine, parseEmf } from '#shared/monitoring/emf.ts';
import { ROLLOUT_METRICS, VARIANT_DIMENSION } from '#shared/monitoring/metrics.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { endRollout, startRollout } from '#shared/registry/registry.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { servedPrediction } from '../support/capture.ts';
import { promoteVersion, registerTrainedModel, testRegistry } from '../support/model.ts';
import { startToggleProxy, type ToggleProxy } from '../support/toggle-proxy.ts';

/**
 * Prediction capture end to end, locally: the predict handler writes each sampled prediction as a
 * capture line before it answers; the local stand-in for the log subscription and Firehose writes the
 * lines to the outputs bucket under the captures layout; the drift job reads them. Nothing is lost when
 * the API stops right after the requests, and an S3 outage neither fails nor slows a request.
 */
let aws: TestAws;

const asOf = new Date();
const customers = [...generateRecords({ rows: 3000, seed: 21, asOf })];
const port = (url: string) => Number(new URL(url).port);

beforeAll(async () => {
  aws = await startTestAws();
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 20 });
  await promoteVersion(aws, version);
  await writeRecords(
    { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
    customers.slice(0, 300).map(({ churned: _label, ...raw }) => raw),
  );
}, 60_000);

afterAll(async () => {
  await aws?.close();
});

async function post(url: string, path: string, body: unknown) {
  const started = performance.now();
  const response = await fetch(`${url}${path}`, {
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
        .split('\n')
        .flatMap(jsonObjectsOf)
        .map((line) => JSON.parse(line) as CaptureRecord),
    );
  }
  return records;
}

/** The rows of `version` the drift job reads for [from, to). */
const windowOf = (version: string, from: Date, to: Date) =>
  readCapturedWindow(
    { s3: aws.clients.s3, outputsBucket: aws.names.outputs, modelName: 'churn' },
    version,
    from,
    to,
  );

describe('prediction capture through the local API (keel up)', () => {
  it('lands every prediction under the captures layout, for the drift job, though the API stops right after', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keel-capture-'));
    const from = new Date();
    const api = await startLocalApi({ home, target: aws.target, names: aws.names, port: 0 });
    let one: Awaited<ReturnType<typeof post>>;
    try {
      await expect.poll(async () => (await fetch(`${api.url}/health`)).status, { timeout: 10_000 }).toBe(200);
      one = await post(api.url, '/predict', { customerId: 'c-000042' });
      expect(one.status).toBe(200);
      const batch = await post(api.url, '/predict/batch', {
        items: [
          ...customers.slice(0, 99).map((c) => ({ customerId: c.customer_id })),
          { customerId: 'c-000007', attributes: { age: 50 } },
        ],
      });
      expect(batch.status).toBe(200);
    } finally {
      // Stopped at once: no flush asked for, no interval waited.
      await api.close();
      await rm(home, { recursive: true, force: true });
    }

    const records = await capturedRecords(aws.clients.s3, aws.names.outputs);
    expect(records).toHaveLength(101);
    const mine = records.find((r) => r.requestId === one.body.requestId && r.customerId === 'c-000042')!;
    expect(mine).toMatchObject({
      source: 'api',
      model: 'churn',
      version: 'v1',
      probability: one.body.probability,
      prediction: one.body.prediction,
      // Scored from the stored record alone: its event_time ties the answer to that record.
      eventTime: customers[41]!.event_time,
    });
    const overridden = records.filter((r) => r.customerId === 'c-000007');
    expect(overridden.map((r) => r.eventTime).sort()).toEqual([customers[6]!.event_time, undefined]);
    expect(Date.now() - Date.parse(mine.t)).toBeLessThan(60_000);
    const { churned: _label, ...raw } = customers[41]!;
    const encoded = encodeFeatures(raw);
    expect(encoded.ok).toBe(true);
    expect(mine.x).toEqual(Array.from(Float32Array.from(encoded.ok ? encoded.vector : [])));
    expect(records.every((r) => r.x.length === FEATURE_COUNT)).toBe(true);
    const listed = await aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: aws.names.outputs, Prefix: 'captures/' }),
    );
    for (const object of listed.Contents ?? []) {
      expect(object.Key).toMatch(/^captures\/model=churn\/date=\d{4}-\d\d-\d\d\/hour=\d\d\/.+\.jsonl$/);
    }

    expect((await windowOf('v1', from, new Date(Date.now() + 1))).rows).toBe(101);
  }, 60_000);
});

describe('a shadow rollout through the local API', () => {
  it("captures the shadow's score beside every answer, keeps it out of the drift window, and measures each variant", async () => {
    const registry = testRegistry(aws);
    const { version: shadowVersion } = await registerTrainedModel(aws, customers, { seed: 2, nTrees: 5 });
    const { rollout } = await startRollout(registry, {
      name: 'churn',
      version: shadowVersion,
      mode: 'shadow',
      bakeSeconds: 3600,
      reason: 'test',
      actor: 'test',
    });
    const home = await mkdtemp(join(tmpdir(), 'keel-shadow-'));
    const from = new Date();
    const api = await startLocalApi({
      home,
      target: aws.target,
      names: aws.names,
      port: 0,
      // The suite turns metrics off (vitest.config.ts); this test reads them.
      environment: { POWERTOOLS_METRICS_DISABLED: 'false' },
    });
    let emf: string;
    try {
      await expect.poll(async () => (await fetch(`${api.url}/health`)).status, { timeout: 10_000 }).toBe(200);
      const health = (await (await fetch(`${api.url}/health`)).json()) as { rollout?: { id: string } };
      expect(health.rollout?.id).toBe(rollout.id);
      const batch = await post(api.url, '/predict/batch', {
        items: customers.slice(0, 50).map((c) => ({ customerId: c.customer_id })),
      });
      expect(batch.status).toBe(200);
    } finally {
      await api.close();
      emf = await readFile(metricsFile(home), 'utf8');
      await rm(home, { recursive: true, force: true });
      await endRollout(registry, {
        name: 'churn',
        rolloutId: rollout.id,
        reason: 'test over',
        actor: 'test',
      });
    }

    const records = (await capturedRecords(aws.clients.s3, aws.names.outputs)).filter(
      (r) => r.rollout === rollout.id,
    );
    const answers = records.filter((r) => r.variant === 'champion');
    const shadows = records.filter((r) => r.variant === 'shadow');
    expect(answers).toHaveLength(50);
    expect(answers.every((r) => r.version === 'v1')).toBe(true);
    expect(shadows).toHaveLength(50);
    expect(shadows.every((r) => r.version === shadowVersion)).toBe(true);
    expect(shadows.map((r) => r.customerId).sort()).toEqual(answers.map((r) => r.customerId).sort());
    // The shadow answered nobody: its version's drift window is empty.
    expect((await windowOf(shadowVersion, from, new Date(Date.now() + 1))).rows).toBe(0);

    const samples = emf.split('\n').filter(isEmfLine).flatMap(parseEmf);
    const sum = (metricName: string, variant: string) =>
      samples
        .filter((m) => m.metricName === metricName && m.dimensions[VARIANT_DIMENSION] === variant)
        .reduce((total, m) => total + m.value, 0);
    expect(sum(ROLLOUT_METRICS.requests, 'champion')).toBe(50);
    expect(sum(ROLLOUT_METRICS.requests, 'challenger')).toBe(50);
    expect(sum(ROLLOUT_METRICS.serverErrors, 'challenger')).toBe(0);
    const agreement = samples.filter((m) => m.metricName === ROLLOUT_METRICS.agreement);
    expect(agreement).toHaveLength(50);
    expect(agreement.every((m) => m.dimensions[VARIANT_DIMENSION] === 'challenger')).toBe(true);
    expect(samples.filter((m) => m.metricName === ROLLOUT_METRICS.latency && m.value > 0).length).toBe(100);
  }, 60_000);
});

describe('an S3 outage under the local delivery', () => {
  let s3Proxy: ToggleProxy;
  let api: TestApi;
  let delivery: CaptureDelivery;

  beforeAll(async () => {
    s3Proxy = await startToggleProxy(port(aws.target.endpoints!.s3));
    api = await startTestApi(aws, {
      // S3 (models and captures) behind a switch; DynamoDB direct.
      target: {
        region: aws.target.region,
        endpoints: { s3: s3Proxy.url, dynamodb: aws.target.endpoints!.dynamodb },
      },
      refreshIntervalMs: 600_000,
      captureSampleRate: 1,
    });
    delivery = api.delivery!;
  }, 30_000);

  afterAll(async () => {
    await api?.close();
    await s3Proxy?.close();
  });

  it('answers 200 at full speed while S3 is down, and delivers the kept lines once it is back', async () => {
    await expect.poll(async () => (await fetch(`${api.url}/health`)).status, { timeout: 10_000 }).toBe(200);
    const before = (await capturedRecords(aws.clients.s3, aws.names.outputs)).length;
    await s3Proxy.down();
    try {
      const replies = [];
      for (let i = 0; i < 20; i++)
        replies.push(await post(api.url, '/predict', { customerId: customers[i]!.customer_id }));
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
      // The request path never touches S3 for capture: no reply took a retry's worth of time.
      expect(Math.max(...replies.map((r) => r.ms))).toBeLessThan(1_000);
      await expect(delivery.flush()).rejects.toThrow();
      expect(delivery.stats()).toMatchObject({ buffered: 20, written: 0 });
      expect(delivery.stats().failedWrites).toBeGreaterThan(0);
    } finally {
      await s3Proxy.up();
    }
    await delivery.flush();
    expect(delivery.stats()).toMatchObject({ buffered: 0, written: 20 });
    expect(await capturedRecords(aws.clients.s3, aws.names.outputs)).toHaveLength(before + 20);
  }, 30_000);
});

describe('the drift job reads what Firehose partitions by arrival', () => {
  it('finds the records of a window in the neighbouring hours and in concatenated lines', async () => {
    const hour = new Date('2020-05-06T10:00:00Z');
    const at = (iso: string) =>
      captureRecord(servedPrediction({ model: { name: 'churn', version: 'v-slack' } }), new Date(iso), 'api');
    const put = (prefixTime: string, body: string) =>
      aws.clients.s3.send(
        new PutObjectCommand({
          Bucket: aws.names.outputs,
          Key: `${captureHourPrefix('churn', new Date(prefixTime))}firehose-1.jsonl`,
          Body: body,
        }),
      );
    // Its buffer started in the hour before: partitioned there.
    await put(
      '2020-05-06T09:59:30Z',
      `${captureLine(at('2020-05-06T09:59:40Z'))}\n${captureLine(at('2020-05-06T10:00:10Z'))}\n`,
    );
    // Delivered late, after the hour turned; two records joined without a newline.
    await put(
      '2020-05-06T11:00:20Z',
      `${captureLine(at('2020-05-06T10:59:58Z'))}${captureLine(at('2020-05-06T10:59:59Z'))}\n`,
    );
    const window = await windowOf('v-slack', hour, new Date('2020-05-06T11:00:00Z'));
    // 09:59:40 is outside the window: read, then skipped.
    expect({ rows: window.rows, skipped: window.skipped }).toEqual({ rows: 3, skipped: 1 });
  });
});

describe('readPredictConfig capture settings', () => {
  const base = {
    [RESOURCE_ENV.models]: 'm',
    [RESOURCE_ENV.modelRegistry]: 'r',
    [RESOURCE_ENV.onlineFeatures]: 'o',
  };
  it('captures everything into the outputs bucket by default, nothing at rate 0 or without the bucket', () => {
    expect(readPredictConfig({ ...base, [RESOURCE_ENV.outputs]: 'out' }).capture).toEqual({ sampleRate: 1 });
    expect(
      readPredictConfig({ ...base, [RESOURCE_ENV.outputs]: 'out', KEEL_CAPTURE_SAMPLE_RATE: '0.1' }).capture,
    ).toEqual({ sampleRate: 0.1 });
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
      const [, probability, prediction, version, , eventTime] = predictions.get(record.customerId)!;
      expect(record).toMatchObject({
        requestId: plan.runId,
        model: 'churn',
        version,
        probability: Number(probability),
        prediction: Number(prediction),
        eventTime,
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

    expect((await windowOf('v1', from, new Date(Date.now() + 1))).rows).toBe(300);
  }, 60_000);

  it('samples by the rate', async () => {
    const before = (await batchRecords()).length;
    let draw = 0;
    // Every other row is below 0.5.
    await scoreStore(batchDeps({ sampleRate: 0.5, random: () => (draw++ % 2 === 0 ? 0.25 : 0.75) }));
    expect((await batchRecords()).length - before).toBe(150);
  }, 60_000);
});
