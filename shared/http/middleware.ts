import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { PREDICT_METRICS } from '#shared/monitoring/metrics.ts';
import { errorResponse } from './responses.ts';

/** The request id clients see: API Gateway's, else Lambda's. */
export const requestIdOf = (event: APIGatewayProxyEvent, context: Context) =>
  event.requestContext?.requestId ?? context.awsRequestId;

/**
 * Maps any error to the contract's error response (one place, see responses.ts), logs it at the right
 * level, and counts responses by status class for the 4xx/5xx alarms.
 */
export function httpErrors({
  logger,
  metrics,
}: {
  logger: Logger;
  metrics: Metrics;
}): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context> {
  return {
    after: async (request) => {
      if (request.response) metrics.addMetric(PREDICT_METRICS.http2xx, MetricUnit.Count, 1);
    },
    onError: async (request) => {
      const response = errorResponse(request.error, requestIdOf(request.event, request.context));
      const serverError = response.statusCode >= 500;
      const fields = { status: response.statusCode, error: request.error, path: request.event.path };
      if (serverError) logger.error('request failed', fields);
      else
        logger.info('request rejected', {
          status: response.statusCode,
          path: request.event.path,
          code: request.error?.name,
        });
      metrics.addMetric(serverError ? PREDICT_METRICS.http5xx : PREDICT_METRICS.http4xx, MetricUnit.Count, 1);
      request.response = response;
    },
  };
}
