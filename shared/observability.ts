import { Console } from 'node:console';
import type { Writable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
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
 * whoever adds to them publishes them when its request ends (`publishVariantMetrics`).
 */
export const variantMetrics: Readonly<Record<VariantDimension, Metrics>> = {
  champion: new Metrics({ ...metricsOptions, defaultDimensions: { [VARIANT_DIMENSION]: 'champion' } }),
  challenger: new Metrics({ ...metricsOptions, defaultDimensions: { [VARIANT_DIMENSION]: 'challenger' } }),
};

/** Set by {@link publishVariantMetricsEvery}: a timer publishes them, not each request. */
let publishedByTimer = false;

/**
 * Writes the variant metrics a request added, before Lambda may freeze the environment: at the end of
 * every invocation, unless a long-running process publishes them on a timer.
 */
export function publishVariantMetrics(): void {
  if (!publishedByTimer) flushVariantMetrics();
}

function flushVariantMetrics(): void {
  for (const instance of Object.values(variantMetrics)) {
    if (instance.hasStoredMetrics()) instance.publishStoredMetrics();
  }
}

/**
 * For a process that is not frozen between requests (the ECS container): the variant metrics of all
 * requests in `intervalMs` go out as one EMF line per variant (Powertools also publishes at 100 values
 * of a metric), not two lines per request, which cost a shadow rollout a fifth of the throughput.
 * Returns the final flush, for shutdown.
 */
export function publishVariantMetricsEvery(intervalMs: number): () => void {
  publishedByTimer = true;
  setInterval(flushVariantMetrics, intervalMs).unref();
  return flushVariantMetrics;
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
