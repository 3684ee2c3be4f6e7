import { describe, expect, it } from 'vitest';
import {
  categoricalDrift,
  countBins,
  countCategories,
  jensenShannon,
  numericBins,
  numericDrift,
  PSI_EPSILON,
  predictionDrift,
  psi,
} from '#shared/drift/metrics.ts';
import { binIndex, type NumericBaseline, UNSEEN } from '#shared/registry/baseline.ts';

describe('psi (golden, computed by hand)', () => {
  it('sums (a − e)·ln(a/e) over the bins', () => {
    // e = [0.5, 0.5], a = [0.25, 0.75]
    //   (0.25 − 0.5)·ln(0.25/0.5) = (−0.25)·(−0.693147) = 0.173287
    //   (0.75 − 0.5)·ln(0.75/0.5) = ( 0.25)·( 0.405465) = 0.101366
    //                                                  = 0.274653
    expect(psi([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.274653, 6);
    expect(psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5])).toBe(0);
  });

  it('floors empty bins at PSI_EPSILON (1e-4) so the sum stays finite', () => {
    // e = [0.5, 0.5, 0], a = [0.4, 0.5, 0.1]; the empty expected bin counts as 0.0001
    //   (0.4 − 0.5)·ln(0.4/0.5)       = (−0.1)·(−0.223144)  = 0.022314
    //   (0.5 − 0.5)·ln(1)             =                       0
    //   (0.1 − 0.0001)·ln(0.1/0.0001) = 0.0999·6.907755     = 0.690085
    //                                                         = 0.712399
    expect(PSI_EPSILON).toBe(1e-4);
    expect(psi([0.5, 0.5, 0], [0.4, 0.5, 0.1])).toBeCloseTo(0.712399, 6);
    // A bin empty on both sides adds nothing.
    expect(psi([0.5, 0.5, 0], [0.25, 0.75, 0])).toBeCloseTo(0.274653, 6);
  });

  it('refuses distributions of different lengths', () => {
    expect(() => psi([1], [0.5, 0.5])).toThrow(/differ in length: 1 vs 2/);
  });
});

describe('jensenShannon (golden, base 2)', () => {
  it('is 0 for equal distributions and 1 for disjoint ones', () => {
    expect(jensenShannon([0.2, 0.8], [0.2, 0.8])).toBe(0);
    // M = [0.5, 0.5]; KL(P‖M) = 1·log2(1/0.5) = 1, KL(Q‖M) = 1 → (1 + 1)/2 = 1
    expect(jensenShannon([1, 0], [0, 1])).toBe(1);
  });

  it('averages the two KL divergences to the midpoint', () => {
    // P = [0.5, 0.5], Q = [1, 0], M = [0.75, 0.25]
    //   KL(P‖M) = 0.5·log2(0.5/0.75) + 0.5·log2(0.5/0.25) = −0.292481 + 0.5 = 0.207519
    //   KL(Q‖M) = 1·log2(1/0.75)                                           = 0.415037
    //   JS = (0.207519 + 0.415037)/2                                        = 0.311278
    expect(jensenShannon([0.5, 0.5], [1, 0])).toBeCloseTo(0.311278, 6);
    expect(jensenShannon([1, 0], [0.5, 0.5])).toBeCloseTo(0.311278, 6);
  });
});

describe('countBins', () => {
  it('uses lower-inclusive edges like binIndex, and counts NaN and ±Infinity apart', () => {
    const values = Float32Array.of(
      0,
      1,
      1.5,
      2,
      4.99,
      5,
      100,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -Infinity,
    );
    const counted = countBins(values, 0, 1, values.length, Float64Array.of(1, 2, 5));
    expect(Array.from(counted.counts)).toEqual([1, 2, 2, 2]);
    expect(counted).toMatchObject({ valid: 7, nan: 1, infinite: 2 });
  });

  it('reads one column of a row-major matrix', () => {
    // 3 columns; column 1 holds 10, 20, 30, 40
    const x = Float32Array.of(0, 10, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0);
    expect(Array.from(countBins(x, 1, 3, 4, Float64Array.of(25)).counts)).toEqual([2, 2]);
  });

  it('agrees with binIndex when there are too many edges for a linear scan', () => {
    const edges = Array.from({ length: 40 }, (_, i) => i * 2.5);
    const values = Float64Array.from({ length: 1000 }, (_, i) => (i % 211) / 2 - 3);
    const expected = new Array(edges.length + 1).fill(0);
    for (const v of values) expected[binIndex(edges, v)]++;
    expect(Array.from(countBins(values, 0, 1, values.length, Float64Array.from(edges)).counts)).toEqual(
      expected,
    );
  });
});

describe('countCategories', () => {
  it('names a row by its hot column, all zeros as unseen, non-finite as invalid', () => {
    // two one-hot columns (1 and 2) in rows of 3
    const x = Float32Array.of(9, 1, 0, 9, 0, 1, 9, 0, 0, 9, 0, 1, 9, Number.NaN, 0);
    expect(countCategories(x, 5, 3, [1, 2])).toEqual({
      counts: Float64Array.of(1, 2, 1),
      valid: 4,
      invalid: 1,
    });
  });
});

const base = (over: Partial<NumericBaseline> = {}): NumericBaseline => ({
  feature: 'f',
  edges: [1],
  fractions: [0.5, 0.5],
  mean: 1,
  min: 0,
  max: 2,
  ...over,
});

describe('numericDrift', () => {
  const counted = (values: number[], edges: number[]) =>
    countBins(Float64Array.from(values), 0, 1, values.length, Float64Array.from(edges));

  it('compares shares of the finite values on the baseline bins', () => {
    const drift = numericDrift(base(), counted([0, 1, 1, 1, Number.NaN], [1]), 5, 1);
    expect(drift).toMatchObject({ current: [0.25, 0.75], valid: 4, nan: 1, infinite: 0, insufficient: null });
    expect(drift.psi).toBeCloseTo(0.274653, 6);
  });

  it('says why an empty window is insufficient, with no NaN anywhere', () => {
    const drift = numericDrift(base(), counted([], [1]), 0, 1);
    expect(drift).toMatchObject({
      psi: null,
      current: [0, 0],
      insufficient: 'insufficient data: no rows in the window',
    });
    const allNaN = numericDrift(base(), counted([Number.NaN, Number.NaN], [1]), 2, 1);
    expect(allNaN).toMatchObject({
      psi: null,
      nan: 2,
      insufficient: 'insufficient data: none of the 2 values is finite',
    });
    expect(numericDrift(base(), counted([0, 2], [1]), 2, 10).insufficient).toBe(
      'insufficient data: 2 finite values, fewer than the 10 required',
    );
  });

  it('gives an all-ties baseline (edges: []) three bins around its value, so a move is visible', () => {
    const ties = base({ edges: [], fractions: [1], min: 3, max: 3, mean: 3 });
    const bins = numericBins(ties);
    expect(bins.fractions).toEqual([0, 1, 0]);
    expect(bins.edges[0]).toBe(3);
    expect(bins.edges[1]).toBeGreaterThan(3);
    expect(bins.edges[1]! - 3).toBeLessThan(1e-15); // the next double: only 3 itself falls in the middle bin
    expect(numericDrift(ties, counted([3, 3, 3], bins.edges), 3, 1).psi).toBe(0);
    // All of the window above the value: the middle bin goes 1 → 0.0001, the top bin 0.0001 → 1
    //   (0.0001 − 1)·ln(0.0001/1) + (1 − 0.0001)·ln(1/0.0001) = 2·0.9999·9.210340 = 18.418839
    const moved = numericDrift(ties, counted([5, 5, 5], bins.edges), 3, 1);
    expect(moved.current).toEqual([0, 0, 1]);
    expect(moved.psi).toBeCloseTo(18.418839, 5);
  });

  it('keeps the single bin when the baseline has no finite range', () => {
    const empty = base({ edges: [], fractions: [0], min: Number.POSITIVE_INFINITY, max: -Infinity });
    expect(numericBins(empty)).toEqual({ edges: [], fractions: [0] });
  });
});

describe('categoricalDrift', () => {
  const plan = {
    field: 'plan',
    categories: ['basic', 'standard', 'premium'],
    frequencies: { basic: 0.5, standard: 0.3, premium: 0.2, [UNSEEN]: 0 },
  };

  it('scores a category the baseline never saw (unseen) with PSI and JS', () => {
    // baseline [0.5, 0.3, 0.2, 0], window [0.4, 0.3, 0.2, 0.1]: 10% of rows bring a new plan
    // PSI: same bins as the empty-bin golden above = 0.712399
    // JS:  M = [0.45, 0.3, 0.2, 0.05]
    //   KL(P‖M) = 0.5·log2(0.5/0.45)                      = 0.076002
    //   KL(Q‖M) = 0.4·log2(0.4/0.45) + 0.1·log2(0.1/0.05) = −0.067970 + 0.1 = 0.032030
    //   JS = (0.076002 + 0.032030)/2                      = 0.054016
    const drift = categoricalDrift(
      plan,
      { counts: Float64Array.of(4, 3, 2, 1), valid: 10, invalid: 0 },
      10,
      1,
    );
    expect(drift.categories).toEqual(['basic', 'standard', 'premium', UNSEEN]);
    expect(drift.current).toEqual([0.4, 0.3, 0.2, 0.1]);
    expect(drift.psi).toBeCloseTo(0.712399, 6);
    expect(drift.js).toBeCloseTo(0.054016, 6);
  });

  it('is insufficient, not NaN, for an empty window', () => {
    const drift = categoricalDrift(plan, { counts: new Float64Array(4), valid: 0, invalid: 0 }, 0, 1);
    expect(drift).toMatchObject({ psi: null, js: null, current: [0, 0, 0, 0] });
    expect(drift.insufficient).toMatch(/no rows/);
  });
});

describe('predictionDrift', () => {
  const score = { edges: [0.5], fractions: [0.75, 0.25], positiveRate: 0.25, threshold: 0.5, mean: 0.3 };

  it('gives score PSI and the positive-rate change in points, without the non-finite scores', () => {
    // shares [0.5, 0.5] against [0.75, 0.25]:
    //   (0.5 − 0.75)·ln(0.5/0.75) + (0.5 − 0.25)·ln(0.5/0.25) = 0.101366 + 0.173287 = 0.274653
    const scores = Float64Array.of(0.1, 0.2, 0.6, 0.7, Number.NaN, Number.POSITIVE_INFINITY);
    const drift = predictionDrift(score, scores, scores.length, 1);
    expect(drift).toMatchObject({ valid: 4, nan: 1, infinite: 1, current: [0.5, 0.5] });
    expect(drift.scorePsi).toBeCloseTo(0.274653, 6);
    expect(drift.positiveRate).toEqual({ baseline: 0.25, current: 0.5 });
    expect(drift.positiveRateDelta).toBe(25);
  });

  it('reports an exact 10-point move as 10 (no 9.999999999999998)', () => {
    const scores = Float64Array.from({ length: 20 }, (_, i) => (i < 7 ? 0.9 : 0.1)); // 35% positive
    expect(predictionDrift(score, scores, 20, 1).positiveRateDelta).toBe(10);
  });

  it('only reads the first `rows` scores and is insufficient without any', () => {
    const drift = predictionDrift(score, Float64Array.of(0.9, 0.9), 0, 1);
    expect(drift).toMatchObject({ scorePsi: null, positiveRateDelta: null, positiveRate: { current: null } });
  });
});
