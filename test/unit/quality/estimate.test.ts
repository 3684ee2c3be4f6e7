import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '#shared/model/errors.ts';
import { accuracy, auc } from '#shared/model/metrics.ts';
import { type Calibrator, IDENTITY_MAP } from '#shared/quality/calibrator.ts';
import { estimateQuality } from '#shared/quality/estimate.ts';
import { Random } from '#shared/random.ts';

const identity: Calibrator = { source: 'identity', map: IDENTITY_MAP };
const isotonic: Calibrator = {
  source: 'isotonic',
  map: { scores: [0.1, 0.2, 0.4, 0.5, 0.6], rates: [0, 1 / 3, 1 / 3, 1, 1] },
};

describe('estimateQuality', () => {
  it('expects each row right with p above the threshold and 1 − p below (hand-computed)', () => {
    // 0.9 and 0.6 decide positive, 0.4 and 0.1 negative: (0.9 + 0.6 + 0.6 + 0.9) / 4.
    expect(estimateQuality([0.9, 0.6, 0.4, 0.1], 0.5, identity).accuracy).toBeCloseTo(0.75, 15);
    // Calibrated 1/6, 2/3 and 1; only 0.7 reaches the threshold: (5/6 + 1/3 + 1) / 3.
    expect(estimateQuality([0.15, 0.45, 0.7], 0.5, isotonic).accuracy).toBeCloseTo(13 / 18, 15);
    // A score equal to the threshold decides positive, as the realized figures count it.
    expect(
      estimateQuality([0.5, 0.2], 0.5, { source: 'isotonic', map: { scores: [0], rates: [0.8] } }),
    ).toEqual({
      predictions: 2,
      auc: 0.5,
      accuracy: (0.8 + 0.2) / 2,
    });
  });

  it('takes the area under the expected ROC curve over pairs of distinct rows (hand-computed)', () => {
    // Rows 0.8, 0.6, 0.3 (identity: p = score). Each ordered pair (i positive, j negative, i ≠ j) weighs
    // p_i(1 − p_j): ranked right 0.8·0.4 + 0.8·0.7 + 0.6·0.7 = 1.30 of 0.88 + 0.54 + 0.18 = 1.60.
    expect(estimateQuality([0.6, 0.3, 0.8], 0.5, identity).auc).toBeCloseTo(1.3 / 1.6, 14);
    // Equal scores count one half: two rows at 0.7 over 0.2 give 2·0.7·0.8 + ½·2·0.7·0.3 = 1.33 of
    // 2·0.7·(0.3 + 0.8) + 0.2·(0.3 + 0.3) = 1.66.
    expect(estimateQuality([0.7, 0.2, 0.7], 0.5, identity).auc).toBeCloseTo(1.33 / 1.66, 14);
    expect(estimateQuality([0.5, 0.5, 0.5], 0.5, identity).auc).toBe(0.5);
  });

  it('ranks by the score, not by the calibrated probability', () => {
    // 0.3 and 0.35 calibrate to the same 1/3 but rank apart: the map's flat stretch makes no tie.
    const a = estimateQuality([0.3, 0.35, 0.05, 0.55], 0.5, isotonic);
    const b = estimateQuality([0.35, 0.3, 0.55, 0.05], 0.5, isotonic);
    expect(a).toEqual(b);
    expect(a.auc).toBeGreaterThan(0.5);
  });

  it('has no AUC when the calibrated scores leave a class with no expected members', () => {
    const allPositive: Calibrator = { source: 'isotonic', map: { scores: [0.2], rates: [1] } };
    const allNegative: Calibrator = { source: 'isotonic', map: { scores: [0.2], rates: [0] } };
    expect(estimateQuality([0.1, 0.9], 0.5, allPositive)).toEqual({
      predictions: 2,
      auc: null,
      accuracy: 0.5,
    });
    expect(estimateQuality([0.1, 0.9], 0.5, allNegative)).toEqual({
      predictions: 2,
      auc: null,
      accuracy: 0.5,
    });
    expect(estimateQuality([0.05, 0.08], 0.5, isotonic).auc).toBeNull();
  });

  it('equals on average the realized figures over label draws when the scores are calibrated', () => {
    const random = new Random(11);
    const rows = 400;
    const scores = Float64Array.from({ length: rows }, () => random.float() ** 2);
    const estimate = estimateQuality(scores, 0.5, identity);
    const draws = 2000;
    const labels = new Uint8Array(rows);
    let aucSum = 0;
    let accuracySum = 0;
    for (let d = 0; d < draws; d++) {
      for (let i = 0; i < rows; i++) labels[i] = random.float() < scores[i]! ? 1 : 0;
      aucSum += auc(labels, scores);
      accuracySum += accuracy(labels, scores, 0.5);
    }
    // Standard errors of the means: about 0.0004 each. The expected AUC is a ratio of expected pair
    // counts (a row's pair with itself included, as half a tie), off the mean ratio by O(1/rows):
    // measured −0.0005 here.
    expect(Math.abs(estimate.auc! - aucSum / draws)).toBeLessThan(0.002);
    expect(Math.abs(estimate.accuracy - accuracySum / draws)).toBeLessThan(0.002);
  });

  it('rejects bad input, naming the field', () => {
    expect(() => estimateQuality([], 0.5, identity)).toThrow(InvalidParameterError);
    expect(() => estimateQuality([], 0.5, identity)).toThrow(/scores must not be empty/);
    expect(() => estimateQuality([0.2, Number.NaN], 0.5, identity)).toThrow(/scores\[1\] is NaN/);
    expect(() => estimateQuality([0.2, -0.1], 0.5, identity)).toThrow(
      /scores\[1\] is -0.1, must be in \[0, 1\]/,
    );
    expect(() => estimateQuality([0.2], 1.5, identity)).toThrow(/threshold must be in \[0, 1\]/);
  });
});
