import { Writable } from 'node:stream';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { parseEmf } from '#shared/monitoring/emf.ts';
import { ROLLOUT_METRICS, VARIANT_DIMENSION } from '#shared/monitoring/metrics.ts';

// This file's process only: vitest.config.ts turns metrics off for the suite, and Powertools reads the
// variable when the instances are created, at import.
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
const { publishVariantMetrics, publishVariantMetricsEvery, redirectMetrics, variantMetrics } = await import(
  '#shared/observability.ts'
);

function sink(): string[] {
  const lines: string[] = [];
  redirectMetrics(
    new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        callback();
      },
    }),
  );
  return lines;
}

const requests = (lines: string[], variant: string) =>
  lines
    .flatMap(parseEmf)
    .filter((s) => s.metricName === ROLLOUT_METRICS.requests && s.dimensions[VARIANT_DIMENSION] === variant)
    .reduce((total, s) => total + s.value, 0);

describe('per-variant metrics of a rollout', () => {
  it('go out at the end of each invocation (Lambda), then, in a process not frozen (ECS), once per interval', async () => {
    const lines = sink();
    for (const instance of Object.values(variantMetrics)) instance.setThrowOnEmptyMetrics(false);
    variantMetrics.champion.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    variantMetrics.challenger.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    publishVariantMetrics();
    expect(lines).toHaveLength(2);
    expect([requests(lines, 'champion'), requests(lines, 'challenger')]).toEqual([1, 1]);

    const flush = publishVariantMetricsEvery(100);
    for (let i = 0; i < 50; i++) {
      variantMetrics.challenger.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
      publishVariantMetrics();
    }
    expect(lines).toHaveLength(2);
    await expect.poll(() => lines.length, { timeout: 2000, interval: 20 }).toBe(3);
    expect(requests(lines, 'challenger')).toBe(51);
    variantMetrics.champion.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    flush();
    expect(requests(lines, 'champion')).toBe(2);
  });
});
