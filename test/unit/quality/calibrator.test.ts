import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '#shared/model/errors.ts';
import { calibration } from '#shared/model/metrics.ts';
import {
  type CalibrationMap,
  calibrate,
  calibrationMapSchema,
  calibratorOf,
  fitCalibrationMap,
  IDENTITY_MAP,
} from '#shared/quality/calibrator.ts';
import { Random } from '#shared/random.ts';

describe('fitCalibrationMap', () => {
  it('pools adjacent violators (hand-computed) and keeps each block’s two ends', () => {
    // (0.1, 0) | (0.2, 1) (0.3, 0) (0.4, 0) pool to 1/3 | (0.5, 1) (0.6, 1) pool to 1 (equal rates).
    const map = fitCalibrationMap([0.4, 0.1, 0.6, 0.3, 0.2, 0.5], [0, 0, 1, 0, 1, 1]);
    expect(map.scores).toEqual([0.1, 0.2, 0.4, 0.5, 0.6]);
    expect(map.rates).toEqual([0, 1 / 3, 1 / 3, 1, 1]);
  });

  it('gives equal scores one rate, whatever the order of their rows', () => {
    // 0.3 holds two positives of three, 0.7 one of one.
    expect(fitCalibrationMap([0.3, 0.3, 0.3, 0.7], [1, 1, 0, 1])).toEqual({
      scores: [0.3, 0.7],
      rates: [2 / 3, 1],
    });
    expect(fitCalibrationMap([0.7, 0.3, 0.3, 0.3], [1, 0, 1, 1])).toEqual({
      scores: [0.3, 0.7],
      rates: [2 / 3, 1],
    });
  });

  it('is one flat block when the labels fall as the scores rise', () => {
    expect(fitCalibrationMap([0.2, 0.5, 0.9], [1, 1, 0])).toEqual({
      scores: [0.2, 0.9],
      rates: [2 / 3, 2 / 3],
    });
  });

  it('pools the neighbours whose pooling costs least until the knots fit (hand-computed)', () => {
    // Blocks 0.1 (1 row, rate 0), 0.2 (2, 1/2), 0.4 (4, 3/4), 0.6 (1, 1): four knots.
    const scores = [0.1, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.6];
    const labels = [0, 0, 1, 0, 1, 1, 1, 1];
    expect(fitCalibrationMap(scores, labels).scores).toEqual([0.1, 0.2, 0.4, 0.6]);
    // Costs w₁w₂/(w₁+w₂)·Δ²: 1/6, 1/12, 1/20 → pool 0.4 and 0.6 (rate 4/5, knots 0.4 and 0.6, still
    // four); then 1/6 against 10/7·0.09 → pool 0.2 with it: 5 of 7 over [0.2, 0.6].
    const capped = fitCalibrationMap(scores, labels, 3);
    expect(capped.scores).toEqual([0.1, 0.2, 0.6]);
    expect(capped.rates[0]).toBe(0);
    expect(capped.rates[1]).toBeCloseTo(5 / 7, 15);
    expect(capped.rates[2]).toBeCloseTo(5 / 7, 15);
  });

  it('stays within the knot cap, monotone and valid on many rows', () => {
    const random = new Random(5);
    const scores = Float64Array.from({ length: 20_000 }, () => random.float());
    // Calibrated scores: PAV follows the diagonal with many small steps (124 knots here).
    const labels = Uint8Array.from(scores, (s) => (random.float() < s ? 1 : 0));
    const full = fitCalibrationMap(scores, labels);
    expect(full.scores.length).toBeGreaterThan(100);
    const capped = fitCalibrationMap(scores, labels, 40);
    expect(capped.scores.length).toBeLessThanOrEqual(40);
    expect(calibrationMapSchema.safeParse(full).error).toBeUndefined();
    expect(calibrationMapSchema.safeParse(capped).error).toBeUndefined();
    // Pooling the cheapest neighbours barely moves the map.
    for (const s of [0.05, 0.3, 0.5, 0.7, 0.95]) {
      expect(Math.abs(calibrate(capped, s) - calibrate(full, s))).toBeLessThan(0.03);
      expect(Math.abs(calibrate(capped, s) - s)).toBeLessThan(0.05);
    }
  });

  it('pools labels that fall with the score over a stretch into one flat block', () => {
    const random = new Random(6);
    const scores = Float64Array.from({ length: 20_000 }, () => random.float());
    // The rate rises to s = 0.26, falls to s = 0.79 and rises again.
    const labels = Uint8Array.from(scores, (s) => (random.float() < 0.5 + 0.4 * Math.sin(6 * s) ? 1 : 0));
    const map = fitCalibrationMap(scores, labels);
    expect(calibrationMapSchema.safeParse(map).error).toBeUndefined();
    expect(calibrate(map, 0.4)).toBeCloseTo(calibrate(map, 0.7), 12);
  });

  it('rejects bad input, naming the field', () => {
    const fitting = (scores: number[], labels: number[], maxKnots?: number) => () =>
      fitCalibrationMap(scores, labels, maxKnots);
    expect(fitting([], [])).toThrow(InvalidParameterError);
    expect(fitting([], [])).toThrow(/scores must not be empty/);
    expect(fitting([0.5], [1, 0])).toThrow(/labels has 2 values but scores has 1/);
    expect(fitting([0.5, Number.NaN], [1, 0])).toThrow(/scores\[1\] is NaN/);
    expect(fitting([0.5, 1.2], [1, 0])).toThrow(/scores\[1\] is 1.2/);
    expect(fitting([0.5, 0.2], [1, 2])).toThrow(/labels\[1\] is 2/);
    expect(fitting([0.5], [1], 1)).toThrow(/maxKnots must be an integer >= 2/);
  });
});

describe('calibrate', () => {
  const map: CalibrationMap = { scores: [0.1, 0.2, 0.4, 0.5, 0.6], rates: [0, 1 / 3, 1 / 3, 1, 1] };

  it('interpolates linearly between knots and clamps beyond them (hand-computed)', () => {
    expect(calibrate(map, 0)).toBe(0);
    expect(calibrate(map, 0.1)).toBe(0);
    expect(calibrate(map, 0.15)).toBeCloseTo(1 / 6, 15);
    expect(calibrate(map, 0.3)).toBeCloseTo(1 / 3, 15);
    expect(calibrate(map, 0.45)).toBeCloseTo(2 / 3, 15);
    expect(calibrate(map, 0.5)).toBe(1);
    expect(calibrate(map, 1)).toBe(1);
  });

  it('is the identity for the identity map and a constant for a single knot', () => {
    for (const s of [0, 0.123, 0.5, 0.999, 1]) expect(calibrate(IDENTITY_MAP, s)).toBeCloseTo(s, 15);
    expect(calibrate({ scores: [0.4], rates: [0.3] }, 0.1)).toBe(0.3);
    expect(calibrate({ scores: [0.4], rates: [0.3] }, 0.9)).toBe(0.3);
  });
});

describe('calibrationMapSchema', () => {
  it('refuses maps that are not monotone, of unequal lengths or outside [0, 1]', () => {
    const issue = (map: unknown) => calibrationMapSchema.safeParse(map).error?.issues[0];
    expect(issue({ scores: [0.2, 0.2], rates: [0, 1] })).toMatchObject({ path: ['scores', 1] });
    expect(issue({ scores: [0.2, 0.3], rates: [0.5, 0.4] })).toMatchObject({ path: ['rates', 1] });
    expect(issue({ scores: [0.2, 0.3], rates: [0.5] })).toMatchObject({ path: ['rates'] });
    expect(issue({ scores: [0.2, 1.3], rates: [0.5, 0.6] })).toMatchObject({ path: ['scores', 1] });
    expect(issue({ scores: [], rates: [] })).toMatchObject({ path: ['scores'] });
  });
});

describe('calibratorOf', () => {
  const stored = { scores: [0.1, 0.6], rates: [0.05, 0.7] };
  const bins = [
    { lower: 0, upper: 0.1, count: 10, meanPredicted: 0.05, observedRate: 0.1 },
    { lower: 0.1, upper: 0.2, count: 0, meanPredicted: null, observedRate: null },
    { lower: 0.2, upper: 0.3, count: 10, meanPredicted: 0.25, observedRate: 0.05 },
    { lower: 0.3, upper: 0.4, count: 20, meanPredicted: 0.35, observedRate: 0.4 },
  ];

  it('takes the stored isotonic map first', () => {
    expect(calibratorOf({ auc: 0.8, calibration_map: stored, calibration: bins })).toEqual({
      source: 'isotonic',
      map: stored,
    });
  });

  it('falls back to the reliability bins, non-empty ones weighted by count and made monotone', () => {
    // 0.05 (rate 0.1) and 0.25 (rate 0.05) violate: 10 + 10 rows pool to 1.5 / 20 = 0.075.
    const calibrator = calibratorOf({ auc: 0.8, calibration: bins });
    expect(calibrator.source).toBe('reliability-bins');
    expect(calibrator.map.scores).toEqual([0.05, 0.25, 0.35]);
    expect(calibrator.map.rates.map((r) => Number(r.toFixed(12)))).toEqual([0.075, 0.075, 0.4]);
  });

  it('reads the bins training has always stored', () => {
    const random = new Random(2);
    const scores = Float64Array.from({ length: 2000 }, () => random.float());
    const labels = Uint8Array.from(scores, (s) => (random.float() < s ? 1 : 0));
    const calibrator = calibratorOf({ calibration: calibration(labels, scores, 10).bins });
    expect(calibrator.source).toBe('reliability-bins');
    expect(calibrator.map.scores.length).toBeGreaterThanOrEqual(2);
    // Well calibrated scores: the bins' map stays near the identity.
    for (const s of [0.2, 0.5, 0.8]) expect(Math.abs(calibrate(calibrator.map, s) - s)).toBeLessThan(0.06);
  });

  it('is the identity without a map or non-empty bins (external models, empty held-out sets)', () => {
    expect(calibratorOf({ auc: 0.8 })).toEqual({ source: 'identity', map: IDENTITY_MAP });
    expect(calibratorOf({ calibration: [bins[1]] })).toEqual({ source: 'identity', map: IDENTITY_MAP });
  });

  it('refuses a malformed stored map or bins instead of silently falling back, naming the field', () => {
    const bad = () => calibratorOf({ calibration_map: { scores: [0.1, 0.6], rates: [0.7, 0.05] } });
    expect(bad).toThrow(InvalidParameterError);
    expect(bad).toThrow(/metrics\.calibration_map\.rates\.1: rates must not decrease/);
    expect(() => calibratorOf({ calibration: [{ count: 'x' }] })).toThrow(/metrics\.calibration\.0\.count/);
  });
});
