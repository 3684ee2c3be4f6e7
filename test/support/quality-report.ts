import type { CalibrationBin } from '#shared/model/metrics.ts';
import type {
  EstimatedFigures,
  QualityBucket,
  QualityReport,
  RealizedFigures,
  VersionQuality,
} from '#shared/quality/types.ts';

/**
 * A quality report as the job writes one, for the HTML report's tests: two versions (v10, whose AUC fell
 * past the alarm, and v9), daily buckets with gaps, reliability curves with empty bins, no batch/real-time
 * pairs, and skewed features. The model name is hostile on purpose.
 */

export const HOSTILE_NAME = `<script>alert("x")</script> & 'churn'`;

/** Ten equal-width bins; a null count leaves the bin empty. */
function reliability(counts: readonly (number | null)[], lift: number): CalibrationBin[] {
  return counts.map((n, b) => ({
    lower: b / 10,
    upper: (b + 1) / 10,
    count: n ?? 0,
    meanPredicted: n === null ? null : b / 10 + 0.05,
    observedRate: n === null ? null : Math.min(1, b / 10 + lift),
  }));
}

function realized(auc: number | null, matched: number): RealizedFigures {
  return {
    matched,
    auc,
    logloss: 0.4123,
    accuracy: 0.8125,
    precision: 0.6031,
    recall: 0.5517,
    positiveRate: 0.2214,
    observedRate: 0.2378,
    expectedCalibrationError: 0.0312,
    reliability: reliability([120, 90, 60, null, 40, null, 20, 10, null, 5], 0.03),
  };
}

const estimated = (auc: number | null, predictions: number): EstimatedFigures => ({
  predictions,
  auc,
  accuracy: 0.8342,
});

/** Daily buckets from 2026-11-20; a null AUC is a bucket without that figure. */
function buckets(realizedAucs: (number | null)[], estimatedAucs: (number | null)[]): QualityBucket[] {
  return realizedAucs.map((auc, i) => ({
    from: new Date(Date.UTC(2026, 10, 20 + i)).toISOString(),
    to: new Date(Date.UTC(2026, 10, 21 + i)).toISOString(),
    predictions: 100,
    realized: auc === null ? null : realized(auc, 60),
    estimated: estimatedAucs[i] === null ? null : estimated(estimatedAucs[i]!, 100),
  }));
}

/** A version with 60% of its predictions matched; AUCs are (realized, estimated), overall then daily. */
function version(
  name: string,
  threshold: number,
  heldOut: VersionQuality['heldOut'],
  predictions: number,
  [realizedAuc, estimatedAuc]: [number, number],
  aucShortfall: number,
  daily: [(number | null)[], (number | null)[]],
): VersionQuality {
  return {
    version: name,
    threshold,
    heldOut,
    predictions,
    realized: realized(realizedAuc, predictions * 0.6),
    estimated: estimated(estimatedAuc, predictions),
    aucShortfall,
    buckets: buckets(...daily),
  };
}

const v9 = version('v9', 0.5, { auc: 0.861, accuracy: 0.83 }, 500, [0.831, 0.852], 0.03, [
  [0.84, null, 0.83, 0.82, null],
  [0.86, 0.85, null, 0.84, 0.85],
]);
const v10 = version('v10', 0.45, { auc: 0.882, accuracy: 0.845 }, 7000, [0.797, 0.871], 0.085, [
  [0.82, 0.81, null, null, 0.79, 0.78, 0.8],
  [0.88, 0.87, 0.87, 0.86, 0.87, 0.86, 0.87],
]);

export function qualityReportFixture(): QualityReport {
  return {
    generatedAt: '2026-11-27T06:00:03.000Z',
    model: { name: HOSTILE_NAME },
    window: { from: '2026-11-20T00:00:00.000Z', to: '2026-11-27T00:00:00.000Z' },
    labelWindowDays: 30,
    thresholds: { aucDrop: 0.05, minMatched: 200, minConsistencyPercent: 99, maxSkewPercent: 1 },
    outcomes: { files: 3, rows: 12345, quarantined: 17 },
    // The job's order: oldest first.
    versions: [v9, v10],
    consistency: { pairs: 0, identicalDecisions: 0, share: null, maxScoreDifference: null },
    skew: {
      sampled: 200,
      compared: 180,
      differing: 9,
      share: 0.05,
      features: [
        { name: 'support_tickets_90d', differing: 7 },
        { name: 'tenure_months', differing: 2 },
      ],
    },
  };
}

/** The same window before any outcome arrived, with nothing to compare: every figure absent. */
export function emptyQualityReportFixture(): QualityReport {
  const report = qualityReportFixture();
  return {
    ...report,
    outcomes: { files: 0, rows: 0, quarantined: 0 },
    versions: report.versions.map((v) => ({
      ...v,
      realized: null,
      estimated: null,
      aucShortfall: null,
      buckets: v.buckets.map((b) => ({ ...b, realized: null, estimated: null })),
    })),
    skew: { sampled: 0, compared: 0, differing: 0, share: null, features: [] },
  };
}
