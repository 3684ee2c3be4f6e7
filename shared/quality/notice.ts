import type { MonitoringOptions } from '#shared/monitoring/alarm-options.ts';
import type { QualityReport } from './types.ts';

/**
 * The notice a quality run sends beside its alarms, at the thresholds of the same alarm catalog: the
 * alarm says a metric crossed a line; on-call needs which version, its realized and held-out AUC, the
 * window, the features that differ, and where the report is.
 */
export interface QualityNotice {
  /** ASCII, under 100 characters, as SNS requires of a subject. */
  readonly subject: string;
  readonly message: QualityNoticeMessage;
}

export interface QualityNoticeMessage {
  readonly kind: 'quality';
  /** `page` when a version's AUC fell (the quality alarm pages), else `warn`. */
  readonly status: 'warn' | 'page';
  /** One sentence for a phone screen. */
  readonly summary: string;
  readonly model: { readonly name: string };
  readonly window: QualityReport['window'];
  /** The versions whose realized AUC fell more than the alarm allows below their held-out AUC. */
  readonly versions: readonly {
    readonly version: string;
    readonly heldOutAuc: number;
    readonly realizedAuc: number;
    readonly estimatedAuc: number | null;
    readonly matched: number;
    readonly shortfall: number;
  }[];
  readonly consistency?: QualityReport['consistency'];
  readonly skew?: QualityReport['skew'];
  /** The full report: `s3://bucket/quality-reports/…json`. */
  readonly report: string;
}

const SNS_SUBJECT_LIMIT = 100;

/** The notice of a quality run, or undefined when no alarm condition holds. */
export function qualityNotice(
  report: QualityReport,
  options: MonitoringOptions['quality'],
  reportUri: string,
): QualityNotice | undefined {
  const versions = report.versions.flatMap((v) =>
    v.aucShortfall !== null && v.aucShortfall > options.aucDrop && v.realized?.auc != null
      ? [
          {
            version: v.version,
            heldOutAuc: v.heldOut.auc,
            realizedAuc: v.realized.auc,
            estimatedAuc: v.estimated?.auc ?? null,
            matched: v.realized.matched,
            shortfall: v.aucShortfall,
          },
        ]
      : [],
  );
  const { consistency, skew } = report;
  const inconsistent = consistency.share !== null && 100 * consistency.share < options.minConsistencyPercent;
  const skewed = skew.share !== null && 100 * skew.share > options.maxSkewPercent;
  if (versions.length === 0 && !inconsistent && !skewed) return undefined;

  const parts = [
    ...versions.map(
      (v) =>
        `${v.version} AUC ${v.realizedAuc.toFixed(3)} on ${v.matched} outcomes vs ${v.heldOutAuc.toFixed(3)} held out`,
    ),
    ...(inconsistent
      ? [
          `batch/real-time consistency ${(100 * consistency.share!).toFixed(1)}% of ${consistency.pairs} pairs`,
        ]
      : []),
    ...(skewed
      ? [
          `skew in ${(100 * skew.share!).toFixed(1)}% of served vectors: ${skew.features.map((f) => f.name).join(', ')}`,
        ]
      : []),
  ];
  const subject = `Keel ${report.model.name}: ${parts.join('; ')}`;
  return {
    subject: subject.length < SNS_SUBJECT_LIMIT ? subject : `${subject.slice(0, SNS_SUBJECT_LIMIT - 4)}...`,
    message: {
      kind: 'quality',
      status: versions.length > 0 ? 'page' : 'warn',
      summary: `${parts.join('; ')} in ${report.window.from} – ${report.window.to}`,
      model: report.model,
      window: report.window,
      versions,
      ...(inconsistent ? { consistency } : {}),
      ...(skewed ? { skew } : {}),
      report: reportUri,
    },
  };
}
