import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { httpErrors, requestIdOf } from '#shared/http/middleware.ts';
import { routeApiRequest } from '#shared/inference/api.ts';
import { readPredictConfig } from '#shared/inference/config.ts';
import { createInferenceRuntime } from '#shared/inference/runtime.ts';
import { logger, metrics, tracer } from '#shared/observability.ts';

const { deps, observer } = createInferenceRuntime(readPredictConfig());

// Load the champion during init, so the first request does not pay for it. An empty registry is not
// an error: the API answers 503 NoModel until a version is promoted.
await deps.models.refreshIfDue().catch((error: unknown) => logger.warn('no model at init', { error }));

async function api(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
  const started = performance.now();
  try {
    return await routeApiRequest(event, deps, requestIdOf(event, context), observer);
  } finally {
    metrics.addMetric('Latency', MetricUnit.Milliseconds, performance.now() - started);
  }
}

export const handler = middy(api)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .use(httpErrors({ logger, metrics }));
