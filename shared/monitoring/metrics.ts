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

/**
 * The one extra dimension of {@link ROLLOUT_METRICS}: which side of a rollout a datapoint belongs to,
 * `champion` or `challenger` (the canary or the shadow: a rollout has one mode at a time).
 */
export const VARIANT_DIMENSION = 'Variant';
export type VariantDimension = 'champion' | 'challenger';

/**
 * What the predict path emits per variant while a rollout runs (dimensions service + Variant): the
 * guardrail alarms compare the challenger with the champion on the same window.
 */
export const ROLLOUT_METRICS = {
  /** Requests the variant scored (a shadow scores every request, a canary its share). */
  requests: 'VariantRequests',
  /** Requests that failed with a 5xx after being assigned to the variant. */
  serverErrors: 'Variant5xx',
  /** Milliseconds from the request's start until the variant's score was ready. */
  latency: 'VariantLatency',
  /** 1 when the variant's decision was positive, else 0: its Average is the positive rate. */
  positive: 'VariantPositive',
  /** The variant's class-1 probability: its Average is the mean score. */
  probability: 'VariantProbability',
  /** Shadow only (Variant challenger): 1 when its decision equals the champion's on the same request. */
  agreement: 'ShadowAgreement',
  /** Variant challenger: a predict process refused to load the challenger (tampered, wrong features, broken). */
  refused: 'ChallengerRefused',
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
  /**
   * Share (0-1) of a run's valid rows without a value of one imputable field (its column absent or the
   * cell empty), imputed by the feature definitions; dimensions service + Feature.
   */
  imputedShare: 'EtlImputedShare',
} as const;

/** The one extra dimension of the per-version {@link QUALITY_METRICS}. */
export const MODEL_VERSION_DIMENSION = 'ModelVersion';

/** What the quality job publishes after each run (`qualityMetricData` in shared/quality/job.ts). */
export const QUALITY_METRICS = {
  /** Per version (dimensions service + ModelVersion): predictions joined with an outcome. */
  matched: 'QualityMatchedPredictions',
  realizedAuc: 'QualityRealizedAuc',
  estimatedAuc: 'QualityEstimatedAuc',
  realizedAccuracy: 'QualityRealizedAccuracy',
  estimatedAccuracy: 'QualityEstimatedAccuracy',
  logLoss: 'QualityLogLoss',
  precision: 'QualityPrecision',
  recall: 'QualityRecall',
  positiveRate: 'QualityPositiveRate',
  calibrationError: 'QualityCalibrationError',
  /**
   * Largest held-out AUC − realized AUC over the versions with enough matched predictions (dimension
   * service only, the version in the EMF properties and the job's notice): the quality alarm's metric.
   */
  aucShortfall: 'QualityAucShortfall',
  /** Batch and real-time answers of the same stored record that decide alike, in percent. */
  consistency: 'PredictionConsistency',
  /** Largest |real-time − batch| probability over those pairs. */
  maxScoreDifference: 'BatchRealtimeMaxScoreDifference',
  /** Served vectors that differ from the offline features of the same record, in percent. */
  skew: 'TrainingServingSkew',
  skewedFeatures: 'SkewedFeatures',
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
