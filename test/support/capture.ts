import { FEATURE_COUNT } from '#shared/features/index.ts';
import type { CapturedPrediction } from '#shared/inference/capture.ts';

/** A served prediction of model churn v1 for the capture tests; `overrides` change what a test needs. */
export const servedPrediction = (overrides: Partial<CapturedPrediction> = {}): CapturedPrediction => ({
  customerId: 'c-1',
  requestId: 'r-1',
  model: { name: 'churn', version: 'v1' },
  probability: 0.5,
  prediction: 1,
  vector: new Float32Array(FEATURE_COUNT).fill(0.5),
  ...overrides,
});
