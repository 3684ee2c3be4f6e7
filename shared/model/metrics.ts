/**
 * Binary-classification metrics on 0/1 labels and class-1 probabilities (or any scores, for AUC),
 * and the seeded stratified split used to hold data out.
 */

import { Random } from '#shared/random.ts';
import { InvalidParameterError, requireInRange, requireInteger } from './errors.ts';

type Numbers = ArrayLike<number>;

function requireSameLength(labels: Numbers, values: Numbers, valuesName: string): void {
  if (labels.length === 0) throw new InvalidParameterError('labels', 'labels must not be empty');
  if (labels.length !== values.length) {
    throw new InvalidParameterError(
      valuesName,
      `${valuesName} has ${values.length} values but labels has ${labels.length}`,
    );
  }
}

/**
 * Area under the ROC curve: the probability that a random positive scores above a random negative,
 * ties counting one half (the Mann–Whitney statistic). O(n log n).
 */
export function auc(labels: Numbers, scores: Numbers): number {
  requireSameLength(labels, scores, 'scores');
  const n = labels.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new InvalidParameterError('scores', `scores[${i}] is NaN`);
    order[i] = i;
  }
  order.sort((a, b) => scores[a]! - scores[b]!);
  let negativesBelow = 0;
  let pairsWon = 0;
  let positives = 0;
  // Walk groups of equal scores from the lowest up: each positive beats every negative below its
  // group and ties with the negatives inside it.
  for (let start = 0; start < n; ) {
    const score = scores[order[start]!]!;
    let groupPositives = 0;
    let end = start;
    while (end < n && scores[order[end]!] === score) {
      groupPositives += labels[order[end]!]!;
      end++;
    }
    const groupNegatives = end - start - groupPositives;
    pairsWon += groupPositives * (negativesBelow + groupNegatives / 2);
    negativesBelow += groupNegatives;
    positives += groupPositives;
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) {
    throw new InvalidParameterError('labels', 'auc needs at least one positive and one negative label');
  }
  return pairsWon / (positives * negatives);
}

/** Mean negative log-likelihood, with probabilities clipped to [eps, 1 - eps] so it stays finite. */
export function logLoss(labels: Numbers, probabilities: Numbers, eps = 1e-15): number {
  requireSameLength(labels, probabilities, 'probabilities');
  requireInRange('eps', eps, 0, 0.5, { minOpen: true, maxOpen: true });
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(Math.max(probabilities[i]!, eps), 1 - eps);
    total -= labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return total / labels.length;
}

export interface Confusion {
  readonly truePositives: number;
  readonly falsePositives: number;
  readonly trueNegatives: number;
  readonly falseNegatives: number;
}

/** Counts at a decision threshold: a row is predicted positive when probability >= threshold. */
export function confusion(labels: Numbers, probabilities: Numbers, threshold = 0.5): Confusion {
  requireSameLength(labels, probabilities, 'probabilities');
  requireInRange('threshold', threshold, 0, 1, { minOpen: false, maxOpen: false });
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = probabilities[i]! >= threshold;
    if (labels[i] === 1) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
    else tn++;
  }
  return { truePositives: tp, falsePositives: fp, trueNegatives: tn, falseNegatives: fn };
}

export function accuracy(labels: Numbers, probabilities: Numbers, threshold = 0.5): number {
  const c = confusion(labels, probabilities, threshold);
  return (c.truePositives + c.trueNegatives) / labels.length;
}

/** Share of predicted positives that are positive; 0 when nothing is predicted positive. */
export function precision(labels: Numbers, probabilities: Numbers, threshold = 0.5): number {
  const c = confusion(labels, probabilities, threshold);
  const predicted = c.truePositives + c.falsePositives;
  return predicted === 0 ? 0 : c.truePositives / predicted;
}

/** Share of positives predicted positive; 0 when there are no positives. */
export function recall(labels: Numbers, probabilities: Numbers, threshold = 0.5): number {
  const c = confusion(labels, probabilities, threshold);
  const positives = c.truePositives + c.falseNegatives;
  return positives === 0 ? 0 : c.truePositives / positives;
}

export interface CalibrationBin {
  /** Bin covers [lower, upper); the last bin also includes 1. */
  readonly lower: number;
  readonly upper: number;
  readonly count: number;
  /** Mean predicted probability in the bin; null when the bin is empty. */
  readonly meanPredicted: number | null;
  /** Observed positive rate in the bin; null when the bin is empty. */
  readonly observedRate: number | null;
}

export interface Calibration {
  readonly bins: CalibrationBin[];
  /** Mean squared error between probability and label. */
  readonly brier: number;
  /** Count-weighted mean of |meanPredicted - observedRate| over the bins. */
  readonly expectedCalibrationError: number;
}

/** Reliability summary over `binCount` equal-width probability bins on [0, 1]. */
export function calibration(labels: Numbers, probabilities: Numbers, binCount = 10): Calibration {
  requireSameLength(labels, probabilities, 'probabilities');
  requireInteger('binCount', binCount, 1);
  const counts = new Float64Array(binCount);
  const predictedSums = new Float64Array(binCount);
  const positiveSums = new Float64Array(binCount);
  let squaredError = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = probabilities[i]!;
    if (!(p >= 0 && p <= 1)) {
      throw new InvalidParameterError('probabilities', `probabilities[${i}] is ${p}, must be in [0, 1]`);
    }
    const bin = Math.min(Math.floor(p * binCount), binCount - 1);
    counts[bin]!++;
    predictedSums[bin]! += p;
    positiveSums[bin]! += labels[i]!;
    squaredError += (p - labels[i]!) ** 2;
  }
  let weightedGap = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < binCount; b++) {
    const count = counts[b]!;
    const meanPredicted = count === 0 ? null : predictedSums[b]! / count;
    const observedRate = count === 0 ? null : positiveSums[b]! / count;
    if (meanPredicted !== null && observedRate !== null)
      weightedGap += count * Math.abs(meanPredicted - observedRate);
    bins.push({ lower: b / binCount, upper: (b + 1) / binCount, count, meanPredicted, observedRate });
  }
  return {
    bins,
    brier: squaredError / labels.length,
    expectedCalibrationError: weightedGap / labels.length,
  };
}

export interface BinaryEvaluation {
  readonly auc: number;
  readonly logloss: number;
  readonly accuracy: number;
  readonly precision: number;
  readonly recall: number;
  readonly threshold: number;
}

/** The held-out figures a model version records (see metadata.json `metrics`). */
export function evaluateBinary(labels: Numbers, probabilities: Numbers, threshold = 0.5): BinaryEvaluation {
  const c = confusion(labels, probabilities, threshold);
  const predicted = c.truePositives + c.falsePositives;
  const positives = c.truePositives + c.falseNegatives;
  return {
    auc: auc(labels, probabilities),
    logloss: logLoss(labels, probabilities),
    accuracy: (c.truePositives + c.trueNegatives) / labels.length,
    precision: predicted === 0 ? 0 : c.truePositives / predicted,
    recall: positives === 0 ? 0 : c.truePositives / positives,
    threshold,
  };
}

export interface SplitFractions {
  /** Share of each class held out for validation; default 0. */
  readonly validation?: number;
  /** Share of each class held out for test; default 0. */
  readonly test?: number;
  readonly seed: number;
}

export interface Split {
  /** Row indices, ascending. */
  readonly train: Uint32Array;
  readonly validation: Uint32Array;
  readonly test: Uint32Array;
}

/**
 * Seeded stratified split: each class is shuffled on its own and cut by the fractions (rounded per
 * class), so every part keeps the overall label rate. Same labels and seed → same indices.
 */
export function stratifiedSplit(labels: Numbers, fractions: SplitFractions): Split {
  const validationShare = fractions.validation ?? 0;
  const testShare = fractions.test ?? 0;
  requireInRange('validation', validationShare, 0, 1, { minOpen: false, maxOpen: true });
  requireInRange('test', testShare, 0, 1, { minOpen: false, maxOpen: true });
  if (validationShare + testShare >= 1) {
    throw new InvalidParameterError(
      'test',
      'validation + test must be < 1 so that rows are left to train on',
    );
  }
  if (!Number.isInteger(fractions.seed)) {
    throw new InvalidParameterError('seed', `seed must be an integer, got ${fractions.seed}`);
  }
  const byClass: [number[], number[]] = [[], []];
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label !== 0 && label !== 1) {
      throw new InvalidParameterError('labels', `labels[${i}] is ${label}, labels must be 0 or 1`);
    }
    byClass[label].push(i);
  }
  const random = new Random(fractions.seed);
  const parts = { train: [] as number[], validation: [] as number[], test: [] as number[] };
  for (const members of byClass) {
    shuffle(members, random);
    const testEnd = Math.round(members.length * testShare);
    const validationEnd = testEnd + Math.round(members.length * validationShare);
    members.forEach((row, k) => {
      const part = k < testEnd ? parts.test : k < validationEnd ? parts.validation : parts.train;
      part.push(row);
    });
  }
  const sorted = (indices: number[]) => Uint32Array.from(indices).sort();
  return { train: sorted(parts.train), validation: sorted(parts.validation), test: sorted(parts.test) };
}

/** Fisher–Yates, in place. */
export function shuffle<T extends { length: number; [i: number]: number }>(values: T, random: Random): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    const tmp = values[i]!;
    values[i] = values[j]!;
    values[j] = tmp;
  }
  return values;
}
