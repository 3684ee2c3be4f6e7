import { InvalidParameterError } from '#shared/model/errors.ts';
import { accuracy, auc, calibration, confusion, logLoss, precision, recall } from '#shared/model/metrics.ts';
import type { RealizedFigures } from './types.ts';

/**
 * How good the predictions were once their outcomes arrived: `labels[i]` (0/1) is the outcome of the
 * prediction whose class-1 probability is `probabilities[i]`, decided at `threshold`.
 */
export function realizedQuality(
  labels: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  threshold: number,
): RealizedFigures {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label !== 0 && label !== 1) {
      throw new InvalidParameterError('labels', `labels[${i}] is ${label}, labels must be 0 or 1`);
    }
    positives += label;
  }
  const matched = labels.length;
  // Checks the lengths, the probabilities and the threshold before anything else is computed.
  const counts = confusion(labels, probabilities, threshold);
  const reliability = calibration(labels, probabilities, 10);
  return {
    matched,
    // One class only (a quiet day, a small bucket) is a normal state of the window, not an error.
    auc: positives === 0 || positives === matched ? null : auc(labels, probabilities),
    logloss: logLoss(labels, probabilities),
    accuracy: accuracy(labels, probabilities, threshold),
    precision: precision(labels, probabilities, threshold),
    recall: recall(labels, probabilities, threshold),
    positiveRate: (counts.truePositives + counts.falsePositives) / matched,
    observedRate: positives / matched,
    expectedCalibrationError: reliability.expectedCalibrationError,
    reliability: reliability.bins,
  };
}
