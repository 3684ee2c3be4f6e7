import { InvalidParameterError, requireInRange } from '#shared/model/errors.ts';
import { type Calibrator, calibrate } from './calibrator.ts';
import type { EstimatedFigures } from './types.ts';

/**
 * Confidence-based performance estimation: before any outcome arrives, a calibrated probability p says
 * a row is positive with chance p, so each row is expected to count p towards the positives and 1 − p
 * towards the negatives. Accuracy and the ROC curve follow from those expected counts. The estimate
 * holds while P(churn | score) stays what it was on the held-out rows: it follows a shift in who is
 * scored as far as the model's scores keep their meaning there, and misses a change in what churn
 * depends on (concept shift), which leaves the scores alone.
 */
export function estimateQuality(
  scores: ArrayLike<number>,
  threshold: number,
  calibrator: Calibrator,
): EstimatedFigures {
  const n = scores.length;
  if (n === 0) throw new InvalidParameterError('scores', 'scores must not be empty');
  requireInRange('threshold', threshold, 0, 1, { minOpen: false, maxOpen: false });
  const probabilities = new Float64Array(n);
  let expectedCorrect = 0;
  for (let i = 0; i < n; i++) {
    const score = scores[i]!;
    if (!(score >= 0 && score <= 1)) {
      throw new InvalidParameterError('scores', `scores[${i}] is ${score}, must be in [0, 1]`);
    }
    const p = calibrate(calibrator.map, score);
    probabilities[i] = p;
    expectedCorrect += score >= threshold ? p : 1 - p;
  }
  return { predictions: n, auc: expectedAuc(scores, probabilities), accuracy: expectedCorrect / n };
}

/**
 * Area under the expected ROC curve: lowering the cut through the scores from the highest, each group
 * of equal scores moves the curve by its expected positives and negatives at once (one step, so ties
 * count one half, as in the realized AUC). Null when either expected class total is zero.
 */
function expectedAuc(scores: ArrayLike<number>, probabilities: Float64Array): number | null {
  const n = scores.length;
  let positives = 0;
  let negatives = 0;
  // A row is never paired with itself in a realized AUC, but its own expected positive and negative
  // meet in the sums below: their share, Σ p(1 − p), is taken out of pairs and area alike (else small
  // windows read low by O(1/n)).
  let selfPairs = 0;
  for (const p of probabilities) {
    positives += p;
    negatives += 1 - p;
    selfPairs += p * (1 - p);
  }
  const pairs = positives * negatives - selfPairs;
  if (positives === 0 || negatives === 0 || !(pairs > 0)) return null;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let area = 0;
  let truePositives = 0;
  let falsePositives = 0;
  for (let start = 0; start < n; ) {
    const score = scores[order[start]!]!;
    const [tpBefore, fpBefore] = [truePositives, falsePositives];
    let end = start;
    for (; end < n && scores[order[end]!] === score; end++) {
      truePositives += probabilities[order[end]!]!;
      falsePositives += 1 - probabilities[order[end]!]!;
    }
    area += ((falsePositives - fpBefore) * (truePositives + tpBefore)) / 2;
    start = end;
  }
  // The area is in expected counts of pairs of distinct rows: scale it to the unit square. Summing in
  // another order can leave the ratio an ulp outside [0, 1].
  return Math.min(1, Math.max(0, (area - selfPairs / 2) / pairs));
}
