import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT } from '#shared/features/index.ts';
import {
  classQuotas,
  DatasetChangedError,
  type SampledRow,
  sampleTrainingRows,
} from '#shared/training/sample.ts';

const AS_OF = new Date('2026-01-01T00:00:00Z');

/** Generated customers as a pass over the dataset yields them (one reused feature buffer). */
function customers(rows: number, seed = 3) {
  const records = [...generateRecords({ rows, seed, asOf: AS_OF })];
  const pass = async function* (): AsyncGenerator<SampledRow> {
    const features = new Float32Array(FEATURE_COUNT);
    for (const record of records) {
      encodeInto(record, features, 0);
      yield { customerId: record.customer_id, label: record.churned, features };
    }
  };
  const positives = records.filter((r) => r.churned === 1).length;
  return { records, pass, positives };
}

const options = { cap: 1_000, seed: 7, testShare: 0.2, maxBins: 256 };

describe('classQuotas', () => {
  it('keeps each class within one row of its share of the cap, the cap exactly', () => {
    for (const [counts, cap] of [
      [[7_531, 2_469], 1_000],
      [[10, 3], 5],
      [[999_999, 1], 100],
      [[1, 0], 1],
      [[333, 667], 10],
    ] as const) {
      const quotas = classQuotas(counts, cap);
      const total = counts[0] + counts[1];
      expect(quotas[0]! + quotas[1]!).toBe(Math.min(cap, total));
      quotas.forEach((q, c) => {
        expect(Math.abs(q - (cap * counts[c]!) / total)).toBeLessThanOrEqual(1);
        expect(q).toBeLessThanOrEqual(counts[c]!);
      });
    }
    // A rare class keeps a row rather than vanishing from the sample.
    expect(classQuotas([999_999, 1], 100)).toEqual([99, 1]);
  });

  it('takes every row when there are no more than the cap', () => {
    expect(classQuotas([600, 400], 1_000)).toEqual([600, 400]);
    expect(classQuotas([6, 4], 1_000)).toEqual([6, 4]);
  });
});

describe('sampleTrainingRows', () => {
  it('draws exactly the cap over a larger dataset, stratified: class shares within one row', async () => {
    const data = customers(5_000);
    const sample = await sampleTrainingRows(data.pass, FEATURE_COUNT, options);
    expect(sample.info).toEqual({ rows_seen: 5_000, rows_used: 1_000, seed: 7, cap: 1_000 });
    expect(sample.train.rows + sample.test.y.length).toBe(1_000);
    expect(sample.train.bins).toHaveLength(sample.train.rows * FEATURE_COUNT);
    expect(sample.test.x).toHaveLength(sample.test.y.length * FEATURE_COUNT);
    const drawnPositives = sum(sample.train.y) + sum(sample.test.y);
    expect(Math.abs(drawnPositives - (1_000 * data.positives) / 5_000)).toBeLessThanOrEqual(1);
    // Held out: a fifth of each class, rounded.
    expect(sum(sample.test.y)).toBe(Math.round(drawnPositives * 0.2));
    expect(sample.test.y.length - sum(sample.test.y)).toBe(Math.round((1_000 - drawnPositives) * 0.2));
    // Pass 1's sample (edges, baseline) is bounded by the cap too.
    expect(sample.reference.rows).toBe(1_000);
  });

  it('keeps held-out rows as they are in the dataset, in its order', async () => {
    const data = customers(3_000);
    const sample = await sampleTrainingRows(data.pass, FEATURE_COUNT, options);
    const rows = [...sample.testRows];
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    const expected = new Float32Array(FEATURE_COUNT);
    rows.forEach((row, k) => {
      const record = data.records[row]!;
      expect(sample.testCustomerIds[k]).toBe(record.customer_id);
      expect(sample.test.y[k]).toBe(record.churned);
      encodeInto(record, expected, 0);
      expect(sample.test.x.subarray(k * FEATURE_COUNT, (k + 1) * FEATURE_COUNT)).toEqual(expected);
    });
  });

  it('is deterministic for a seed, and another seed draws other rows', async () => {
    const data = customers(4_000);
    const [a, b, c] = await Promise.all([
      sampleTrainingRows(data.pass, FEATURE_COUNT, options),
      sampleTrainingRows(data.pass, FEATURE_COUNT, options),
      sampleTrainingRows(data.pass, FEATURE_COUNT, { ...options, seed: 8 }),
    ]);
    expect(b.testRows).toEqual(a.testRows);
    expect(b.train.bins).toEqual(a.train.bins);
    expect(b.train.edges).toEqual(a.train.edges);
    expect(c.testRows).not.toEqual(a.testRows);
  });

  it('uses every row below the cap, with edges that are values of the data', async () => {
    const data = customers(800);
    const sample = await sampleTrainingRows(data.pass, FEATURE_COUNT, options);
    expect(sample.info).toMatchObject({ rows_seen: 800, rows_used: 800 });
    expect(sample.train.rows + sample.test.y.length).toBe(800);
    expect(sum(sample.train.y) + sum(sample.test.y)).toBe(data.positives);
    expect(sample.reference.rows).toBe(800);
    const x = new Float32Array(FEATURE_COUNT);
    const values = Array.from({ length: FEATURE_COUNT }, () => new Set<number>());
    for (const record of data.records) {
      encodeInto(record, x, 0);
      x.forEach((v, f) => {
        values[f]!.add(v);
      });
    }
    sample.train.edges.forEach((edges, f) => {
      for (const edge of edges) expect(values[f]!.has(edge)).toBe(true);
    });
  });

  it('fails when the dataset changes between its two passes', async () => {
    const data = customers(2_000);
    let calls = 0;
    const shrinking = async function* () {
      let row = 0;
      for await (const r of data.pass()) if (calls === 1 || row++ < 1_500) yield r;
      calls++;
    };
    await expect(sampleTrainingRows(shrinking, FEATURE_COUNT, options)).rejects.toThrow(DatasetChangedError);
  });
});

function sum(values: Uint8Array): number {
  return values.reduce((s, v) => s + v, 0);
}
