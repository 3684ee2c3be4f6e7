import { describe, expect, it } from 'vitest';
import { encodeInto, FEATURE_COUNT, FEATURE_SET, type FeatureFields } from '#shared/features/index.ts';
import {
  binFractions,
  binIndex,
  buildBaseline,
  categoryCounts,
  featureColumns,
  quantileEdges,
  UNSEEN,
} from '#shared/registry/baseline.ts';
import { TICKETS_LOG_SET } from '../../support/other-definition.ts';

describe('baseline bins (golden)', () => {
  it('puts a value in the first bin whose edge is above it (edges are lower-inclusive)', () => {
    const edges = [1, 2, 5];
    expect([0, 1, 1.5, 2, 4.99, 5, 100].map((v) => binIndex(edges, v))).toEqual([0, 1, 1, 2, 2, 3, 3]);
  });

  it('takes deciles as edges and collapses ties', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => i);
    expect(quantileEdges(values, 10)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const mostlyZero = Float64Array.from({ length: 10 }, (_, i) => (i < 7 ? 0 : i));
    expect(quantileEdges(mostlyZero, 5)).toEqual([8]); // quintile positions 2, 4, 6 are all 0: one bin below 8
    expect(quantileEdges(new Float64Array(5), 10)).toEqual([]);
  });

  it('computes fractions per bin', () => {
    expect(binFractions([0, 0, 7, 8, 9], [7, 8])).toEqual([0.4, 0.2, 0.4]);
    expect(binFractions([], [1])).toEqual([0, 0]);
  });
});

describe('buildBaseline', () => {
  const customer = (plan: string, income: number): FeatureFields => ({
    age: 40,
    income,
    plan,
    region: 'north',
    tenure_months: 12,
    total_spend: 100,
    orders: 4,
    support_tickets_90d: 1,
    days_since_last_order: 3,
  });
  const rows = [
    customer('basic', 1000),
    customer('basic', 2000),
    customer('premium', 3000),
    customer('gold', 4000),
  ];
  const x = new Float32Array(rows.length * FEATURE_COUNT);
  for (const [i, row] of rows.entries()) encodeInto(row, x, i * FEATURE_COUNT);

  it('reads category frequencies back from the one-hot columns, unseen included', () => {
    expect(featureColumns(FEATURE_SET).oneHot.plan!.map((c) => c.category)).toEqual([
      'basic',
      'standard',
      'premium',
    ]);
    expect(categoryCounts(FEATURE_SET, x, rows.length, 'plan')).toEqual({
      basic: 2,
      standard: 0,
      premium: 1,
      [UNSEEN]: 1,
    });
  });

  it('describes numeric features, categorical fields and scores', () => {
    const baseline = buildBaseline(
      FEATURE_SET,
      x,
      rows.length,
      Float64Array.from([0.1, 0.4, 0.6, 0.9]),
      0.5,
      4,
    );
    expect(baseline.featureSet.fingerprint).toBe(FEATURE_SET.fingerprint);
    expect(baseline.numeric.map((n) => n.feature)).toEqual(
      featureColumns(FEATURE_SET).numeric.map((i) => FEATURE_SET.names[i]),
    );
    expect(baseline.numeric).toHaveLength(12);
    const income = baseline.numeric.find((n) => n.feature === 'income')!;
    expect(income).toMatchObject({
      edges: [2000, 3000, 4000],
      fractions: [0.25, 0.25, 0.25, 0.25],
      mean: 2500,
      min: 1000,
      max: 4000,
    });
    expect(baseline.categorical.find((c) => c.field === 'plan')!.frequencies).toEqual({
      basic: 0.5,
      standard: 0,
      premium: 0.25,
      [UNSEEN]: 0.25,
    });
    expect(baseline.score).toMatchObject({
      positiveRate: 0.5,
      threshold: 0.5,
      mean: 0.5,
      edges: [0.4, 0.6, 0.9],
    });
  });

  it('is built in the version’s own feature set: its columns, its names, its fingerprint', () => {
    const wide = new Float32Array(rows.length * TICKETS_LOG_SET.count);
    for (const [i, row] of rows.entries()) TICKETS_LOG_SET.encodeInto(row, wide, i * TICKETS_LOG_SET.count);
    const scores = Float64Array.from([0.1, 0.4, 0.6, 0.9]);
    const baseline = buildBaseline(TICKETS_LOG_SET, wide, rows.length, scores, 0.5, 4);
    expect(baseline.featureSet).toEqual({ version: '1.1.0', fingerprint: TICKETS_LOG_SET.fingerprint });
    expect(baseline.numeric.map((n) => n.feature).at(-1)).toBe('log_tickets');
    expect(baseline.numeric.find((n) => n.feature === 'log_tickets')).toMatchObject({
      mean: Math.fround(Math.log1p(1)),
    });
    // The one-hot columns sit where this set puts them (before its last feature), read back the same.
    expect(baseline.categorical).toEqual(
      buildBaseline(FEATURE_SET, x, rows.length, scores, 0.5, 4).categorical,
    );
  });
});
