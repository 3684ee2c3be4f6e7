import { Console } from 'node:console';
import type { Writable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * Logger, metrics and tracer, created once per process (Lambda module scope, the ECS server, the local
 * platform). Configured by Powertools' own variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
 * POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_ENABLED).
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel' });
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Keel',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel',
});
export const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keel' });

/**
 * Sends EMF metric lines to `sink` instead of stdout. In AWS, CloudWatch reads EMF from the function's
 * log stream; the local platform reads the same lines from a file to evaluate the same alarms.
 */
export function redirectMetrics(sink: Writable): void {
  (metrics as unknown as { console: Console }).console = new Console({
    stdout: sink,
    stderr: process.stderr,
  });
}
