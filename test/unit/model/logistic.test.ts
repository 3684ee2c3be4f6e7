import { describe, expect, it } from 'vitest';
import { type LogisticParams, trainLogistic } from '#shared/model/logistic.ts';
import { linearMargin } from '#shared/model/model-types.ts';
import type { Random } from '#shared/random.ts';
import { synthesize } from '../../support/synthetic-data.ts';

const TRUE_WEIGHTS = [0.8, -1.2, 0.02, 0.5];
const TRUE_INTERCEPT = -16.2;

/** Features on very different scales (the fit standardizes, the returned model must not need to). */
function knownLogistic(rows: number, seed: number) {
  const features: Array<(random: Random) => number> = [
    (r) => r.normal(10, 1),
    (r) => r.normal(-5, 0.5),
    (r) => r.normal(100, 30),
    (r) => (r.float() < 0.3 ? 1 : 0),
  ];
  return synthesize(rows, seed, features, (x, o) =>
    TRUE_WEIGHTS.reduce((margin, w, j) => margin + w * x[o + j]!, TRUE_INTERCEPT),
  );
}

describe('trainLogistic', () => {
  it('recovers known weights, with the standardization folded into the model', () => {
    const data = knownLogistic(40_000, 1);
    const { model, converged, iterations } = trainLogistic(data);
    expect(converged).toBe(true);
    expect(iterations).toBeLessThan(20);
    expect(model.kind).toBe('linear');
    expect(model.featureCount).toBe(4);
    // About four standard errors at this sample size.
    const tolerance = [0.05, 0.1, 0.002, 0.1];
    model.weights.forEach((w, j) => {
      expect(Math.abs(w - TRUE_WEIGHTS[j]!)).toBeLessThan(tolerance[j]!);
    });
    expect(Math.abs(model.intercept - TRUE_INTERCEPT)).toBeLessThan(1);
    // On raw features the model's probabilities track the true ones.
    let gap = 0;
    for (let i = 0; i < 1_000; i++) {
      const p = 1 / (1 + Math.exp(-linearMargin(model, data.x, i * 4)));
      gap += Math.abs(p - 1 / (1 + Math.exp(-data.trueMargins[i]!)));
    }
    expect(gap / 1_000).toBeLessThan(0.01);
  });

  it('handles a complete one-hot group and a constant column (singular without the L2 term)', () => {
    const features: Array<(random: Random) => number> = [
      (r) => r.normal(),
      (r) => (r.float() < 0.5 ? 1 : 0),
      () => 3,
    ];
    const base = synthesize(5_000, 2, features, (x, o) => 1.5 * x[o]! + (x[o + 1] === 1 ? 0.7 : -0.3));
    // Append the complement of the one-hot column: the two sum to the intercept column.
    const x = new Float32Array(5_000 * 4);
    for (let i = 0; i < 5_000; i++) {
      x.set(base.x.subarray(i * 3, i * 3 + 3), i * 4);
      x[i * 4 + 3] = 1 - base.x[i * 3 + 1]!;
    }
    const { model, converged } = trainLogistic({ x, y: base.y, featureCount: 4 });
    expect(converged).toBe(true);
    expect(model.weights[2]).toBe(0);
    // Only the difference of the one-hot pair is identified: 0.7 - (-0.3) = 1.
    expect(model.weights[1]! - model.weights[3]!).toBeCloseTo(1, 0);
    expect(model.weights[0]).toBeCloseTo(1.5, 0);
  });

  it('is deterministic', () => {
    const data = knownLogistic(2_000, 3);
    expect(JSON.stringify(trainLogistic(data).model)).toBe(JSON.stringify(trainLogistic(data).model));
  });

  it('names the bad parameter', () => {
    const data = knownLogistic(100, 4);
    const bad: Array<[Partial<LogisticParams>, RegExp]> = [
      [{ lambda: 0 }, /^lambda must be in \(0, /],
      [{ maxIterations: 0 }, /^maxIterations must be an integer >= 1/],
      [{ tolerance: -1 }, /^tolerance must be in \(0, /],
    ];
    for (const [params, message] of bad) {
      expect(() => trainLogistic(data, params)).toThrow(message);
      expect(() => trainLogistic(data, params)).toThrow(
        expect.objectContaining({ parameter: Object.keys(params)[0] }),
      );
    }
    expect(() => trainLogistic({ ...data, y: data.y.map(() => 0) })).toThrow(/both classes/);
  });
});
