import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { readBaseline, readMetadata } from '#shared/registry/registry.ts';
import { retrain } from '#shared/training/retrain.ts';
import { EDGE_SAMPLE_ROWS, readTrainingSample } from '#shared/training/sample.ts';
import { etlOfRecords, startTestAws, type TestAws } from '../support/aws.ts';
import { testRegistry } from '../support/model.ts';

/**
 * A retrain over a dataset larger than its row cap (`retrain.maxTrainingRows`): read as a stream into a
 * stratified sample of exactly the cap, which the metadata records, and which bounds what is held.
 */
let aws: TestAws;
let datasetPrefix: string;
const ROWS = 4_000;
const CAP = 1_500;

beforeAll(async () => {
  aws = await startTestAws();
  const records = [...generateRecords({ rows: ROWS, seed: 61, asOf: new Date('2026-11-01T00:00:00Z') })];
  datasetPrefix = (await etlOfRecords(aws, 'raw/20261101T000000Z-bounded.csv', records)).featurePrefix;
});
afterAll(async () => {
  await aws?.close();
});

const deps = () => ({ registry: testRegistry(aws), s3: aws.clients.s3, featuresBucket: aws.names.features });

describe('a retrain over more rows than retrain.maxTrainingRows', () => {
  it('trains on a stratified sample of the cap and records it in the metadata', async () => {
    const options = { name: 'churn', datasetPrefix, promotion: 'if-better', actor: 'test' } as const;
    const first = await retrain(deps(), { ...options, maxTrainingRows: CAP });
    const metadata = await readMetadata(testRegistry(aws), 'churn', first.version);
    expect(metadata.training.sample).toEqual({ rows_seen: ROWS, rows_used: CAP, seed: 42, cap: CAP });
    expect(metadata.dataset.rows).toBe(ROWS);
    // A fifth of the draw held out, the rest fitted on (early stopping's share included).
    expect(metadata.metrics.test_rows).toBe(CAP * 0.2);
    expect(metadata.training.rows).toBe(CAP * 0.8);
    expect(first.promoted?.to).toBe(first.version);
    // The drift baseline comes from pass 1's sample, bounded by the cap as well.
    const baseline = (await readBaseline(testRegistry(aws), 'churn', first.version)) as { rows: number };
    expect(baseline.rows).toBe(CAP);

    // Again with the first as champion: it is scored on the candidate's held-out customers of the sample.
    const second = await retrain(deps(), { ...options, maxTrainingRows: CAP, seed: 43 });
    expect(second.champion).toBe(first.version);
    expect(second.championAuc).toBeGreaterThan(0.6);
    expect((await readMetadata(testRegistry(aws), 'churn', second.version)).training.sample).toEqual({
      rows_seen: ROWS,
      rows_used: CAP,
      seed: 43,
      cap: CAP,
    });
  });

  it('holds binned rows and float rows of the held-out share only, each bounded by the cap', async () => {
    const sample = await readTrainingSample(aws.clients.s3, aws.names.features, datasetPrefix, FEATURE_SET, {
      cap: CAP,
      seed: 42,
      testShare: 0.2,
      maxBins: 256,
    });
    expect(sample.info).toEqual({ rows_seen: ROWS, rows_used: CAP, seed: 42, cap: CAP });
    expect(sample.train.bins).toBeInstanceOf(Uint8Array);
    expect(sample.train.bins.length).toBe(CAP * 0.8 * FEATURE_COUNT);
    expect(sample.trainX).toBeUndefined();
    expect(sample.test.x.length).toBe(CAP * 0.2 * FEATURE_COUNT);
    expect(sample.reference.rows).toBe(Math.min(CAP, EDGE_SAMPLE_ROWS));

    // Every row when the cap is above the dataset.
    const all = await readTrainingSample(aws.clients.s3, aws.names.features, datasetPrefix, FEATURE_SET, {
      cap: 10_000,
      seed: 42,
      testShare: 0.2,
      maxBins: 256,
    });
    expect(all.info).toMatchObject({ rows_seen: ROWS, rows_used: ROWS });
    expect(all.train.rows + all.test.y.length).toBe(ROWS);
  });
});
