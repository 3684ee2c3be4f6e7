import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { PARITY_TOLERANCE } from '#shared/model/onnx-export.ts';
import type { FeatureDataset } from '#shared/offline/features-dataset.ts';
import { calibratorOf, MAX_KNOTS } from '#shared/quality/calibrator.ts';
import { modelMetadataSchema } from '#shared/registry/metadata.ts';
import { trainCandidate } from '#shared/training/train.ts';

function dataset(rows: number, seed: number): FeatureDataset {
  const x = new Float32Array(rows * FEATURE_COUNT);
  const y = new Uint8Array(rows);
  const customerIds: string[] = [];
  let i = 0;
  for (const record of generateRecords({ rows, seed, asOf: new Date('2026-11-01T00:00:00Z') })) {
    encodeInto(record, x, i * FEATURE_COUNT);
    y[i] = record.churned;
    customerIds.push(record.customer_id);
    i++;
  }
  return { featureSet: FEATURE_SET, rows, x, y, customerIds, keys: [] };
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('trainCandidate', () => {
  const data = dataset(6000, 3);
  const options = { datasetUri: 's3://features/x/', parent: null, params: { nTrees: 40 } } as const;

  it('is deterministic: same data and seed give the same ONNX bytes and metrics', async () => {
    const [a, b] = [await trainCandidate(data, options), await trainCandidate(data, options)];
    expect(sha(a.onnx)).toBe(sha(b.onnx));
    expect(a.evaluation).toEqual(b.evaluation);
    const other = await trainCandidate(data, { ...options, seed: 7 });
    expect(sha(other.onnx)).not.toBe(sha(a.onnx));
  });

  it('produces metadata the registry schema accepts, with held-out metrics and ONNX parity', async () => {
    const candidate = await trainCandidate(data, options);
    const full = {
      ...candidate.metadata,
      name: 'churn',
      version: 'v1',
      created_at: new Date().toISOString(),
      artifact: { format: 'onnx', sha256: sha(candidate.onnx), bytes: candidate.onnx.byteLength },
    };
    expect(modelMetadataSchema.safeParse(full).error).toBeUndefined();
    expect(candidate.metadata.feature_set.fingerprint).toBe(FEATURE_SET.fingerprint);
    expect(candidate.metadata.metrics.auc).toBeGreaterThan(0.75);
    expect(candidate.metadata.metrics).toHaveProperty('calibration');
    expect(candidate.metadata.metrics).toHaveProperty('precision');
    // The isotonic map survives the trip through metadata.json and is what the quality job reads.
    const calibrator = calibratorOf(JSON.parse(JSON.stringify(full)).metrics);
    expect(calibrator.source).toBe('isotonic');
    expect(calibrator.map.scores.length).toBeGreaterThan(2);
    expect(calibrator.map.scores.length).toBeLessThanOrEqual(MAX_KNOTS);
    expect(candidate.test.y.length).toBe(1200);
    expect(candidate.onnxParityMaxDiff).toBeLessThanOrEqual(PARITY_TOLERANCE);
    expect(candidate.baseline.rows).toBe(6000);
  });

  it('trains the logistic-regression baseline through the same path', async () => {
    const candidate = await trainCandidate(data, { ...options, algorithm: 'logistic' });
    expect(candidate.model.kind).toBe('linear');
    expect(candidate.metadata.algorithm).toBe('logistic-regression');
    expect(candidate.metadata.metrics.auc).toBeGreaterThan(0.7);
  });
});
