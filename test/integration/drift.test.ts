import { readFile } from 'node:fs/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureDelivery } from '#local/capture-delivery.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { DriftJobInput, DriftReportDocument } from '#shared/drift/job.ts';
import { FEATURE_FIELD_NAMES } from '#shared/features/index.ts';
import { parseEmf } from '#shared/monitoring/emf.ts';
import { DRIFT_METRICS } from '#shared/monitoring/metrics.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';

/**
 * Monitoring end to end: predictions through the API are captured to S3, the drift function (as its
 * schedule invokes it, with its role) reads the champion's captures of a window, compares them with its
 * baseline, publishes EMF lines into the local metrics file and writes the report to S3.
 */
let aws: TestAws;
let api: TestApi;
let delivery: CaptureDelivery;
let runner: PipelineRunner;

const asOf = new Date();

beforeAll(async () => {
  aws = await startTestAws();
  const { version } = await registerTrainedModel(aws, [...generateRecords({ rows: 3000, seed: 21, asOf })], {
    seed: 1,
    nTrees: 20,
  });
  await promoteVersion(aws, version);
  api = await startTestApi(aws, { refreshIntervalMs: 60_000, captureSampleRate: 1 });
  delivery = api.delivery!;
  runner = await createPipelineRunner({ home: aws.home, target: aws.target, names: aws.names });
}, 60_000);

afterAll(async () => {
  await runner?.close();
  await api?.close();
  await aws?.close();
});

/** Scores `customers` through POST /predict/batch (all fields in attributes), 100 at a time. */
async function predictAll(customers: ReturnType<typeof generateRecords>) {
  const items = [...customers].map((record) => ({
    customerId: record.customer_id,
    attributes: Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, record[name]])),
  }));
  for (let i = 0; i < items.length; i += 100) {
    const response = await fetch(`${api.url}/predict/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: items.slice(i, i + 100) }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { results: { probability?: number }[] };
    expect(body.results.every((r) => typeof r.probability === 'number')).toBe(true);
  }
}

/** One run of the drift function: its summary, or its error as the function threw it. */
async function runDrift(input: DriftJobInput = {}) {
  const run = await runner.drift(input);
  if (run.status !== 'SUCCEEDED')
    throw Object.assign(new Error(run.error?.message), { name: run.error?.name });
  return run.output!;
}

/** The window's drift job run, its report document in S3 and its EMF samples in the local metrics file. */
async function driftOf(from: Date, to: Date) {
  const result = await runDrift({ from: from.toISOString(), to: to.toISOString() });
  const object = await aws.clients.s3.send(
    new GetObjectCommand({ Bucket: aws.names.outputs, Key: result.reportKey }),
  );
  const document = JSON.parse(await object.Body!.transformToString()) as DriftReportDocument;
  // The EMF sink is an append stream: wait until this run's lines are in the file.
  const mine = async () =>
    (await readFile(metricsFile(aws.home), 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line.includes(`"DriftWindowFrom":"${from.toISOString()}"`));
  const until = Date.now() + 5_000;
  let lines = await mine();
  while (lines.length < result.metricLines && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    lines = await mine();
  }
  expect(lines).toHaveLength(result.metricLines);
  const samples = lines.flatMap(parseEmf);
  const metric = (name: string, feature?: string) =>
    samples.find((s) => s.metricName === name && (feature === undefined || s.dimensions.Feature === feature))
      ?.value;
  return { result, document, samples, metric };
}

const statusOf = (document: DriftReportDocument) =>
  Object.fromEntries(
    document.report.features.map((f) => [f.kind === 'numeric' ? f.feature : f.field, f.status]),
  );

describe('drift job over captured predictions', () => {
  it('pages on income and log_income when the served customers earn 1.9× more, and publishes it as EMF', async () => {
    const from = new Date();
    await predictAll(generateRecords({ rows: 700, seed: 31, asOf, drift: { income: 1.9 } }));
    await delivery.flush();
    const to = new Date(Date.now() + 1);
    expect(delivery.stats()).toMatchObject({ buffered: 0, failedWrites: 0 });

    const { result, document, metric } = await driftOf(from, to);
    expect(result).toMatchObject({
      model: { name: 'churn', version: 'v1' },
      rows: 700,
      insufficientData: false,
    });
    expect(document.rows).toBe(700);
    const statuses = statusOf(document);
    expect(statuses.income).toBe('page');
    expect(statuses.log_income).toBe('page');
    const others = Object.entries(statuses).filter(([name]) => !['income', 'log_income'].includes(name));
    expect(others.length).toBeGreaterThan(5);
    expect(others.filter(([, status]) => status !== 'ok')).toEqual([]);
    expect(metric(DRIFT_METRICS.maxFeaturePsi)).toBeGreaterThanOrEqual(0.25);
    expect(metric(DRIFT_METRICS.featurePsi, 'income')).toBeGreaterThanOrEqual(0.25);
    expect(metric(DRIFT_METRICS.windowRows)).toBe(700);
    expect(metric(DRIFT_METRICS.pagedFeatures)).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('warns about nothing when the served customers look like the training data', async () => {
    const from = new Date(Date.now() + 1);
    await predictAll(generateRecords({ rows: 700, seed: 32, asOf }));
    await delivery.flush();
    const to = new Date(Date.now() + 1);

    const { result, document, metric } = await driftOf(from, to);
    expect(result.rows).toBe(700);
    expect(Object.values(statusOf(document)).filter((s) => s !== 'ok')).toEqual([]);
    expect(document.report.summary).toMatchObject({ warned: 0, paged: 0, insufficient: 0, status: 'ok' });
    expect(document.report.prediction.status).toBe('ok');
    expect(document.status).toBe('ok');
    expect(metric(DRIFT_METRICS.maxFeaturePsi)).toBeLessThan(0.1);
    expect(metric(DRIFT_METRICS.pagedFeatures)).toBe(0);
  }, 30_000);

  it('reports insufficient data for an empty window: no NaN, DriftWindowRows 0, no PSI published', async () => {
    const from = new Date('2020-01-01T00:00:00Z');
    const to = new Date('2020-01-01T01:00:00Z');
    const { result, document, samples, metric } = await driftOf(from, to);
    expect(result).toMatchObject({ rows: 0, insufficientData: true, status: 'insufficient', maxPsi: null });
    expect(document.insufficientData).toBe(true);
    expect(document.message).toMatch(/^insufficient data: 0 captured predictions/);
    expect(JSON.stringify(document)).not.toMatch(/NaN|Infinity/);
    expect(metric(DRIFT_METRICS.windowRows)).toBe(0);
    expect(metric(DRIFT_METRICS.maxFeaturePsi)).toBeUndefined();
    expect(samples.every((s) => Number.isFinite(s.value))).toBe(true);
  });

  it('defaults to the last hour before now', async () => {
    const result = await runDrift();
    expect(result.rows).toBe(1400);
    expect(Date.parse(result.window.to) - Date.parse(result.window.from)).toBe(3_600_000);
  }, 30_000);

  it('refuses an inverted window', async () => {
    await expect(runDrift({ from: '2020-01-01T01:00:00Z', to: '2020-01-01T00:00:00Z' })).rejects.toThrow(
      /drift window is invalid/,
    );
  });
});
