import { Console } from 'node:console';
import type { Writable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { VARIANT_DIMENSION, type VariantDimension } from '#shared/monitoring/metrics.ts';

/**
 * Logger and metrics, created once per process (Lambda module scope, the ECS server, the local
 * platform). Configured by Powertools' own variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
 * POWERTOOLS_METRICS_NAMESPACE). The tracer is not here: see shared/inference/tracing.ts.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel' });
const metricsOptions = {
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Keel',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel',
};
export const metrics = new Metrics(metricsOptions);
/**
 * The per-variant metrics of a rollout (dimensions service + Variant), one instance per dimension set;
 * published with the rest of a request's metrics ({@link requestMetrics}).
 */
export const variantMetrics: Readonly<Record<VariantDimension, Metrics>> = {
  champion: new Metrics({ ...metricsOptions, defaultDimensions: { [VARIANT_DIMENSION]: 'champion' } }),
  challenger: new Metrics({ ...metricsOptions, defaultDimensions: { [VARIANT_DIMENSION]: 'challenger' } }),
};

/** Set by {@link publishMetricsEvery}: a timer publishes the request metrics, not each request. */
let publishedByTimer = false;

/** Whether a timer publishes the request metrics ({@link publishMetricsEvery}). */
export const metricsPublishedByTimer = (): boolean => publishedByTimer;

/** Every request metric waiting, one EMF line per instance that has any. */
function flushRequestMetrics(): void {
  for (const instance of [metrics, ...Object.values(variantMetrics)]) {
    if (instance.hasStoredMetrics()) instance.publishStoredMetrics();
  }
}

/**
 * Powertools' `logMetrics` for the predict handler's `metrics` and `variantMetrics`: the cold start
 * once, then what the request added, published as it ends, before Lambda may freeze the environment.
 * In a process publishing on a timer ({@link publishMetricsEvery}) the request leaves them to it.
 */
export function requestMetrics(): MiddlewareObj<unknown, unknown, Error, Context> {
  // Every predict request adds latency and an Http* count, so `metrics` is never empty here.
  const publish = () => {
    if (!publishedByTimer) flushRequestMetrics();
  };
  return {
    before: (request) => metrics.captureColdStartMetric(request.context.functionName),
    after: publish,
    onError: publish,
  };
}

/**
 * For a process that is not frozen between requests (the ECS container): the request metrics of all
 * requests in `intervalMs` go out together, each metric's values as one array (Powertools also
 * publishes at 100 values of a metric), one EMF line per instance instead of one or three per request.
 * A line per request cost the container 5-12% of its requests per second (a shadow rollout's two more
 * lines, a fifth), and CloudWatch Logs charges for every byte. Returns the final flush, for shutdown.
 */
export function publishMetricsEvery(intervalMs: number): () => void {
  publishedByTimer = true;
  setInterval(flushRequestMetrics, intervalMs).unref();
  return flushRequestMetrics;
}
/**
 * Sends EMF metric lines to `sink` instead of stdout. In AWS, CloudWatch reads EMF from the function's
 * log stream; the local platform reads the same lines from a file to evaluate the same alarms.
 */
export function redirectMetrics(sink: Writable): void {
  for (const instance of [metrics, ...Object.values(variantMetrics)]) {
    (instance as unknown as { console: Console }).console = new Console({
      stdout: sink,
      stderr: process.stderr,
    });
  }
}

/**
 * Whether X-Ray can trace this process: in Lambda (whose `AWS_EXECUTION_ENV` is `AWS_Lambda_<runtime>`),
 * unless POWERTOOLS_TRACE_ENABLED is false. Powertools' tracer would be off everywhere this is false;
 * it would count the ECS container (`AWS_ECS_FARGATE`) as on, where no X-Ray daemon listens.
 */
export function xrayTracingEnabled(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  return (
    (env.AWS_EXECUTION_ENV ?? '').startsWith('AWS_Lambda_') &&
    (env.POWERTOOLS_TRACE_ENABLED ?? '').toLowerCase() !== 'false'
  );
}
