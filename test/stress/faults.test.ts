import { readFile } from 'node:fs/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipelineRunner, notificationsFile, type PipelineRunner } from '#local/pipelines.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import type { BatchReport, BatchRunSummary } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { EtlRunSummary } from '#shared/etl/etl.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { getRecords, writeRecords } from '#shared/online-store/store.ts';
import { getJson } from '#shared/pipelines/run-objects.ts';
import { getChampion, getVersion, listVersions, promote } from '#shared/registry/registry.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel, testRegistry } from '../support/model.ts';
import { startToggleProxy, type ToggleProxy } from '../support/toggle-proxy.ts';

/**
 * Dependencies that die in the middle of work: the local DynamoDB or S3 is cut (a TCP proxy in front
 * of it stops) during a prediction stream, an ETL run, a batch run and a model registration.
 */
let aws: TestAws;
let s3Proxy: ToggleProxy;
let dynamoProxy: ToggleProxy;
let api: TestApi;
let runner: PipelineRunner;

const port = (url: string) => Number(new URL(url).port);
const asOf = new Date();
const customers = [...generateRecords({ rows: 800, seed: 41, asOf })];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  aws = await startTestAws();
  s3Proxy = await startToggleProxy(port(aws.target.endpoints!.s3));
  dynamoProxy = await startToggleProxy(port(aws.target.endpoints!.dynamodb));
  const proxied = { region: aws.target.region, endpoints: { s3: s3Proxy.url, dynamodb: dynamoProxy.url } };
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 10 });
  await promoteVersion(aws, version);
  await writeRecords(
    { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
    customers.slice(0, 200).map(({ churned: _label, ...raw }) => raw),
  );
  api = await startTestApi(aws, { target: proxied, refreshIntervalMs: 200 });
  runner = await createPipelineRunner({ home: aws.home, target: proxied, names: aws.names });
});
afterAll(async () => {
  await runner?.close();
  await api?.close();
  await s3Proxy?.close();
  await dynamoProxy?.close();
  await aws?.close();
});

async function predict(customerId: string) {
  const response = await fetch(`${api.url}/predict`, {
    method: 'POST',
    body: JSON.stringify({ customerId }),
  });
  return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
}

async function lastNotification(): Promise<{ source: string; message: Record<string, unknown> }> {
  return JSON.parse((await readFile(notificationsFile(aws.home), 'utf8')).trim().split('\n').at(-1)!);
}

describe('a dependency dies during a prediction stream', () => {
  /** Four clients in a loop, each request recorded, until `stop` resolves; bounded by `maxMs`. */
  async function stream(during: () => Promise<void>, maxMs = 30_000) {
    const answers: { at: number; status: number; code?: string }[] = [];
    let done = false;
    const started = Date.now();
    const client = async (n: number) => {
      for (let i = 0; !done && Date.now() - started < maxMs; i++) {
        const { status, body } = await predict(customers[(n * 50 + i) % 200]!.customer_id);
        answers.push({ at: Date.now(), status, code: body.error?.code });
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    try {
      await during();
    } finally {
      done = true;
      await Promise.all(clients);
    }
    return answers;
  }

  it('answers 503 Unavailable while DynamoDB is down, nothing else but 200, and recovers by itself', async () => {
    let downAt = 0;
    let upAt = 0;
    const answers = await stream(async () => {
      await sleep(500);
      await dynamoProxy.down();
      downAt = Date.now();
      await sleep(2_000);
      await dynamoProxy.up();
      upAt = Date.now();
      // Recovered: the next requests succeed without anyone restarting anything.
      for (let until = Date.now() + 10_000; Date.now() < until; await sleep(100)) {
        if ((await predict('c-000001')).status === 200) break;
      }
      await sleep(500);
    });
    expect(answers.length).toBeGreaterThan(20);
    for (const answer of answers) {
      expect([200, 503]).toContain(answer.status);
      if (answer.status === 503) expect(answer.code).toBe('Unavailable');
    }
    // Answers that arrived well inside the outage (requests already past DynamoDB may finish just after the cut).
    const during = answers.filter((a) => a.at > downAt + 500 && a.at < upAt);
    expect(during.length).toBeGreaterThan(0);
    expect(during.every((a) => a.status === 503)).toBe(true);
    expect(answers.filter((a) => a.at < downAt).every((a) => a.status === 200)).toBe(true);
    expect(answers.at(-1)!.status).toBe(200);
  });

  it('keeps serving the loaded champion while S3 is down (only model loads need S3)', async () => {
    const answers = await stream(async () => {
      await sleep(300);
      await s3Proxy.down();
      await sleep(1_500);
      await s3Proxy.up();
      await sleep(300);
    });
    expect(answers.length).toBeGreaterThan(20);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
  });
});

describe('a dependency dies during a pipeline run', () => {
  const ROWS = 3_000;
  const etlRecords = [...generateRecords({ rows: ROWS, seed: 43, asOf })].map((r) => ({
    ...r,
    customer_id: r.customer_id.replace('c-', 'e-'),
  }));

  it('ETL: retries, fails cleanly with a notification, and a rerun stores every row exactly once', async () => {
    const inputKey = 'raw/20261110T000000Z-faults.csv';
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.raw,
        Key: inputKey,
        Body: `${[CSV_HEADER, ...etlRecords.map(toCsvLine)].join('\n')}\n`,
      }),
    );
    const failures: string[] = [];
    let cut = false;
    const run = await runner.run<EtlRunSummary>(
      'etl',
      { inputKey, chunkRows: 500 },
      (state) => {
        if (state === 'Process chunk' && !cut) {
          cut = true;
          void dynamoProxy.down();
        }
      },
      (state, error) => failures.push(`${state}: ${error.name}`),
    );
    await dynamoProxy.up();
    expect(run.status).toBe('FAILED');
    // The state machine's Retry ran: the failing chunk was attempted again before the Catch.
    expect(failures.filter((f) => f === 'Process chunk: UnavailableError').length).toBeGreaterThanOrEqual(2);
    expect(await lastNotification()).toMatchObject({
      source: 'pipeline:etl',
      message: { status: 'FAILED', error: 'UnavailableError' },
    });

    const rerun = await runner.run<EtlRunSummary>('etl', { inputKey, chunkRows: 500 });
    expect(rerun.status).toBe('SUCCEEDED');
    expect(rerun.output).toMatchObject({ rowsRead: ROWS, valid: ROWS, onlineWritten: ROWS, quarantined: 0 });
    const stored = await getRecords(
      { dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures },
      etlRecords.map((r) => r.customer_id),
    );
    expect(stored.size).toBe(ROWS);
    const dataset = await readFeatureDataset(aws.clients.s3, aws.names.features, rerun.output!.featurePrefix);
    expect(dataset.rows).toBe(ROWS);
    expect(new Set(dataset.customerIds).size).toBe(ROWS);
  });

  it('batch: retries, fails cleanly with a notification, and a rerun writes every customer exactly once', async () => {
    const failures: string[] = [];
    let cut = false;
    const run = await runner.run<BatchRunSummary>(
      'batch',
      { segments: 4 },
      (state) => {
        if (state === 'Score segment' && !cut) {
          cut = true;
          void s3Proxy.down();
        }
      },
      (state, error) => failures.push(`${state}: ${error.name}`),
    );
    await s3Proxy.up();
    expect(run.status).toBe('FAILED');
    expect(failures.filter((f) => f.endsWith('UnavailableError')).length).toBeGreaterThanOrEqual(2);
    expect(await lastNotification()).toMatchObject({
      source: 'pipeline:batch-scoring',
      message: { status: 'FAILED', error: 'UnavailableError' },
    });

    const rerun = await runner.run<BatchRunSummary>('batch', { segments: 4 });
    expect(rerun.status).toBe('SUCCEEDED');
    // The store holds the 200 served customers and the 3,000 of the ETL test, nothing else.
    const ids = [...customers.slice(0, 200), ...etlRecords].map((r) => r.customer_id);
    const lines: string[] = [];
    const { parts } = await getJson<BatchReport>(
      aws.clients.s3,
      aws.names.outputs,
      rerun.output!.manifestKey,
    );
    for (const Key of parts) {
      const part = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.outputs, Key }));
      lines.push(...(await part.Body!.transformToString()).trim().split('\n').slice(1));
    }
    expect(rerun.output!.rows).toBe(ids.length);
    expect(lines).toHaveLength(ids.length);
    expect(new Set(lines.map((line) => line.split(',')[0]))).toEqual(new Set(ids));
  });
});

// Trains on the features the ETL test above wrote.
describe('SNS fails a publish on the success path of a retrain', () => {
  /** A runner (on the same servers) whose SNS publishes of the "retrain promoted" notice fail `failures` times. */
  async function throttledRunner(failures: number) {
    const attempts: string[] = [];
    const throttled = await createPipelineRunner({
      home: aws.home,
      target: aws.target,
      names: aws.names,
      snsPublishFault: (subject) => {
        if (!/retrain promoted/.test(subject)) return undefined;
        attempts.push(subject);
        if (attempts.length > failures) return undefined;
        return Object.assign(new Error('Rate exceeded'), { name: 'SNS.ThrottledException' });
      },
    });
    return { throttled, attempts };
  }

  it('retries a throttled notification: the run SUCCEEDS and the notification is delivered', async () => {
    const { throttled, attempts } = await throttledRunner(1);
    const failed: string[] = [];
    const run = await throttled.run<{ deployment?: { to: string } }>(
      'retrain',
      { promotion: 'always' },
      undefined,
      (state, error) => failed.push(`${state}: ${error.name}`),
    );
    expect(run.status).toBe('SUCCEEDED');
    expect(failed).toEqual(['Notify result: SNS.ThrottledException']);
    expect(attempts).toHaveLength(2);
    expect(await lastNotification()).toMatchObject({
      source: 'pipeline:retrain',
      message: { status: 'PROMOTED', version: run.output!.deployment!.to },
    });
  });

  it('after its retries, fails as NotificationFailed (not as a failed retrain), the promotion standing', async () => {
    const { throttled, attempts } = await throttledRunner(Number.POSITIVE_INFINITY);
    const before = await lastNotification();
    const run = await throttled.run('retrain', { promotion: 'always' });
    expect(run.status).toBe('FAILED');
    expect(run.error).toEqual({
      name: 'NotificationFailed',
      message: expect.stringMatching(/outcome stands/),
    });
    // 1 attempt + 6 retries (the first retrier that matches decides); no "retrain failed" notice was sent.
    expect(attempts).toHaveLength(7);
    expect(await lastNotification()).toEqual(before);
    const versions = await listVersions(testRegistry(aws), 'churn');
    expect(await getChampion(testRegistry(aws), 'churn')).toBe(versions.at(-1)!.version);
  });
});

describe('a dependency dies during a model registration', () => {
  it('leaves no half version when DynamoDB dies between the S3 writes and the version item', async () => {
    const registry = testRegistry(aws);
    const before = (await listVersions(registry, 'churn')).map((v) => v.version);
    // A registry whose DynamoDB is the proxy, and whose S3 client cuts it right after metadata.json lands.
    const clients = createAwsClients({
      region: aws.target.region,
      endpoints: { s3: aws.target.endpoints!.s3, dynamodb: dynamoProxy.url },
    });
    clients.s3.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const key = (args.input as { Key?: string }).Key ?? '';
        if (key.endsWith('/metadata.json')) await dynamoProxy.down();
        return result;
      },
      { step: 'initialize', name: 'cutDynamoAfterMetadata' },
    );
    try {
      const error = await registerTrainedModel({ clients, names: aws.names }, customers, {
        seed: 3,
        nTrees: 3,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
    } finally {
      await dynamoProxy.up();
      clients.s3.destroy();
      clients.dynamo.destroy();
    }
    const after = (await listVersions(registry, 'churn')).map((v) => v.version);
    expect(after).toEqual(before);
    const half = `v${before.length + 1}`;
    await expect(getVersion(registry, 'churn', half)).rejects.toThrow(/unknown|not found|no version/i);
    await expect(
      promote(registry, {
        name: 'churn',
        version: half,
        reason: 'test',
        actor: 'test',
      }),
    ).rejects.toThrow();
    // The next registration gets a fresh number and is whole.
    const next = await registerTrainedModel(aws, customers, { seed: 4, nTrees: 3 });
    expect((await listVersions(registry, 'churn')).map((v) => v.version)).toEqual([...before, next.version]);
  });
});
