import type { DriftReport } from '#shared/drift/compute.ts';

/**
 * The metric contract between what Keel emits and what its alarms watch: namespace, names, units and
 * dimension sets, declared once. CloudWatch (and the local evaluator) match a metric by its exact
 * dimension set, so the sets below are part of the contract, not decoration.
 */

export const KEEL_NAMESPACE = 'Keel';

/** Powertools' default dimension; every Keel metric an alarm watches carries exactly this set. */
export const SERVICE_DIMENSION = 'service';
export const DEFAULT_SERVICE = 'keel';

/** The one extra dimension of {@link DRIFT_METRICS}.featurePsi: the feature or categorical field. */
export const FEATURE_DIMENSION = 'Feature';

/** What the predict handler emits per request (shared/inference/predict-handler.ts, shared/http/middleware.ts). */
export const PREDICT_METRICS = {
  latency: 'Latency',
  http2xx: 'Http2xx',
  http4xx: 'Http4xx',
  http5xx: 'Http5xx',
} as const;

/** What the drift job publishes after each run ({@link driftMetricData}). */
export const DRIFT_METRICS = {
  /** PSI of one numeric feature or categorical field; dimensions service + Feature. */
  featurePsi: 'FeaturePsi',
  /** Largest FeaturePsi of the run: the data-drift alarms watch this one. */
  maxFeaturePsi: 'MaxFeaturePsi',
  warnedFeatures: 'DriftWarnedFeatures',
  pagedFeatures: 'DriftPagedFeatures',
  /** PSI of the score distribution on the baseline's score bins. */
  scorePsi: 'ScorePsi',
  /** Current − baseline positive rate, signed, in percentage points. */
  positiveRateDelta: 'PositiveRateDelta',
  /** Rows in the window (published even when too few to compare: it shows the job ran). */
  windowRows: 'DriftWindowRows',
  /** NaN and ±Infinity values seen in the window, features and scores together. */
  nonFiniteValues: 'DriftNonFiniteValues',
} as const;

export type MetricUnit = 'None' | 'Count' | 'Milliseconds' | 'Percent';

export interface MetricDatum {
  readonly metricName: string;
  readonly value: number;
  readonly unit: MetricUnit;
  readonly dimensions: Readonly<Record<string, string>>;
}

export function serviceDimensions(service: string): Record<string, string> {
  return { [SERVICE_DIMENSION]: service };
}

/**
 * The datapoints of one drift run. A comparison with insufficient data publishes nothing (a missing
 * datapoint, which the drift alarms treat as "keep the current state"), never a made-up 0.
 */
export function driftMetricData(report: DriftReport, service = DEFAULT_SERVICE): MetricDatum[] {
  const dimensions = serviceDimensions(service);
  const data: MetricDatum[] = [];
  const add = (metricName: string, value: number | null, unit: MetricUnit, dims = dimensions) => {
    if (value !== null) data.push({ metricName, value, unit, dimensions: dims });
  };
  for (const f of report.features) {
    const feature = f.kind === 'numeric' ? f.feature : f.field;
    add(DRIFT_METRICS.featurePsi, f.psi, 'None', { ...dimensions, [FEATURE_DIMENSION]: feature });
  }
  add(DRIFT_METRICS.maxFeaturePsi, report.summary.maxPsi, 'None');
  add(DRIFT_METRICS.warnedFeatures, report.summary.warned, 'Count');
  add(DRIFT_METRICS.pagedFeatures, report.summary.paged, 'Count');
  add(DRIFT_METRICS.scorePsi, report.prediction.scorePsi, 'None');
  add(DRIFT_METRICS.positiveRateDelta, report.prediction.positiveRateDelta, 'None');
  add(DRIFT_METRICS.windowRows, report.rows, 'Count');
  let nonFinite = report.prediction.nan + report.prediction.infinite;
  for (const f of report.features) nonFinite += f.kind === 'numeric' ? f.nan + f.infinite : f.invalid;
  add(DRIFT_METRICS.nonFiniteValues, nonFinite, 'Count');
  return data;
}
