import { z } from 'zod';

/**
 * The most rows a retrain draws from the offline dataset (stage config `retrain.maxTrainingRows`):
 * above it, a stratified sample of this many rows is trained on and evaluated, so the retrain function's
 * memory is bounded by it, not by the customer base. Chosen from the measured wall of the 3,008 MB
 * function (docs/capacity-and-cost.md, "Retraining: the memory wall"): ~380 MiB at its peak and under a
 * minute of training, leaving most of the 15 minutes to read the dataset twice.
 */
export const DEFAULT_MAX_TRAINING_ROWS = 1_000_000;
/** Fewer rows leave too few of the rarer class to fit and evaluate on. */
export const MIN_TRAINING_ROWS = 1_000;
/** The most the 3,008 MB function trains on with room to spare: measured at 666 MiB and 4 minutes. */
export const MAX_TRAINING_ROWS = 4_000_000;

const range = `must be a whole number from ${MIN_TRAINING_ROWS.toLocaleString('en-US')} to ${MAX_TRAINING_ROWS.toLocaleString('en-US')}`;
export const maxTrainingRowsSchema = z
  .int({ error: range })
  .min(MIN_TRAINING_ROWS, range)
  .max(MAX_TRAINING_ROWS, range);
