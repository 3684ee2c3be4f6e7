import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NoModelError, ValidationError } from '#shared/errors.ts';
import { FEATURE_COUNT } from '#shared/features/index.ts';
import {
  CAPTURE_PARTITION_SLACK_MS,
  type CaptureRecord,
  captureHourPrefix,
} from '#shared/inference/capture.ts';
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
import { getChampion, type RegistryDeps, readBaseline } from '#shared/registry/registry.ts';
import { keyTimestamp } from '#shared/resources.ts';
import { computeDrift, type DriftReport, type DriftStatus } from './compute.ts';
import { type DriftNotice, driftNotice } from './notice.ts';
import { driftThresholds } from './thresholds.ts';

/**
 * The drift job: the champion's captured predictions of a window (default: the hour before now) →
 * `computeDrift` against the champion's `baseline.json` → the drift metrics as EMF lines (the same sink
 * as every other Keel metric: stdout in Lambda, `${KEEL_HOME}/metrics/emf.jsonl` locally) → the report
 * as JSON in the outputs bucket under `drift-reports/`.
 *
 * Input is the prediction capture (shared/inference/capture.ts): the feature vectors the model scored,
 * from the real-time API and from batch scoring runs alike (`source`), so a drifted population is seen
 * whichever way it is scored.
 */

export const DRIFT_REPORT_PREFIX = 'drift-reports/';
const HOUR = 3_600_000;
const READ_CONCURRENCY = 16;

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

export interface DriftJobResult {
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
  readonly reportKey: string;
  /** The notice sent to on-call, when the run warned or paged and a notifier was given. */
  readonly notice?: DriftNotice;
  /** The EMF lines published. */
  readonly metricLines: number;
  readonly report: DriftReport;
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

/**
 * The capture hour prefixes that can hold records of [from, to): the hours the window touches, widened
 * by the partition slack (the delivery partitions by the hour its buffer started, see capture.ts).
 */
function hourPrefixes(model: string, from: Date, to: Date): string[] {
  const prefixes: string[] = [];
  const [start, end] = [
    from.getTime() - CAPTURE_PARTITION_SLACK_MS,
    to.getTime() + CAPTURE_PARTITION_SLACK_MS,
  ];
  for (let t = Math.floor(start / HOUR) * HOUR; t < end; t += HOUR) {
    prefixes.push(captureHourPrefix(model, new Date(t)));
  }
  return prefixes;
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/**
 * The JSON objects of one line of a capture object: usually the line itself; several when records
 * were concatenated without a newline (Firehose joins the records of a buffer as they are unless it is
 * told to add a delimiter). Splits at top-level `}{`, outside strings; blank lines yield nothing.
 */
export function jsonObjectsOf(line: string): string[] {
  const trimmed = line.trim();
  if (trimmed === '') return [];
  if (!trimmed.includes('}{')) return [trimmed];
  const objects: string[] = [];
  let [depth, start, inString, escaped] = [0, 0, false, false];
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      objects.push(trimmed.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < trimmed.length) objects.push(trimmed.slice(start));
  return objects;
}

/** The captured records of `version` served in [from, to), as computeDrift's window. */
export async function readCapturedWindow(
  deps: Pick<DriftJobDeps, 's3' | 'outputsBucket' | 'modelName'>,
  version: string,
  from: Date,
  to: Date,
): Promise<{ x: Float32Array; scores: Float64Array; rows: number; skipped: number }> {
  const keys = (
    await Promise.all(
      hourPrefixes(deps.modelName, from, to).map((p) => listKeys(deps.s3, deps.outputsBucket, p)),
    )
  ).flat();
  // At most READ_CONCURRENCY reads at a time: a busy hour holds thousands of small capture objects.
  const texts: string[] = new Array(keys.length);
  let next = 0;
  const reader = async () => {
    for (let i = next++; i < keys.length; i = next++) {
      const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.outputsBucket, Key: keys[i] }));
      texts[i] = await object.Body!.transformToString();
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, keys.length) }, reader));
  const kept: CaptureRecord[] = [];
  let skipped = 0;
  const [fromMs, toMs] = [from.getTime(), to.getTime()];
  for (const text of texts) {
    for (const line of text.split('\n').flatMap(jsonObjectsOf)) {
      let record: CaptureRecord;
      try {
        record = JSON.parse(line) as CaptureRecord;
      } catch {
        skipped++;
        continue;
      }
      const t = Date.parse(record.t);
      if (
        record.version !== version ||
        // A shadow's scores were never served: the window is what customers were answered.
        record.variant === 'shadow' ||
        !(t >= fromMs && t < toMs) ||
        !Array.isArray(record.x) ||
        record.x.length !== FEATURE_COUNT
      ) {
        skipped++;
        continue;
      }
      kept.push(record);
    }
  }
  const x = new Float32Array(kept.length * FEATURE_COUNT);
  const scores = new Float64Array(kept.length);
  kept.forEach((record, i) => {
    x.set(record.x, i * FEATURE_COUNT);
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

export async function runDrift(deps: DriftJobDeps, input: DriftJobInput = {}): Promise<DriftJobResult> {
  const now = (deps.now ?? (() => new Date()))();
  const { from, to } = driftWindow(input, now);
  const version = await getChampion(deps.registry, deps.modelName);
  if (!version) throw new NoModelError(`${deps.modelName} has no champion: there is nothing to watch`);
  const baseline = (await readBaseline(deps.registry, deps.modelName, version)) as Baseline;
  const window = await readCapturedWindow(deps, version, from, to);
  const thresholds = driftThresholds(deps.monitoring);
  const report = computeDrift(baseline, window, thresholds);
  const insufficientData = window.rows < thresholds.minRows;

  const metricLines = publishMetrics(driftMetricData(report, deps.service ?? DEFAULT_SERVICE), {
    timestamp: to.getTime(),
    properties: { ModelVersion: version, DriftWindowFrom: from.toISOString() },
    ...(deps.emit ? { emit: deps.emit } : {}),
  });

  const windowIso = { from: from.toISOString(), to: to.toISOString() };
  const reportKey = `${DRIFT_REPORT_PREFIX}model=${deps.modelName}/version=${version}/${keyTimestamp(from)}-${keyTimestamp(to)}.json`;
  const document: DriftReportDocument = {
    generatedAt: now.toISOString(),
    model: { name: deps.modelName, version },
    window: windowIso,
    rows: window.rows,
    status: report.status,
    insufficientData,
    message: insufficientData
      ? `insufficient data: ${window.rows} captured predictions of ${version} in the window, ${thresholds.minRows} needed`
      : `drift ${report.status}: largest PSI ${report.summary.maxPsi?.toFixed(3)} (${report.summary.maxPsiFeature})`,
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
    ? driftNotice(report, {
        model: document.model,
        window: windowIso,
        report: `s3://${deps.outputsBucket}/${reportKey}`,
      })
    : undefined;
  if (notice && deps.notify) await deps.notify(notice);
  return {
    ...(notice ? { notice } : {}),
    model: document.model,
    window: windowIso,
    rows: window.rows,
    skipped: window.skipped,
    status: report.status,
    insufficientData,
    maxPsi: report.summary.maxPsi,
    maxPsiFeature: report.summary.maxPsiFeature,
    reportKey,
    metricLines,
    report,
  };
}
