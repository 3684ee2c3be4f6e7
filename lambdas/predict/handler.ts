import { readPredictConfig } from '#shared/inference/predict-environment.ts';
import { createApiHandler, createInferenceRuntime } from '#shared/inference/predict-handler.ts';
import { logger } from '#shared/observability.ts';

const { deps, observer } = createInferenceRuntime(readPredictConfig());

// Load the champion during init, so the first request does not pay for it. An empty registry is not
// an error: the API answers 503 NoModel until a version is promoted.
await deps.models.refreshIfDue().catch((error: unknown) => logger.warn('no model at init', { error }));

export const handler = createApiHandler(deps, observer);
