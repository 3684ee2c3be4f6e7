import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '#shared/model/errors.ts';
import {
  accuracy,
  auc,
  calibration,
  confusion,
  evaluateBinary,
  logLoss,
  precision,
  recall,
  stratifiedSplit,
} from '#shared/model/metrics.ts';

describe('auc', () => {
  it('counts ties as one half (hand-computed: 6 of 9 pairs)', () => {
    // negatives 0.1, 0.4, 0.4; positives 0.35 (beats 1), 0.8 (beats 3), 0.4 (beats 1, ties 2) → 6/9
    expect(auc([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.4, 0.4])).toBeCloseTo(2 / 3, 15);
  });

  it('is 1 for a perfect ranking, 0 for a reversed one and 0.5 when every score ties', () => {
    expect(auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])).toBe(1);
    expect(auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4])).toBe(0);
    expect(auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
  });

  it('does not depend on the order of the rows', () => {
    expect(auc(Uint8Array.from([1, 0, 1, 0, 0, 1]), [0.4, 0.4, 0.8, 0.1, 0.4, 0.35])).toBeCloseTo(2 / 3, 15);
  });

  it('needs both classes', () => {
    expect(() => auc([1, 1], [0.2, 0.3])).toThrow(/at least one positive and one negative/);
  });

  it('rejects mismatched lengths and NaN scores, naming the argument', () => {
    expect(() => auc([1, 0], [0.2])).toThrow(/scores has 1 values but labels has 2/);
    expect(() => auc([1, 0], [0.2, Number.NaN])).toThrow(/scores\[1\] is NaN/);
  });
});

describe('logLoss', () => {
  it('matches the hand-computed mean negative log-likelihood', () => {
    const expected = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.6) + Math.log(1 - 1e-15)) / 4;
    expect(logLoss([1, 0, 1, 0], [0.9, 0.2, 0.6, 0])).toBeCloseTo(expected, 14);
    expect(logLoss([1, 0, 1, 0], [0.9, 0.2, 0.6, 0])).toBeCloseTo(0.2098324226845, 12);
  });

  it('clips probabilities so a confident miss costs -log(eps), not Infinity', () => {
    expect(logLoss([1], [0])).toBeCloseTo(-Math.log(1e-15), 10);
    expect(logLoss([0], [1], 1e-7)).toBeCloseTo(-Math.log(1e-7), 6);
  });
});

describe('threshold metrics', () => {
  const labels = [1, 1, 1, 0, 0, 0, 1, 0];
  const probabilities = [0.9, 0.6, 0.4, 0.7, 0.2, 0.5, 0.1, 0.3];

  it('counts a probability equal to the threshold as positive', () => {
    expect(confusion(labels, probabilities, 0.5)).toEqual({
      truePositives: 2,
      falsePositives: 2,
      trueNegatives: 2,
      falseNegatives: 2,
    });
  });

  it('gives precision, recall and accuracy at 0.5 and at 0.8', () => {
    expect([
      precision(labels, probabilities),
      recall(labels, probabilities),
      accuracy(labels, probabilities),
    ]).toEqual([0.5, 0.5, 0.5]);
    expect(precision(labels, probabilities, 0.8)).toBe(1);
    expect(recall(labels, probabilities, 0.8)).toBe(0.25);
    expect(accuracy(labels, probabilities, 0.8)).toBe(5 / 8);
  });

  it('defines precision as 0 when nothing is predicted positive, recall as 0 without positives', () => {
    expect(precision([1, 0], [0.1, 0.2])).toBe(0);
    expect(recall([0, 0], [0.9, 0.2])).toBe(0);
  });

  it('rejects a threshold outside [0, 1]', () => {
    expect(() => accuracy(labels, probabilities, 1.5)).toThrow(/threshold must be in \[0, 1\]/);
  });

  it('bundles the held-out figures', () => {
    const result = evaluateBinary(labels, probabilities);
    expect(result).toMatchObject({ accuracy: 0.5, precision: 0.5, recall: 0.5, threshold: 0.5 });
    expect(result.auc).toBe(auc(labels, probabilities));
    expect(result.logloss).toBe(logLoss(labels, probabilities));
  });
});

describe('calibration', () => {
  it('bins probabilities into equal-width bins (hand-computed, 4 bins)', () => {
    const result = calibration([0, 0, 1, 1, 1, 0], [0.1, 0.2, 0.3, 0.6, 0.9, 1.0], 4);
    const rounded = result.bins.map((bin) => ({
      ...bin,
      meanPredicted: Number(bin.meanPredicted?.toFixed(12)),
      observedRate: bin.observedRate,
    }));
    expect(rounded).toEqual([
      { lower: 0, upper: 0.25, count: 2, meanPredicted: 0.15, observedRate: 0 },
      { lower: 0.25, upper: 0.5, count: 1, meanPredicted: 0.3, observedRate: 1 },
      { lower: 0.5, upper: 0.75, count: 1, meanPredicted: 0.6, observedRate: 1 },
      // 1.0 falls in the last bin
      { lower: 0.75, upper: 1, count: 2, meanPredicted: 0.95, observedRate: 0.5 },
    ]);
    // (0.01 + 0.04 + 0.49 + 0.16 + 0.01 + 1) / 6
    expect(result.brier).toBeCloseTo(0.285, 14);
    // (2 * 0.15 + 1 * 0.7 + 1 * 0.4 + 2 * 0.45) / 6
    expect(result.expectedCalibrationError).toBeCloseTo(2.3 / 6, 14);
  });

  it('reports empty bins with null means', () => {
    const result = calibration([0, 1], [0.05, 0.95]);
    expect(result.bins).toHaveLength(10);
    expect(result.bins[0]).toEqual({ lower: 0, upper: 0.1, count: 1, meanPredicted: 0.05, observedRate: 0 });
    expect(result.bins[5]).toEqual({
      lower: 0.5,
      upper: 0.6,
      count: 0,
      meanPredicted: null,
      observedRate: null,
    });
    expect(result.bins[9]!.observedRate).toBe(1);
  });

  it('rejects probabilities outside [0, 1] and a bad bin count', () => {
    expect(() => calibration([1], [1.2])).toThrow(/probabilities\[0\] is 1.2/);
    expect(() => calibration([1], [0.2], 0)).toThrow(/binCount must be an integer >= 1/);
  });
});

describe('stratifiedSplit', () => {
  const labels = Array.from({ length: 100 }, (_, i) => (i % 10 < 3 ? 1 : 0)); // 30 positives

  it('cuts each class by the fractions and keeps the label rate', () => {
    const split = stratifiedSplit(labels, { validation: 0.1, test: 0.2, seed: 7 });
    expect([split.train.length, split.validation.length, split.test.length]).toEqual([70, 10, 20]);
    const positives = (rows: Uint32Array) => rows.reduce((sum, row) => sum + labels[row]!, 0);
    expect([positives(split.train), positives(split.validation), positives(split.test)]).toEqual([21, 3, 6]);
    const all = [...split.train, ...split.validation, ...split.test].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...split.test]).toEqual([...split.test].sort((a, b) => a - b));
  });

  it('is deterministic for a seed and changes with it', () => {
    const a = stratifiedSplit(labels, { test: 0.2, seed: 1 });
    const b = stratifiedSplit(labels, { test: 0.2, seed: 1 });
    const c = stratifiedSplit(labels, { test: 0.2, seed: 2 });
    expect(b.test).toEqual(a.test);
    expect(c.test).not.toEqual(a.test);
    expect(a.validation).toHaveLength(0);
  });

  it('names the bad fraction or label', () => {
    expect(() => stratifiedSplit(labels, { test: 1, seed: 1 })).toThrow(/test must be in \[0, 1\)/);
    expect(() => stratifiedSplit(labels, { validation: 0.5, test: 0.5, seed: 1 })).toThrow(
      /validation \+ test must be < 1/,
    );
    expect(() => stratifiedSplit([0, 2], { test: 0.5, seed: 1 })).toThrow(InvalidParameterError);
  });
});
