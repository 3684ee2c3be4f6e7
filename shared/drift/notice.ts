import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { DriftReport, DriftStatus } from './compute.ts';

/**
 * The page a drift run sends beside its alarms. A CloudWatch alarm's message says only that a metric
 * crossed a threshold; on-call needs which features moved and by how much, the window, the model version
 * and where the report is. The drift job publishes this notice to the on-call topic whenever its report
 * warns or pages, at the thresholds of the same alarm catalog (the report's statuses come from it).
 */
export interface DriftNotice {
  /** ASCII, under 100 characters, as SNS requires of a subject. */
  readonly subject: string;
  readonly message: DriftNoticeMessage;
}

export interface DriftNoticeMessage {
  readonly kind: 'drift';
  readonly status: Exclude<DriftStatus, 'ok' | 'insufficient'>;
  /** One sentence for a phone screen: what moved, by how much, in which window. */
  readonly summary: string;
  readonly model: { readonly name: string; readonly version: string };
  readonly window: { readonly from: string; readonly to: string };
  /** The features and fields that warn or page, the largest PSI first. */
  readonly features: { readonly feature: string; readonly psi: number; readonly status: DriftStatus }[];
  readonly prediction: {
    readonly status: DriftStatus;
    readonly scorePsi: number | null;
    /** Change of the positive-prediction rate, in percentage points. */
    readonly positiveRateDeltaPoints: number | null;
  };
  /** The full report: `s3://bucket/drift-reports/…json`. */
  readonly report: string;
}

const SNS_SUBJECT_LIMIT = 100;
const fixed = (value: number, digits: number) => value.toFixed(digits);

/** The notice of a drift run, or undefined when nothing warns or pages (or the window was too small). */
export function driftNotice(
  report: DriftReport,
  run: {
    readonly model: DriftNoticeMessage['model'];
    readonly window: DriftNoticeMessage['window'];
    readonly report: string;
  },
): DriftNotice | undefined {
  if (report.status !== 'warn' && report.status !== 'page') return undefined;
  const features = report.features
    .filter((f) => (f.status === 'warn' || f.status === 'page') && f.psi !== null)
    .map((f) => ({ feature: f.kind === 'numeric' ? f.feature : f.field, psi: f.psi!, status: f.status }))
    .sort((a, b) => b.psi - a.psi);
  const { prediction } = report;
  const parts: string[] = [];
  if (features.length > 0) {
    parts.push(
      `data drift (${report.summary.status}): ${features.map((f) => `${f.feature} PSI ${fixed(f.psi, 2)}`).join(', ')}`,
    );
  }
  if (prediction.status === 'warn' || prediction.status === 'page') {
    const moves = [
      ...(prediction.scorePsi !== null ? [`score PSI ${fixed(prediction.scorePsi, 2)}`] : []),
      ...(prediction.positiveRateDelta !== null
        ? [
            `positive rate ${prediction.positiveRateDelta >= 0 ? '+' : ''}${fixed(prediction.positiveRateDelta, 1)} points`,
          ]
        : []),
    ];
    parts.push(`prediction drift (${prediction.status}) of ${run.model.version}: ${moves.join(', ')}`);
  }
  const summary = `${parts.join('; ')} in ${run.window.from} – ${run.window.to}`;
  const subject = `Keel ${run.model.name}: ${parts.join('; ')}`;
  return {
    subject: subject.length < SNS_SUBJECT_LIMIT ? subject : `${subject.slice(0, SNS_SUBJECT_LIMIT - 4)}...`,
    message: {
      kind: 'drift',
      status: report.status,
      summary,
      model: run.model,
      window: run.window,
      features,
      prediction: {
        status: prediction.status,
        scorePsi: prediction.scorePsi,
        positiveRateDeltaPoints: prediction.positiveRateDelta,
      },
      report: run.report,
    },
  };
}

/**
 * Publishes a notice to an SNS topic: the subject, and the message as indented JSON (a drift notice, a
 * rollout's page).
 */
export async function publishNotice(
  sns: SNSClient,
  topicArn: string,
  notice: Pick<DriftNotice, 'subject'> & { readonly message: unknown },
): Promise<void> {
  await sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Subject: notice.subject,
      Message: JSON.stringify(notice.message, null, 2),
    }),
  );
}
