import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NoModelError, ValidationError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { type CaptureSource, forEachCapturedRecord } from '#shared/inference/capture-reader.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';
import {
  DEFAULT_SERVICE,
  DRIFT_METRICS,
  FEATURE_DIMENSION,
  type MetricDatum,
  type MetricUnit,
  serviceDimensions,
} from '#shared/monitoring/metrics.ts';
import { type EmitLine, publishMetrics } from '#shared/monitoring/publish.ts';
import type { Baseline } from '#shared/registry/baseline.ts';
import { featureSetOfVersion } from '#shared/registry/feature-sets.ts';
import { getChampion, type RegistryDeps, readBaseline, readMetadata } from '#shared/registry/registry.ts';
import { keyTimestamp } from '#shared/resources.ts';
import { computeDrift, type DriftReport, type DriftStatus } from './compute.ts';
import { type DriftNotice, driftNotice } from './notice.ts';
import { driftThresholds } from './thresholds.ts';

/**
 * The drift job: the champion's captured predictions of a window (default: the hour before now) →
 * `computeDrift` against the champion's `baseline.json`, in the champion's own feature set → the drift metrics as EMF lines (the same sink
 * as every other Keel metric: stdout in Lambda, `${KEEL_HOME}/metrics/emf.jsonl` locally) → the report
 * as JSON in the outputs bucket under `drift-reports/`.
 *
 * Input is the prediction capture (shared/inference/capture.ts): the feature vectors the model scored,
 * from the real-time API and from batch scoring runs alike (`source`), so a drifted population is seen
 * whichever way it is scored.
 */

export const DRIFT_REPORT_PREFIX = 'drift-reports/';
const HOUR = 3_600_000;

export interface DriftJobDeps {
  readonly s3: S3Client;
  readonly registry: RegistryDeps;
  readonly outputsBucket: string;
  readonly modelName: string;
  /** The `service` dimension of the published metrics (default `keel`, what the alarms watch). */
  readonly service?: string;
  readonly monitoring?: MonitoringOptionsInput;
  /**
   * Sends the run's {@link DriftNotice} to on-call (the drift function publishes it to the on-call topic);
   * without it, the run only publishes metrics and writes its report.
   */
  readonly notify?: (notice: DriftNotice) => Promise<void>;
  /** Receives each EMF document as one line (default: the Powertools metrics console). */
  readonly emit?: EmitLine;
  readonly now?: () => Date;
}

export interface DriftJobInput {
  /** ISO 8601, inclusive; default `to` − 1 hour. */
  readonly from?: string;
  /** ISO 8601, exclusive; default now. */
  readonly to?: string;
}

/** What a run found, before anything is published: what `keel --stage S drift check` prints. */
export interface DriftCheck {
  readonly model: { readonly name: string; readonly version: string };
  readonly window: { readonly from: string; readonly to: string };
  readonly rows: number;
  /** Capture lines read that were not counted (other versions, outside the window, malformed). */
  readonly skipped: number;
  readonly status: DriftStatus;
  /** True when the window had fewer rows than the comparison needs: nothing was judged. */
  readonly insufficientData: boolean;
  readonly maxPsi: number | null;
  readonly maxPsiFeature: string | null;
  /** One line: the status and the largest PSI, or why nothing was judged. */
  readonly message: string;
  readonly generatedAt: string;
  readonly report: DriftReport;
}

export interface DriftJobResult extends Omit<DriftCheck, 'message' | 'generatedAt'> {
  readonly reportKey: string;
  /** The notice sent to on-call, when the run warned or paged and a notifier was given. */
  readonly notice?: DriftNotice;
  /** The EMF lines published. */
  readonly metricLines: number;
}

/** What `drift-reports/...json` holds. */
export interface DriftReportDocument {
  readonly generatedAt: string;
  readonly model: DriftJobResult['model'];
  readonly window: DriftJobResult['window'];
  readonly rows: number;
  readonly status: DriftStatus;
  readonly insufficientData: boolean;
  readonly message: string;
  readonly report: DriftReport;
}

/** The window [from, to) the input names; the default is the hour before `now`. */
export function driftWindow(input: DriftJobInput, now: Date): { from: Date; to: Date } {
  const to = input.to ? new Date(input.to) : now;
  const from = input.from ? new Date(input.from) : new Date(to.getTime() - HOUR);
  const issues = [
    ...(Number.isNaN(to.getTime()) ? [{ path: 'to', message: 'not an ISO 8601 time' }] : []),
    ...(Number.isNaN(from.getTime()) ? [{ path: 'from', message: 'not an ISO 8601 time' }] : []),
  ];
  if (issues.length === 0 && from >= to) issues.push({ path: 'from', message: 'must be before to' });
  if (issues.length > 0) throw new ValidationError('the drift window is invalid', issues);
  return { from, to };
}

/** The captured records of `version` (whose features are `featureSet`'s) served in [from, to), as computeDrift's window. */
export async function readCapturedWindow(
  deps: CaptureSource,
  version: string,
  featureSet: FeatureSet,
  from: Date,
  to: Date,
): Promise<{ x: Float32Array; scores: Float64Array; rows: number; skipped: number }> {
  const count = featureSet.count;
  const kept: CaptureRecord[] = [];
  let skipped = 0;
  const read = await forEachCapturedRecord(deps, from, to, (record) => {
    if (
      record.version !== version ||
      // A shadow's scores were never served: the window is what customers were answered.
      record.variant === 'shadow' ||
      !Array.isArray(record.x) ||
      record.x.length !== count
    ) {
      skipped++;
      return;
    }
    kept.push(record);
  });
  skipped += read.skipped;
  const x = new Float32Array(kept.length * count);
  const scores = new Float64Array(kept.length);
  kept.forEach((record, i) => {
    x.set(record.x, i * count);
    // A missing probability is a non-finite score (counted by computeDrift), never a made-up number.
    scores[i] = typeof record.probability === 'number' ? record.probability : Number.NaN;
  });
  return { x, scores, rows: kept.length, skipped };
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

/** What checkDrift reads: the captures, the registry and the thresholds. */
export type DriftCheckDeps = Pick<
  DriftJobDeps,
  's3' | 'registry' | 'outputsBucket' | 'modelName' | 'monitoring' | 'now'
>;

/**
 * The champion's captured predictions of the window against its baseline. Reads only: no metrics, no
 * report object, no notice (an operator's `keel --stage S drift check`, with their credentials).
 */
export async function checkDrift(deps: DriftCheckDeps, input: DriftJobInput = {}): Promise<DriftCheck> {
  const now = (deps.now ?? (() => new Date()))();
  const { from, to } = driftWindow(input, now);
  const version = await getChampion(deps.registry, deps.modelName);
  if (!version) throw new NoModelError(`${deps.modelName} has no champion: there is nothing to watch`);
  const featureSet = featureSetOfVersion(await readMetadata(deps.registry, deps.modelName, version));
  const baseline = (await readBaseline(deps.registry, deps.modelName, version)) as Baseline;
  const window = await readCapturedWindow(deps, version, featureSet, from, to);
  const thresholds = driftThresholds(deps.monitoring);
  const report = computeDrift(baseline, window, thresholds, featureSet);
  const insufficientData = window.rows < thresholds.minRows;
  return {
    generatedAt: now.toISOString(),
    model: { name: deps.modelName, version },
    window: { from: from.toISOString(), to: to.toISOString() },
    rows: window.rows,
    skipped: window.skipped,
    status: report.status,
    insufficientData,
    maxPsi: report.summary.maxPsi,
    maxPsiFeature: report.summary.maxPsiFeature,
    message: insufficientData
      ? `insufficient data: ${window.rows} captured predictions of ${version} in the window, ${thresholds.minRows} needed`
      : `drift ${report.status}: largest PSI ${report.summary.maxPsi?.toFixed(3)} (${report.summary.maxPsiFeature})`,
    report,
  };
}

/** The scheduled job: {@link checkDrift}, then its metrics, its report in S3 and its notice. */
export async function runDrift(deps: DriftJobDeps, input: DriftJobInput = {}): Promise<DriftJobResult> {
  const { message, generatedAt, ...check } = await checkDrift(deps, input);
  const { model, window, report } = check;
  const metricLines = publishMetrics(driftMetricData(report, deps.service ?? DEFAULT_SERVICE), {
    timestamp: Date.parse(window.to),
    properties: { ModelVersion: model.version, DriftWindowFrom: window.from },
    ...(deps.emit ? { emit: deps.emit } : {}),
  });

  const reportKey = `${DRIFT_REPORT_PREFIX}model=${deps.modelName}/version=${model.version}/${keyTimestamp(new Date(window.from))}-${keyTimestamp(new Date(window.to))}.json`;
  const document: DriftReportDocument = {
    generatedAt,
    model,
    window,
    rows: check.rows,
    status: check.status,
    insufficientData: check.insufficientData,
    message,
    report,
  };
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.outputsBucket,
      Key: reportKey,
      Body: JSON.stringify(document, null, 2),
      ContentType: 'application/json',
    }),
  );
  // After the report is stored: the notice points at it.
  const notice = deps.notify
    ? driftNotice(report, { model, window, report: `s3://${deps.outputsBucket}/${reportKey}` })
    : undefined;
  if (notice && deps.notify) await deps.notify(notice);
  return { ...(notice ? { notice } : {}), ...check, reportKey, metricLines };
}
