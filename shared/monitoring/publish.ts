import type { Console } from 'node:console';
import { metrics } from '#shared/observability.ts';
import { toEmf } from './emf.ts';
import { KEEL_NAMESPACE, type MetricDatum } from './metrics.ts';

/** Receives one EMF document as one line. */
export type EmitLine = (line: string) => void;

/** One JSON document per line on the Powertools metrics console: stdout in Lambda, the EMF file locally. */
function metricsConsoleLine(line: string): void {
  (metrics as unknown as { console: Console }).console.log(line);
}

/**
 * Publishes datapoints as EMF lines in the Keel namespace (CloudWatch reads them from the function's log;
 * the local evaluator from its metrics file). Returns how many lines were written.
 */
export function publishMetrics(
  data: readonly MetricDatum[],
  options: { timestamp: number; properties?: Readonly<Record<string, unknown>>; emit?: EmitLine },
): number {
  const lines = toEmf(data, {
    namespace: KEEL_NAMESPACE,
    timestamp: options.timestamp,
    ...(options.properties ? { properties: options.properties } : {}),
  }).map((doc) => JSON.stringify(doc));
  const emit = options.emit ?? metricsConsoleLine;
  for (const line of lines) emit(line);
  return lines.length;
}
