import type { CalibrationBin } from '#shared/model/metrics.ts';

/**
 * What the quality job reports: per model version, how good it was once outcomes arrived (realized),
 * how good it probably is before they arrive (estimated from its scores, confidence-based), whether
 * batch and real time answer a customer alike (consistency), and whether served features match the
 * offline features of the same customer and record (skew). The job (shared/quality/job.ts) writes it
 * under `quality-reports/`, `keel quality check` prints it and renders it (shared/quality/report-html.ts).
 */

/** Figures over predictions whose outcome arrived within the label window. */
export interface RealizedFigures {
  /** Predictions joined with an outcome. */
  readonly matched: number;
  /** Null when the matched outcomes are all of one class (AUC is undefined). */
  readonly auc: number | null;
  readonly logloss: number;
  readonly accuracy: number;
  /** At the version's threshold. */
  readonly precision: number;
  readonly recall: number;
  /** Share of matched predictions that were positive (prediction = 1). */
  readonly positiveRate: number;
  /** Share of matched outcomes that churned. */
  readonly observedRate: number;
  readonly expectedCalibrationError: number;
  /** The reliability curve: 10 equal-width probability bins. */
  readonly reliability: readonly CalibrationBin[];
}

/** Confidence-based estimates from the scores alone (no outcomes needed). */
export interface EstimatedFigures {
  /** Predictions the estimate is over. */
  readonly predictions: number;
  /** Null when the calibrated scores leave one class with no expected members. */
  readonly auc: number | null;
  readonly accuracy: number;
}

/** One period of the window (a day by default): what plots quality over time. */
export interface QualityBucket {
  /** ISO 8601, inclusive. */
  readonly from: string;
  /** ISO 8601, exclusive. */
  readonly to: string;
  readonly predictions: number;
  /** Null when no prediction of the bucket has an outcome yet. */
  readonly realized: RealizedFigures | null;
  readonly estimated: EstimatedFigures | null;
}

export interface VersionQuality {
  readonly version: string;
  readonly threshold: number;
  /** The held-out figures in the version's metadata (what the AUC alarm compares with). */
  readonly heldOut: { readonly auc: number; readonly accuracy: number };
  /** Answers of this version in the window (shadow scores excluded). */
  readonly predictions: number;
  readonly realized: RealizedFigures | null;
  readonly estimated: EstimatedFigures | null;
  /**
   * heldOut.auc − realized.auc when at least the configured minimum of predictions matched; else null
   * (too few outcomes to judge).
   */
  readonly aucShortfall: number | null;
  readonly buckets: readonly QualityBucket[];
}

/** Customers answered by both batch scoring and the API, by one version, from the same stored record. */
export interface ConsistencyFigures {
  readonly pairs: number;
  readonly identicalDecisions: number;
  /** identicalDecisions / pairs; null without pairs. */
  readonly share: number | null;
  /** Largest |real-time probability − batch probability| over the pairs; null without pairs. */
  readonly maxScoreDifference: number | null;
}

/** Served feature vectors recomputed from the offline features of the same customer and record. */
export interface SkewFigures {
  /** Real-time captures sampled for the check. */
  readonly sampled: number;
  /** Of those, the ones an offline row of the same customer and event time was found for. */
  readonly compared: number;
  readonly differing: number;
  /** differing / compared; null when nothing was compared. */
  readonly share: number | null;
  /** Features that differed, most often first, with how many compared vectors they differed in. */
  readonly features: readonly { readonly name: string; readonly differing: number }[];
}

export interface OutcomeIntake {
  /** Outcome files read under `outcomes/`. */
  readonly files: number;
  readonly rows: number;
  /** Rows refused (bad id, label or time), written to the quarantine with their reason. */
  readonly quarantined: number;
}

export interface QualityReport {
  readonly generatedAt: string;
  readonly model: { readonly name: string };
  /** Predictions made in [from, to) are judged. */
  readonly window: { readonly from: string; readonly to: string };
  /** An outcome counts for a prediction when observed within this many days after it. */
  readonly labelWindowDays: number;
  /** The thresholds the run judged at (the stage's `alarms.quality`). */
  readonly thresholds: {
    readonly aucDrop: number;
    readonly minMatched: number;
    readonly minConsistencyPercent: number;
    readonly maxSkewPercent: number;
  };
  readonly outcomes: OutcomeIntake;
  readonly versions: readonly VersionQuality[];
  readonly consistency: ConsistencyFigures;
  readonly skew: SkewFigures;
}
