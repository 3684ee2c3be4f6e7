import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ValidationError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/index.ts';
import { forEachCapturedRecord } from '#shared/inference/capture-reader.ts';
import {
  type MonitoringOptions,
  type MonitoringOptionsInput,
  resolveMonitoringOptions,
} from '#shared/monitoring/alarm-options.ts';
import {
  DEFAULT_SERVICE,
  type MetricDatum,
  type MetricUnit,
  MODEL_VERSION_DIMENSION,
  QUALITY_METRICS,
  serviceDimensions,
} from '#shared/monitoring/metrics.ts';
import { type EmitLine, publishMetrics } from '#shared/monitoring/publish.ts';
import { featureSetOfVersion } from '#shared/registry/feature-sets.ts';
import { type RegistryDeps, readMetadata } from '#shared/registry/registry.ts';
import { keyTimestamp, type ResourceNames } from '#shared/resources.ts';
import { calibratorOf } from './calibrator.ts';
import { createConsistencyCheck } from './consistency.ts';
import { estimateQuality } from './estimate.ts';
import { type QualityNotice, qualityNotice } from './notice.ts';
import { outcomeFor, readOutcomes } from './outcomes.ts';
import { realizedQuality } from './realized.ts';
import { compareWithOffline, createSkewSample, type OfflineRecord, readOfflineRecords } from './skew.ts';
import type { QualityBucket, QualityReport, VersionQuality } from './types.ts';

/**
 * The quality job (daily; EventBridge → Lambda in AWS, the local scheduler on `keel up`): the captured
 * answers of a window joined with the outcomes that arrived within the label window after each, per
 * model version — realized figures where outcomes arrived, confidence-based estimates from the scores
 * everywhere, batch/real-time consistency and training/serving skew — published as metrics (what the
 * quality alarms watch), written as a report under `quality-reports/`, and sent to on-call as a notice
 * naming the version when an alarm condition holds.
 */

export const QUALITY_REPORT_PREFIX = 'quality-reports/';
const DAY = 86_400_000;

export interface QualityJobDeps {
  readonly s3: S3Client;
  readonly registry: RegistryDeps;
  readonly rawBucket: string;
  readonly featuresBucket: string;
  readonly outputsBucket: string;
  readonly modelName: string;
  /** The `service` dimension of the published metrics (default `keel`, what the alarms watch). */
  readonly service?: string;
  readonly monitoring?: MonitoringOptionsInput;
  /** Sends the run's notice to on-call; without it the run publishes metrics and its report only. */
  readonly notify?: (notice: QualityNotice) => Promise<void>;
  /** Receives each EMF document as one line (default: the Powertools metrics console). */
  readonly emit?: EmitLine;
  /**
   * Whether to publish metrics, write the report and notify (the scheduled job); false reads only (an
   * operator's `keel --stage S quality check`).
   * @default - true
   */
  readonly publish?: boolean;
  readonly now?: () => Date;
}

/** What a platform context (a Lambda's, the command line's) gives the job: its data and registry. */
export interface QualityDataContext {
  readonly clients: { readonly s3: S3Client };
  readonly registry: RegistryDeps;
  readonly names: Pick<ResourceNames, 'raw' | 'features' | 'outputs'>;
  readonly modelName: string;
}

/** The job's data dependencies from a context; the caller adds publishing, notifying and options. */
export function qualityDataOf(ctx: QualityDataContext) {
  return {
    s3: ctx.clients.s3,
    registry: ctx.registry,
    rawBucket: ctx.names.raw,
    featuresBucket: ctx.names.features,
    outputsBucket: ctx.names.outputs,
    modelName: ctx.modelName,
  } satisfies Partial<QualityJobDeps>;
}

export interface QualityJobInput {
  /** ISO 8601, inclusive; default `to` − the configured window days. */
  readonly from?: string;
  /** ISO 8601, exclusive; default now. */
  readonly to?: string;
}

export interface QualityJobResult {
  readonly report: QualityReport;
  /** Where the report was written; undefined when the run only read. */
  readonly reportKey?: string;
  readonly notice?: QualityNotice;
  readonly metricLines: number;
}

/** The window [from, to) the input names; the default is the configured days before `now`. */
export function qualityWindow(
  input: QualityJobInput,
  now: Date,
  windowDays: number,
): { from: Date; to: Date } {
  const to = input.to ? new Date(input.to) : now;
  const from = input.from ? new Date(input.from) : new Date(to.getTime() - windowDays * DAY);
  const issues = [
    ...(Number.isNaN(to.getTime()) ? [{ path: 'to', message: 'not an ISO 8601 time' }] : []),
    ...(Number.isNaN(from.getTime()) ? [{ path: 'from', message: 'not an ISO 8601 time' }] : []),
  ];
  if (issues.length === 0 && from >= to) issues.push({ path: 'from', message: 'must be before to' });
  if (issues.length > 0) throw new ValidationError('the quality window is invalid', issues);
  return { from, to };
}

/** One version's answers in the window, column by column. */
interface Answers {
  readonly t: number[];
  readonly probability: number[];
  readonly customerId: string[];
}

/** Realized figures over the answers with an outcome, estimated ones over all of them. */
function judge(
  rows: readonly { probability: number; label: 0 | 1 | undefined }[],
  threshold: number,
  calibrator: ReturnType<typeof calibratorOf>,
) {
  const matched = rows.filter((r) => r.label !== undefined);
  return {
    realized:
      matched.length === 0
        ? null
        : realizedQuality(
            matched.map((r) => r.label!),
            matched.map((r) => r.probability),
            threshold,
          ),
    estimated:
      rows.length === 0
        ? null
        : estimateQuality(
            rows.map((r) => r.probability),
            threshold,
            calibrator,
          ),
  };
}

async function versionQuality(
  deps: QualityJobDeps,
  version: string,
  answers: Answers,
  labelOf: (i: number) => 0 | 1 | undefined,
  window: { from: Date; to: Date },
  options: MonitoringOptions['quality'],
): Promise<VersionQuality> {
  const metadata = await readMetadata(deps.registry, deps.modelName, version);
  const calibrator = calibratorOf(metadata.metrics);
  const rows = answers.t.map((_, i) => ({ probability: answers.probability[i]!, label: labelOf(i) }));
  const all = judge(rows, metadata.threshold, calibrator);
  const bucketMs = options.bucketDays * DAY;
  const [fromMs, toMs] = [window.from.getTime(), window.to.getTime()];
  const byBucket: (typeof rows)[] = Array.from({ length: Math.ceil((toMs - fromMs) / bucketMs) }, () => []);
  rows.forEach((row, i) => {
    byBucket[Math.floor((answers.t[i]! - fromMs) / bucketMs)]?.push(row);
  });
  const buckets: QualityBucket[] = byBucket.map((inBucket, b) => ({
    from: new Date(fromMs + b * bucketMs).toISOString(),
    to: new Date(Math.min(fromMs + (b + 1) * bucketMs, toMs)).toISOString(),
    predictions: inBucket.length,
    ...judge(inBucket, metadata.threshold, calibrator),
  }));
  const realizedAuc = all.realized?.auc ?? null;
  return {
    version,
    threshold: metadata.threshold,
    heldOut: { auc: metadata.metrics.auc, accuracy: metadata.metrics.accuracy },
    predictions: rows.length,
    realized: all.realized,
    estimated: all.estimated,
    aucShortfall:
      realizedAuc !== null && (all.realized?.matched ?? 0) >= options.minMatched
        ? metadata.metrics.auc - realizedAuc
        : null,
    buckets,
  };
}

const versionOrder = (a: string, b: string) => Number(b.slice(1)) - Number(a.slice(1));
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Computes the report of [from, to): reads only. */
export async function computeQuality(
  deps: QualityJobDeps,
  window: { from: Date; to: Date },
  options: MonitoringOptions['quality'],
  now: Date,
): Promise<QualityReport> {
  const labelWindowMs = options.labelWindowDays * DAY;
  // Only outcomes that can judge a prediction of the window are kept in memory.
  const outcomes = await readOutcomes(
    { s3: deps.s3, rawBucket: deps.rawBucket, featuresBucket: deps.featuresBucket },
    { observedFrom: window.from, observedBefore: new Date(window.to.getTime() + labelWindowMs) },
  );
  const byVersion = new Map<string, Answers>();
  const consistency = createConsistencyCheck();
  // The skew check samples the window's last day: what the store serves now.
  const skewSample = createSkewSample(
    options.skewSample,
    Math.max(window.from.getTime(), window.to.getTime() - DAY),
  );
  await forEachCapturedRecord(
    { s3: deps.s3, outputsBucket: deps.outputsBucket, modelName: deps.modelName },
    window.from,
    window.to,
    (record) => {
      consistency.add(record);
      skewSample.offer(record);
      // A shadow's score answered nobody: its quality is not the one customers got.
      if (record.variant === 'shadow' || typeof record.probability !== 'number') return;
      let answers = byVersion.get(record.version);
      if (!answers) {
        answers = { t: [], probability: [], customerId: [] };
        byVersion.set(record.version, answers);
      }
      answers.t.push(Date.parse(record.t));
      answers.probability.push(record.probability);
      answers.customerId.push(record.customerId);
    },
  );
  const versions: VersionQuality[] = [];
  for (const version of [...byVersion.keys()].sort(versionOrder)) {
    const answers = byVersion.get(version)!;
    const labelOf = (i: number) =>
      outcomeFor(outcomes.index, answers.customerId[i]!, answers.t[i]!, labelWindowMs)?.churned;
    versions.push(await versionQuality(deps, version, answers, labelOf, window, options));
  }
  const served = skewSample.vectors();
  const offline =
    served.length === 0
      ? new Map<string, OfflineRecord>()
      : (
          await readOfflineRecords(deps.s3, deps.featuresBucket, served, {
            from: isoDate(served.reduce((oldest, v) => Math.min(oldest, Date.parse(v.eventTime)), Infinity)),
            to: isoDate(window.to.getTime()),
          })
        ).records;
  // Each served vector is recomputed with its own version's features.
  const featureSets = new Map<string, FeatureSet>();
  for (const version of new Set(served.map((v) => v.version))) {
    featureSets.set(version, featureSetOfVersion(await readMetadata(deps.registry, deps.modelName, version)));
  }
  return {
    generatedAt: now.toISOString(),
    model: { name: deps.modelName },
    window: { from: window.from.toISOString(), to: window.to.toISOString() },
    labelWindowDays: options.labelWindowDays,
    thresholds: {
      aucDrop: options.aucDrop,
      minMatched: options.minMatched,
      minConsistencyPercent: options.minConsistencyPercent,
      maxSkewPercent: options.maxSkewPercent,
    },
    outcomes: outcomes.intake,
    versions,
    consistency: consistency.figures(),
    skew: compareWithOffline(served, offline, (version) => featureSets.get(version)),
  };
}

/**
 * The datapoints of one run: per version what it has (a version without outcomes publishes no
 * realized figures, never a made-up 0), and the service-level values the alarms watch.
 */
export function qualityMetricData(report: QualityReport, service = DEFAULT_SERVICE): MetricDatum[] {
  const dimensions = serviceDimensions(service);
  const data: MetricDatum[] = [];
  const add = (metricName: string, value: number | null | undefined, unit: MetricUnit, dims = dimensions) => {
    if (value !== null && value !== undefined && Number.isFinite(value))
      data.push({ metricName, value, unit, dimensions: dims });
  };
  for (const v of report.versions) {
    const dims = { ...dimensions, [MODEL_VERSION_DIMENSION]: v.version };
    add(QUALITY_METRICS.matched, v.realized?.matched ?? 0, 'Count', dims);
    add(QUALITY_METRICS.realizedAuc, v.realized?.auc, 'None', dims);
    add(QUALITY_METRICS.realizedAccuracy, v.realized?.accuracy, 'None', dims);
    add(QUALITY_METRICS.logLoss, v.realized?.logloss, 'None', dims);
    add(QUALITY_METRICS.precision, v.realized?.precision, 'None', dims);
    add(QUALITY_METRICS.recall, v.realized?.recall, 'None', dims);
    add(QUALITY_METRICS.positiveRate, v.realized?.positiveRate, 'None', dims);
    add(QUALITY_METRICS.calibrationError, v.realized?.expectedCalibrationError, 'None', dims);
    add(QUALITY_METRICS.estimatedAuc, v.estimated?.auc, 'None', dims);
    add(QUALITY_METRICS.estimatedAccuracy, v.estimated?.accuracy, 'None', dims);
  }
  const shortfalls = report.versions.flatMap((v) => (v.aucShortfall === null ? [] : [v.aucShortfall]));
  if (shortfalls.length > 0) add(QUALITY_METRICS.aucShortfall, Math.max(...shortfalls), 'None');
  const { consistency, skew } = report;
  if (consistency.share !== null) {
    add(QUALITY_METRICS.consistency, 100 * consistency.share, 'Percent');
    add(QUALITY_METRICS.maxScoreDifference, consistency.maxScoreDifference, 'None');
  }
  if (skew.share !== null) {
    add(QUALITY_METRICS.skew, 100 * skew.share, 'Percent');
    add(QUALITY_METRICS.skewedFeatures, skew.features.length, 'Count');
  }
  return data;
}

export function qualityReportKey(modelName: string, window: { from: Date; to: Date }): string {
  return `${QUALITY_REPORT_PREFIX}model=${modelName}/${keyTimestamp(window.from)}-${keyTimestamp(window.to)}.json`;
}

export async function runQuality(
  deps: QualityJobDeps,
  input: QualityJobInput = {},
): Promise<QualityJobResult> {
  const now = (deps.now ?? (() => new Date()))();
  const options = resolveMonitoringOptions(deps.monitoring ?? {}).quality;
  const window = qualityWindow(input, now, options.windowDays);
  const report = await computeQuality(deps, window, options, now);
  if (deps.publish === false) return { report, metricLines: 0 };

  const metricLines = publishMetrics(qualityMetricData(report, deps.service ?? DEFAULT_SERVICE), {
    timestamp: window.to.getTime(),
    properties: { QualityWindowFrom: report.window.from },
    ...(deps.emit ? { emit: deps.emit } : {}),
  });
  const reportKey = qualityReportKey(deps.modelName, window);
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.outputsBucket,
      Key: reportKey,
      Body: JSON.stringify(report, null, 2),
      ContentType: 'application/json',
    }),
  );
  // After the report is stored: the notice points at it.
  const notice = qualityNotice(report, options, `s3://${deps.outputsBucket}/${reportKey}`);
  if (notice && deps.notify) await deps.notify(notice);
  return { report, reportKey, metricLines, ...(notice && deps.notify ? { notice } : {}) };
}

/**
 * What the job's function returns: the report's key and the figures per version, without the buckets
 * and reliability curves (an invocation's response is limited to 6 MB; the report has no limit).
 */
export interface QualityRunSummary {
  readonly reportKey: string;
  readonly window: QualityReport['window'];
  readonly outcomes: QualityReport['outcomes'];
  readonly versions: readonly {
    readonly version: string;
    readonly predictions: number;
    readonly matched: number;
    readonly realizedAuc: number | null;
    readonly estimatedAuc: number | null;
    readonly heldOutAuc: number;
    readonly aucShortfall: number | null;
  }[];
  readonly consistency: QualityReport['consistency'];
  readonly skew: QualityReport['skew'];
  readonly metricLines: number;
  /** The subject of the notice sent to on-call, when one was. */
  readonly notice?: string;
}

export function summarizeQualityRun(result: QualityJobResult): QualityRunSummary {
  const { report } = result;
  if (!result.reportKey) throw new Error('summarizeQualityRun: the run wrote no report (publish: false)');
  return {
    reportKey: result.reportKey,
    window: report.window,
    outcomes: report.outcomes,
    versions: report.versions.map((v) => ({
      version: v.version,
      predictions: v.predictions,
      matched: v.realized?.matched ?? 0,
      realizedAuc: v.realized?.auc ?? null,
      estimatedAuc: v.estimated?.auc ?? null,
      heldOutAuc: v.heldOut.auc,
      aucShortfall: v.aucShortfall,
    })),
    consistency: report.consistency,
    skew: report.skew,
    metricLines: result.metricLines,
    ...(result.notice ? { notice: result.notice.subject } : {}),
  };
}
