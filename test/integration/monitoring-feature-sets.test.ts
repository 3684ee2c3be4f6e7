import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { checkDrift } from '#shared/drift/job.ts';
import type { LabeledRecord } from '#shared/features/index.ts';
import {
  captureHourPrefix,
  captureLine,
  captureObjectKey,
  captureRecord,
} from '#shared/inference/capture.ts';
import { readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { runQuality } from '#shared/quality/job.ts';
import { promote, registerModel } from '#shared/registry/registry.ts';
import { trainCandidate } from '#shared/training/train.ts';
import { etlOfRecords, startTestAws, type TestAws } from '../support/aws.ts';
import { servedPrediction } from '../support/capture.ts';
import { testRegistry } from '../support/model.ts';
import { TICKETS_LOG_SET } from '../support/other-definition.ts';

/**
 * Drift and skew of a champion whose feature definition is not this code's: its captured vectors are
 * read, binned and recomputed in its own feature set (21 features, `log_tickets` last).
 */
let aws: TestAws;
let customers: LabeledRecord[];
const now = new Date();
const at = new Date(now.getTime() - 10 * 60_000);

/** Writes `count` captured answers of v1 at `at`, their vectors in v1's features; `edit` alters one. */
async function capture(count: number, edit?: (x: Float32Array, i: number) => void) {
  const lines = customers.slice(0, count).map((customer, i) => {
    const vector = new Float32Array(TICKETS_LOG_SET.count);
    TICKETS_LOG_SET.encodeInto(customer, vector, 0);
    edit?.(vector, i);
    const answer = servedPrediction({
      customerId: customer.customer_id,
      requestId: `r-${i}`,
      probability: 0.2 + 0.6 * customer.churned,
      prediction: customer.churned,
      vector,
      storedEventTime: customer.event_time,
    });
    return captureLine(captureRecord(answer, at, 'api'));
  });
  await aws.clients.s3.send(
    new PutObjectCommand({
      Bucket: aws.names.outputs,
      Key: captureObjectKey(captureHourPrefix('churn', at), at),
      Body: `${lines.join('\n')}\n`,
    }),
  );
}

beforeAll(async () => {
  aws = await startTestAws();
  customers = [...generateRecords({ rows: 2_000, seed: 61, asOf: at })];
  const { featurePrefix } = await etlOfRecords(aws, 'raw/20261101T000000Z-monitoring.csv', customers);
  const data = await readFeatureDataset(aws.clients.s3, aws.names.features, featurePrefix, TICKETS_LOG_SET);
  const candidate = await trainCandidate(data, {
    datasetUri: 's3://test',
    parent: null,
    params: { nTrees: 10 },
  });
  await registerModel(testRegistry(aws), {
    name: 'churn',
    onnx: candidate.onnx,
    metadata: candidate.metadata,
    baseline: candidate.baseline,
  });
  await promote(testRegistry(aws), { name: 'churn', version: 'v1', reason: 'test', actor: 'test' });
});
afterAll(async () => {
  await aws?.close();
});

describe('a champion of another feature definition', () => {
  it('is watched for drift in its own features, against its own baseline', async () => {
    await capture(800);
    const check = await checkDrift(
      {
        s3: aws.clients.s3,
        registry: testRegistry(aws),
        outputsBucket: aws.names.outputs,
        modelName: 'churn',
        now: () => now,
      },
      { from: new Date(at.getTime() - 1).toISOString(), to: now.toISOString() },
    );
    expect(check).toMatchObject({ model: { version: 'v1' }, rows: 800, skipped: 0, insufficientData: false });
    expect(check.report.featureSet.fingerprint).toBe(TICKETS_LOG_SET.fingerprint);
    const logTickets = check.report.features.find((f) => f.kind === 'numeric' && f.feature === 'log_tickets');
    // The served customers are the training population: nothing moved.
    expect(logTickets).toMatchObject({ status: 'ok' });
    expect(check.report.summary).toMatchObject({ paged: 0 });
  });

  it('has its served vectors recomputed from the offline raw records with its own features', async () => {
    // 800 answers already captured match their records; 5 more were served from another record.
    await capture(805, (x, i) => {
      if (i >= 800) x[TICKETS_LOG_SET.index('log_tickets')] = 9;
    });
    const { report } = await runQuality(
      {
        s3: aws.clients.s3,
        registry: testRegistry(aws),
        rawBucket: aws.names.raw,
        featuresBucket: aws.names.features,
        outputsBucket: aws.names.outputs,
        modelName: 'churn',
        monitoring: { quality: { skewSample: 5_000 } },
        publish: false,
        now: () => now,
      },
      { from: new Date(at.getTime() - 1).toISOString(), to: now.toISOString() },
    );
    expect(report.skew).toEqual({
      sampled: 1605,
      compared: 1605,
      differing: 5,
      share: 5 / 1605,
      features: [{ name: 'log_tickets', differing: 5 }],
    });
  });
});
