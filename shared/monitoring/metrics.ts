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

/** What the drift job publishes after each run (`driftMetricData` in shared/drift/job.ts). */
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

/** What the ETL publishes (shared/etl/etl.ts): the raw files' data quality, beyond good and bad rows. */
export const ETL_METRICS = {
  /** 1 when a raw file's header did not match its record (the run stopped), 0 when it did; per plan. */
  schemaChanges: 'EtlSchemaChanges',
  /** Share (0-1) of a run's rows whose value of one categorical field the model never saw; dimensions service + Feature. */
  unseenCategoryShare: 'EtlUnseenCategoryShare',
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
