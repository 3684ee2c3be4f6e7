import { Writable } from 'node:stream';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type MetricSample, parseEmf } from '#shared/monitoring/emf.ts';
import { PREDICT_METRICS, ROLLOUT_METRICS, VARIANT_DIMENSION } from '#shared/monitoring/metrics.ts';

// This file's process only: vitest.config.ts turns metrics off for the suite, and Powertools reads the
// variable when the instances are created, at import.
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
const { publishMetricsEvery, redirectMetrics, variantMetrics } = await import('#shared/observability.ts');
const { apiEvent, customerAttributes, fixedScoreModels, lambdaContext, predictHandlerOver } = await import(
  '../../support/predict-handler.ts'
);

afterEach(() => {
  vi.useRealTimers();
});

/** The EMF lines the metrics write from now on. */
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

/** The champion answering now. */
let servingVersion = 'v3';
const { handler } = predictHandlerOver(fixedScoreModels(() => servingVersion));
const predict = async () => {
  const response = await handler(
    apiEvent('/predict', { customerId: 'c-1', attributes: customerAttributes }),
    lambdaContext,
  );
  expect(response.statusCode).toBe(200);
};

const samples = (lines: string[], name: string, filter: (s: MetricSample) => boolean = () => true) =>
  lines.flatMap(parseEmf).filter((s) => s.metricName === name && filter(s));
const total = (lines: string[], name: string, filter?: (s: MetricSample) => boolean) =>
  samples(lines, name, filter).reduce((sum, s) => sum + s.value, 0);
const ofVariant = (variant: string) => (s: MetricSample) => s.dimensions[VARIANT_DIMENSION] === variant;
/** The lines with predictions in them: each one's ModelVersion and how many predictions it counts. */
const predictionLines = (lines: string[]) =>
  lines
    .map((line) => JSON.parse(line) as { ModelVersion?: string; Predictions?: number | number[] })
    .filter((doc) => doc.Predictions !== undefined)
    .map((doc) => ({ version: doc.ModelVersion, predictions: [doc.Predictions].flat().length }));

describe('the predict handler’s metrics', () => {
  it('go out before each invocation ends (Lambda), then, in a process not frozen (ECS), once per interval, one line per version', async () => {
    const lines = sink();
    // Lambda: frozen once the handler resolves, so no timer may be left to publish.
    vi.useFakeTimers();
    await predict();
    variantMetrics.challenger.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    await predict();
    expect(predictionLines(lines)).toEqual([
      { version: 'v3', predictions: 1 },
      { version: 'v3', predictions: 1 },
    ]);
    expect(total(lines, PREDICT_METRICS.http2xx)).toBe(2);
    expect(total(lines, ROLLOUT_METRICS.requests, ofVariant('challenger'))).toBe(1);
    vi.useRealTimers();

    // ECS: the requests of an interval share one line; a request answered by another version sends
    // the waiting ones first, so that each line's ModelVersion is the version of all its answers.
    const flush = publishMetricsEvery(100);
    lines.length = 0;
    for (let i = 0; i < 30; i++) await predict();
    variantMetrics.champion.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    expect(lines).toEqual([]);
    servingVersion = 'v4';
    for (let i = 0; i < 20; i++) await predict();
    expect(predictionLines(lines)).toEqual([{ version: 'v3', predictions: 30 }]);
    await expect.poll(() => predictionLines(lines).length, { timeout: 2000, interval: 20 }).toBe(2);
    expect(predictionLines(lines)[1]).toEqual({ version: 'v4', predictions: 20 });
    expect(total(lines, PREDICT_METRICS.http2xx)).toBe(50);
    expect(samples(lines, PREDICT_METRICS.latency)).toHaveLength(50);
    expect(total(lines, ROLLOUT_METRICS.requests, ofVariant('champion'))).toBe(1);
    // Shutdown publishes what the last interval added.
    await predict();
    variantMetrics.challenger.addMetric(ROLLOUT_METRICS.requests, MetricUnit.Count, 1);
    flush();
    expect(predictionLines(lines).at(-1)).toEqual({ version: 'v4', predictions: 1 });
    expect(total(lines, ROLLOUT_METRICS.requests, ofVariant('challenger'))).toBe(1);
  });
});
