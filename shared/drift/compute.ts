import type { FeatureSet } from '#shared/features/index.ts';
import type { Severity } from '#shared/monitoring/alarm-catalog.ts';
import { type Baseline, featureColumns } from '#shared/registry/baseline.ts';
import {
  type CategoricalDrift,
  categoricalDrift,
  countBins,
  countCategories,
  type NumericDrift,
  numericBins,
  numericDrift,
  type PredictionDrift,
  predictionDrift,
} from './metrics.ts';
import type { DriftThresholds } from './thresholds.ts';

/**
 * A drift report: a window of encoded rows and the scores the model gave them, compared with the
 * serving model's baseline, both in the model's own feature set. Pure and synchronous; the drift job, `keel drift check` and the tests call
 * it the same way, and the thresholds come from the alarm definitions (`driftThresholds` of
 * thresholds.ts), so a report's statuses and the alarms on its metrics cannot disagree.
 */

export type DriftStatus = 'ok' | Severity | 'insufficient';

export interface DriftWindow {
  /** Row-major encoded features, the feature set's count per row (encodeInto's layout); may be longer than needed. */
  readonly x: Float32Array;
  readonly rows: number;
  /** The model's probability for each row. */
  readonly scores: Float64Array;
}

export type FeatureDrift =
  | (NumericDrift & { readonly status: DriftStatus })
  | (CategoricalDrift & { readonly status: DriftStatus });

export interface DriftReport {
  readonly featureSet: Baseline['featureSet'];
  readonly rows: number;
  readonly thresholds: DriftThresholds;
  /** Every numeric feature of the baseline, then every categorical field. */
  readonly features: FeatureDrift[];
  readonly summary: {
    /** Largest PSI over features and fields; null when every one is insufficient. */
    readonly maxPsi: number | null;
    readonly maxPsiFeature: string | null;
    /** Features whose status is `warn` (not counting those that page). */
    readonly warned: number;
    readonly paged: number;
    readonly insufficient: number;
    readonly status: DriftStatus;
  };
  readonly prediction: PredictionDrift & { readonly status: DriftStatus };
  /** The worst of summary.status and prediction.status. */
  readonly status: DriftStatus;
}

/** The window or baseline cannot be compared; `key` names the offending input. */
export class DriftInputError extends RangeError {
  override readonly name = 'DriftInputError';

  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
  }
}

/** Compares a window of the model's `featureSet` (the one its baseline was built with) with the baseline. */
export function computeDrift(
  baseline: Baseline,
  window: DriftWindow,
  thresholds: DriftThresholds,
  featureSet: FeatureSet,
): DriftReport {
  validate(baseline, window, thresholds, featureSet);
  const { x, rows, scores } = window;
  const { minRows } = thresholds;
  const { count } = featureSet;

  const numeric = baseline.numeric.map((feature) => {
    const counted = countBins(
      x,
      featureSet.index(feature.feature),
      count,
      rows,
      Float64Array.from(numericBins(feature).edges),
    );
    const drift = numericDrift(feature, counted, rows, minRows);
    return { ...drift, status: featureStatus(drift.psi, thresholds) };
  });
  const categorical = baseline.categorical.map((field) => {
    const counted = countCategories(x, rows, count, oneHotColumns(featureSet, field.field, field.categories));
    const drift = categoricalDrift(field, counted, rows, minRows);
    return { ...drift, status: featureStatus(drift.psi, thresholds) };
  });
  const features: FeatureDrift[] = [...numeric, ...categorical];

  const prediction = predictionDrift(baseline.score, scores, rows, minRows);
  const predictionWithStatus = { ...prediction, status: predictionStatus(prediction, thresholds) };
  const summary = summarize(features);
  return {
    featureSet: baseline.featureSet,
    rows,
    thresholds,
    features,
    summary,
    prediction: predictionWithStatus,
    status: worst([summary.status, predictionWithStatus.status]),
  };
}

function validate(
  baseline: Baseline,
  window: DriftWindow,
  thresholds: DriftThresholds,
  featureSet: FeatureSet,
): void {
  if (baseline.featureSet.fingerprint !== featureSet.fingerprint) {
    // The window holds the version's features: a baseline of another definition has other columns.
    throw new DriftInputError(
      'baseline.featureSet.fingerprint',
      `${baseline.featureSet.fingerprint} is not the version's feature set ${featureSet.version} (${featureSet.fingerprint})`,
    );
  }
  const { rows, x, scores } = window;
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new DriftInputError('window.rows', `must be a non-negative integer, got ${rows}`);
  }
  if (x.length < rows * featureSet.count) {
    throw new DriftInputError(
      'window.x',
      `holds ${x.length} values, fewer than ${rows} rows × ${featureSet.count}`,
    );
  }
  if (scores.length < rows) {
    throw new DriftInputError('window.scores', `holds ${scores.length} scores for ${rows} rows`);
  }
  const { featurePsi, minRows } = thresholds;
  if (!(featurePsi.warn > 0 && featurePsi.warn <= featurePsi.page)) {
    throw new DriftInputError(
      'thresholds.featurePsi',
      `need 0 < warn ≤ page, got warn ${featurePsi.warn}, page ${featurePsi.page}`,
    );
  }
  if (!Number.isSafeInteger(minRows) || minRows < 1) {
    throw new DriftInputError('thresholds.minRows', `must be a positive integer, got ${minRows}`);
  }
}

/** The one-hot columns of `field`, checked against the categories the baseline recorded. */
function oneHotColumns(featureSet: FeatureSet, field: string, categories: readonly string[]): number[] {
  const columns = featureColumns(featureSet).oneHot[field];
  if (!columns) throw new DriftInputError(`baseline.categorical.${field}`, 'is not a categorical field');
  const known = columns.map((c) => c.category);
  if (known.join('\u0000') !== categories.join('\u0000')) {
    throw new DriftInputError(
      `baseline.categorical.${field}.categories`,
      `[${categories.join(', ')}] differ from the encoded columns [${known.join(', ')}]`,
    );
  }
  return columns.map((c) => c.column);
}

function featureStatus(psi: number | null, thresholds: DriftThresholds): DriftStatus {
  if (psi === null) return 'insufficient';
  if (psi >= thresholds.featurePsi.page) return 'page';
  if (psi >= thresholds.featurePsi.warn) return 'warn';
  return 'ok';
}

function predictionStatus(prediction: PredictionDrift, thresholds: DriftThresholds): DriftStatus {
  const { scorePsi, positiveRateDelta } = prediction;
  if (scorePsi === null || positiveRateDelta === null) return 'insufficient';
  const statuses: DriftStatus[] = ['ok'];
  if (scorePsi >= thresholds.scorePsi.threshold) statuses.push(thresholds.scorePsi.severity);
  if (Math.abs(positiveRateDelta) >= thresholds.positiveRateDeltaPoints.threshold) {
    statuses.push(thresholds.positiveRateDeltaPoints.severity);
  }
  return worst(statuses);
}

function summarize(features: readonly FeatureDrift[]): DriftReport['summary'] {
  let maxPsi: number | null = null;
  let maxPsiFeature: string | null = null;
  for (const f of features) {
    if (f.psi !== null && (maxPsi === null || f.psi > maxPsi)) {
      maxPsi = f.psi;
      maxPsiFeature = f.kind === 'numeric' ? f.feature : f.field;
    }
  }
  const count = (status: DriftStatus) => features.filter((f) => f.status === status).length;
  return {
    maxPsi,
    maxPsiFeature,
    warned: count('warn'),
    paged: count('page'),
    insufficient: count('insufficient'),
    status: worst(features.map((f) => f.status)),
  };
}

const RANK: Record<DriftStatus, number> = { insufficient: 0, ok: 1, warn: 2, page: 3 };

/** page > warn > ok > insufficient: one comparable feature that is fine makes the whole ok. */
function worst(statuses: readonly DriftStatus[]): DriftStatus {
  let result: DriftStatus = 'insufficient';
  for (const s of statuses) if (RANK[s] > RANK[result]) result = s;
  return result;
}
