import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';

/**
 * The predict handler's X-Ray tracer, created once per process. Only the predict handler traces, and
 * only in Lambda: this module is imported where {@link xrayTracingEnabled} holds, because importing the
 * X-Ray SDK enables async hooks that tax every promise of the process (about 6% of an ETL chunk's CPU,
 * measured) whether or not anything is traced. Configured by Powertools' variables
 * (POWERTOOLS_SERVICE_NAME, POWERTOOLS_TRACE_ENABLED).
 */
export const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel' });

/** The handler's segment, without its response: that holds customer ids and probabilities (docs/security.md). */
export const tracingMiddleware = () => captureLambdaHandler(tracer, { captureResponse: false });
