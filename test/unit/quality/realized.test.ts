import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '#shared/model/errors.ts';
import { realizedQuality } from '#shared/quality/realized.ts';

describe('realizedQuality', () => {
  it('gives the figures at the threshold (hand-computed)', () => {
    // 0.9 is a true positive, 0.3 a false negative, 0.4 and 0.1 true negatives.
    const figures = realizedQuality([1, 0, 1, 0], [0.9, 0.4, 0.3, 0.1], 0.5);
    expect(figures).toMatchObject({
      matched: 4,
      // Positives 0.9 and 0.3 against negatives 0.4 and 0.1: 3 of 4 pairs ranked right.
      auc: 0.75,
      accuracy: 0.75,
      precision: 1,
      recall: 0.5,
      positiveRate: 0.25,
      observedRate: 0.5,
    });
    expect(figures.logloss).toBeCloseTo(
      -(Math.log(0.9) + Math.log(0.6) + Math.log(0.3) + Math.log(0.9)) / 4,
      14,
    );
    // One row in each of bins 1, 3, 4 and 9: gaps 0.1, 0.7, 0.4 and 0.1.
    expect(figures.expectedCalibrationError).toBeCloseTo(1.3 / 4, 14);
    expect(figures.reliability).toHaveLength(10);
    expect(figures.reliability[3]).toEqual({
      lower: 0.3,
      upper: 0.4,
      count: 1,
      meanPredicted: 0.3,
      observedRate: 1,
    });
    expect(figures.reliability[5]!.count).toBe(0);
  });

  it('has no AUC, and no error, when the outcomes are all of one class', () => {
    const none = realizedQuality([0, 0, 0], [0.2, 0.7, 0.1], 0.5);
    expect(none).toMatchObject({ matched: 3, auc: null, observedRate: 0, positiveRate: 1 / 3, recall: 0 });
    const all = realizedQuality([1, 1], [0.2, 0.7], 0.5);
    expect(all).toMatchObject({ auc: null, observedRate: 1, precision: 1, recall: 0.5 });
  });

  it('rejects bad input, naming the field', () => {
    expect(() => realizedQuality([], [], 0.5)).toThrow(InvalidParameterError);
    expect(() => realizedQuality([], [], 0.5)).toThrow(/labels must not be empty/);
    expect(() => realizedQuality([1, 2], [0.2, 0.3], 0.5)).toThrow(/labels\[1\] is 2, labels must be 0 or 1/);
    expect(() => realizedQuality([1, 0], [0.2], 0.5)).toThrow(/probabilities has 1 values but labels has 2/);
    expect(() => realizedQuality([1, 0], [0.2, 1.5], 0.5)).toThrow(/probabilities\[1\] is 1.5/);
    expect(() => realizedQuality([1, 0], [0.2, 0.3], -1)).toThrow(/threshold must be in \[0, 1\]/);
  });
});
