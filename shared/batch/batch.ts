import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { NoModelError, ValidationError } from '#shared/errors.ts';
import { planEtl, readCsvLines } from '#shared/etl/etl.ts';
import { parseCsvRecord, parseLabeledCsvRecord, type RawRecord } from '#shared/features/index.ts';
import {
  batchCaptureLine,
  CAPTURE_CONTENT_TYPE,
  captureHourPrefix,
  captureObjectKey,
} from '#shared/inference/capture.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { fromItem, type Item } from '#shared/online-store/items.ts';
import { createObjectStream } from '#shared/pipelines/object-stream.ts';
import {
  getResults,
  planReader,
  putJson,
  type RunObjects,
  resultKey,
  runObjectsSchema,
  runPlanOf,
} from '#shared/pipelines/run-objects.ts';
import { getChampion, loadVerifiedModel, type RegistryDeps } from '#shared/registry/registry.ts';
import { KEYS } from '#shared/resources.ts';

/**
 * Batch scoring as the states of its state machine: `planBatch` pins the champion version and splits the
 * online store into parallel-scan segments, `scoreSegment` scores one segment (a Distributed Map item in
 * AWS), `finalizeBatch` adds up the counts and writes the manifest. Segments partition the table, so
 * every customer is scored exactly once, by the same model version, with the feature definition that
 * version was trained on (whatever this code defines).
 */
/** One Distributed Map item: a parallel-scan segment of the store, or a byte range of an input file. */
export interface BatchSegment {
  readonly segment: number;
  readonly start?: number;
  readonly end?: number;
  readonly firstRow?: number;
}

export interface BatchDeps {
  readonly registry: RegistryDeps;
  readonly dynamo: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly onlineTable: string;
  readonly outputsBucket: string;
  /** Where a given input file is read from. */
  readonly rawBucket: string;
  /**
   * Prediction capture for the drift job: the share of scored rows written as capture records
   * (`source: 'batch'`) to the outputs bucket's capture prefix, as the API captures its predictions.
   *
   * @default - none: nothing is captured
   */
  readonly capture?: { readonly sampleRate: number; readonly random?: () => number };
  readonly clock?: () => Date;
}

/**
 * The most segments (store segments, or byte ranges of a given file) a batch run may have. The
 * Distributed Map runs each as a child execution, so the bound is the state: the item numbers the plan
 * step returns (about 49 KB at this size) must stay well under Step Functions' 256 KiB.
 */
export const MAX_BATCH_SEGMENTS = 10_000;

/**
 * What the batch state machine carries from state to state: the plan without its segments, and where
 * the segments (for a given file) and their results are (see shared/pipelines/run-objects.ts). The
 * score and finalize tasks parse their input with it.
 */
export const batchRunSchema = z.object({
  runId: z.string().min(1),
  runDate: z.string(),
  model: z.object({ name: z.string(), version: z.string(), threshold: z.number() }),
  /** The pinned version's feature definition, which every row is encoded with and stamped with. */
  featureSet: z.object({ version: z.string(), fingerprint: z.string() }),
  outputPrefix: z.string().min(1),
  totalSegments: z.number().int().min(1).max(MAX_BATCH_SEGMENTS),
  /** Score the rows of this raw CSV instead of the online store. */
  input: z.object({ key: z.string().min(1), header: z.string().min(1), labeled: z.boolean() }).optional(),
  ...runObjectsSchema.shape,
  itemCount: z.number().int().min(1).max(MAX_BATCH_SEGMENTS),
});
export type BatchRun = z.infer<typeof batchRunSchema>;

/** The whole plan, written to the outputs bucket: the run's scalars and every segment. */
export type BatchPlan = Omit<BatchRun, keyof RunObjects> & { readonly segments: BatchSegment[] };

export interface SegmentResult {
  readonly segment: number;
  readonly rows: number;
  readonly positives: number;
  readonly skipped: number;
  readonly key: string;
}

export interface BatchReport {
  readonly runId: string;
  readonly model: BatchPlan['model'];
  readonly featureSet: { readonly version: string; readonly fingerprint: string };
  readonly rows: number;
  readonly positives: number;
  readonly positiveRate: number;
  readonly skipped: number;
  readonly parts: string[];
  readonly manifestKey: string;
}

export const PREDICTIONS_HEADER =
  'customer_id,probability,prediction,model_version,feature_fingerprint,event_time';

export async function planBatch(
  deps: BatchDeps,
  options: { name: string; segments?: number; runId?: string; inputKey?: string; chunkRows?: number },
): Promise<BatchPlan> {
  const version = await getChampion(deps.registry, options.name);
  if (!version) throw new NoModelError(`no ${options.name} model is promoted: nothing to score with`);
  const { metadata, featureSet } = await loadVerifiedModel(deps.registry, {
    name: options.name,
    version,
  });
  const now = (deps.clock ?? (() => new Date()))();
  const runDate = now.toISOString().slice(0, 10);
  const runId =
    options.runId ?? `${now.toISOString().replace(/[-:.]/g, '').slice(0, 15)}Z-${randomUUID().slice(0, 8)}`;
  const common = {
    runId,
    runDate,
    model: { name: options.name, version, threshold: metadata.threshold },
    featureSet: { version: featureSet.version, fingerprint: featureSet.fingerprint },
    outputPrefix: `predictions/run_date=${runDate}/${runId}/`,
  };
  if (options.inputKey) {
    // The same cut into whole-line byte ranges as the ETL plan, one range per Map item.
    const file = await planEtl(
      { s3: deps.s3, rawBucket: deps.rawBucket },
      { inputKey: options.inputKey, chunkRows: options.chunkRows, maxChunks: MAX_BATCH_SEGMENTS },
    );
    return {
      ...common,
      totalSegments: file.chunks.length,
      segments: file.chunks.map((c) => ({
        segment: c.index,
        start: c.start,
        end: c.end,
        firstRow: c.firstRow,
      })),
      input: { key: file.inputKey, header: file.header, labeled: file.labeled },
    };
  }
  const totalSegments = options.segments ?? 4;
  if (!Number.isInteger(totalSegments) || totalSegments < 1 || totalSegments > MAX_BATCH_SEGMENTS) {
    throw new ValidationError(`segments must be an integer from 1 to ${MAX_BATCH_SEGMENTS}`, [
      { path: 'segments', message: `got ${totalSegments}` },
    ]);
  }
  return {
    ...common,
    totalSegments,
    segments: Array.from({ length: totalSegments }, (_, segment) => ({ segment })),
  };
}

const SCAN_PAGE = 1000;

/** Pages of records of one segment: a parallel scan of the store, or a byte range of the input file. */
async function* segmentRecords(
  deps: BatchDeps,
  plan: BatchPlan,
  segment: BatchSegment,
): AsyncGenerator<{ records: RawRecord[]; invalid: number }> {
  if (plan.input) {
    if (segment.start === undefined || segment.end === undefined)
      throw new Error(`segment ${segment.segment} has no byte range`);
    if (segment.end <= segment.start) return;
    const object = await deps.s3.send(
      new GetObjectCommand({
        Bucket: deps.rawBucket,
        Key: plan.input.key,
        Range: `bytes=${segment.start}-${segment.end - 1}`,
      }),
    );
    let page: RawRecord[] = [];
    let invalid = 0;
    // Line by line, as the ETL reads: a malformed line is one skipped row, never a failed segment.
    for await (const line of readCsvLines(object.Body as Readable, plan.input.header.split(','))) {
      const { labeled } = plan.input;
      const parsed =
        'row' in line ? (labeled ? parseLabeledCsvRecord(line.row) : parseCsvRecord(line.row)) : undefined;
      if (!parsed?.success) {
        invalid++;
        continue;
      }
      const { churned: _label, ...record } = parsed.data as RawRecord & { churned?: number };
      page.push(record);
      if (page.length === SCAN_PAGE) {
        yield { records: page, invalid };
        page = [];
        invalid = 0;
      }
    }
    yield { records: page, invalid };
    return;
  }
  let ExclusiveStartKey: Item | undefined;
  do {
    const page = await deps.dynamo.send(
      new ScanCommand({
        TableName: deps.onlineTable,
        Segment: segment.segment,
        TotalSegments: plan.totalSegments,
        Limit: SCAN_PAGE,
        ExclusiveStartKey,
      }),
    );
    yield { records: (page.Items ?? []).map((item) => fromItem(item) as RawRecord), invalid: 0 };
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
}

/**
 * The next page is asked for as soon as the current one arrives, so the store reads it while this one
 * is scored: two pages in memory, never more.
 */
async function* readAhead<T>(pages: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = pages[Symbol.asyncIterator]();
  let next = iterator.next();
  try {
    for (let page = await next; !page.done; page = await next) {
      next = iterator.next();
      yield page.value;
    }
  } finally {
    // Stopped early: the page asked for is not wanted, nor its failure.
    next.catch(() => undefined);
    await iterator.return?.();
  }
}

export async function scoreSegment(
  deps: BatchDeps,
  plan: BatchPlan,
  segment: BatchSegment,
): Promise<SegmentResult> {
  const verified = await loadVerifiedModel(deps.registry, {
    name: plan.model.name,
    version: plan.model.version,
  });
  const { featureSet } = verified;
  const scorer = await loadOnnxScorer(verified.onnx, {
    featureCount: featureSet.count,
    featureNames: featureSet.names,
  });
  const key = `${plan.outputPrefix}part-${String(segment.segment).padStart(5, '0')}.csv`;
  const sampleRate = deps.capture?.sampleRate ?? 0;
  const random = deps.capture?.random ?? Math.random;
  const scoredAt = (deps.clock ?? (() => new Date()))();
  // Both objects are written as the pages are scored, so a segment holds a page, not its output.
  const predictions = createObjectStream(deps.s3, {
    bucket: deps.outputsBucket,
    key,
    contentType: 'text/csv',
  });
  // Every record has the segment's time: one capture object of that hour.
  const captures =
    sampleRate > 0
      ? createObjectStream(deps.s3, {
          bucket: deps.outputsBucket,
          key: captureObjectKey(captureHourPrefix(plan.model.name, scoredAt), scoredAt),
          contentType: CAPTURE_CONTENT_TYPE,
        })
      : undefined;
  const captureLine = captures
    ? batchCaptureLine({ at: scoredAt, requestId: plan.runId, model: plan.model })
    : undefined;
  let rows = 0;
  let positives = 0;
  let skipped = 0;
  let captured = 0;
  const width = featureSet.count;
  const x = new Float32Array(SCAN_PAGE * width);
  try {
    await predictions.write(`${PREDICTIONS_HEADER}\n`);
    for await (const { records, invalid } of readAhead(segmentRecords(deps, plan, segment))) {
      skipped += invalid;
      const scored: RawRecord[] = [];
      for (const record of records) {
        // Every attribute of a stored item reaches the definition, fields this code does not know included.
        if (featureSet.encodeInto(record, x, scored.length * width) !== undefined) {
          skipped++;
          continue;
        }
        scored.push(record);
      }
      const probabilities = await scorer.scoreBatch(x.subarray(0, scored.length * width), scored.length);
      let lines = '';
      let captureLines = '';
      scored.forEach((record, i) => {
        const probability = probabilities[i]!;
        const prediction = probability >= plan.model.threshold ? 1 : 0;
        positives += prediction;
        lines += `${record.customer_id},${probability},${prediction},${plan.model.version},${featureSet.fingerprint},${record.event_time}\n`;
        if (captureLine && (sampleRate >= 1 || random() < sampleRate)) {
          captureLines += captureLine({
            customerId: record.customer_id,
            probability,
            prediction,
            vector: x.subarray(i * width, (i + 1) * width),
            storedEventTime: record.event_time,
          });
          captured++;
        }
      });
      rows += scored.length;
      await Promise.all([predictions.write(lines), captureLines ? captures?.write(captureLines) : undefined]);
    }
    await predictions.end();
  } catch (error) {
    await Promise.all([predictions.abort(error as Error), captures?.abort(error as Error)]);
    throw error;
  } finally {
    await scorer.release();
  }
  // After the predictions: a retried segment rewrites its part, and its captures only once it got here.
  if (captures) {
    if (captured > 0) await captures.end();
    else await captures.abort(new Error('nothing was sampled'));
  }
  return { segment: segment.segment, rows, positives, skipped, key };
}

export async function finalizeBatch(
  deps: Pick<BatchDeps, 's3' | 'outputsBucket'>,
  plan: BatchPlan,
  results: readonly SegmentResult[],
): Promise<BatchReport> {
  const sorted = [...results].sort((a, b) => a.segment - b.segment);
  const missing = plan.segments.filter(({ segment }) => !sorted.some((r) => r.segment === segment));
  if (missing.length > 0)
    throw new Error(`segments ${missing.map((m) => m.segment).join(', ')} produced no result`);
  const rows = sorted.reduce((n, r) => n + r.rows, 0);
  const positives = sorted.reduce((n, r) => n + r.positives, 0);
  const manifestKey = `${plan.outputPrefix}_manifest.json`;
  const report: BatchReport = {
    runId: plan.runId,
    model: plan.model,
    featureSet: plan.featureSet,
    rows,
    positives,
    positiveRate: rows === 0 ? 0 : positives / rows,
    skipped: sorted.reduce((n, r) => n + r.skipped, 0),
    parts: sorted.map((r) => r.key),
    manifestKey,
  };
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.outputsBucket,
      Key: manifestKey,
      Body: JSON.stringify(report, null, 2),
      ContentType: 'application/json',
    }),
  );
  return report;
}

/** The plan step's output: the run, and the segment numbers the Distributed Map iterates over. */
export interface BatchRunPlan {
  readonly run: BatchRun;
  readonly items: number[];
}

/** The batch state machine's output: the report without its parts, which its manifest keeps. */
export type BatchRunSummary = Omit<BatchReport, 'parts'> & { readonly partCount: number };

const readBatchPlan = planReader<BatchPlan>();

/** What of a plan the state machine carries. */
export const batchRunOf = (plan: BatchPlan): BatchRunPlan =>
  runPlanOf(plan, 'segments', `${KEYS.batchRunsPrefix}${plan.runId}/`);

/** The plan step of the state machine: {@link planBatch}, with the plan written to the outputs bucket. */
export async function planBatchRun(
  deps: BatchDeps,
  options: Parameters<typeof planBatch>[1],
): Promise<BatchRunPlan> {
  const plan = await planBatch(deps, options);
  const runPlan = batchRunOf(plan);
  await putJson(deps.s3, deps.outputsBucket, runPlan.run.planKey, plan);
  return runPlan;
}

/** One Map item: segment `index` of the run's plan, its result written beside the plan. */
export async function scoreBatchRunSegment(
  deps: BatchDeps,
  run: BatchRun,
  index: number,
): Promise<SegmentResult> {
  // A store segment is its number; only a byte range of a given file needs the plan.
  const segment = run.input
    ? (await readBatchPlan(deps.s3, deps.outputsBucket, run.planKey)).segments[index]
    : { segment: index };
  if (!segment) throw new Error(`the plan ${run.planKey} has no segment ${index}`);
  const result = await scoreSegment(deps, { ...run, segments: [] }, segment);
  await putJson(deps.s3, deps.outputsBucket, resultKey(run, index), result);
  return result;
}

/** The finalize step: every segment's result, read back, then {@link finalizeBatch}; returns the summary. */
export async function completeBatchRun(
  deps: Pick<BatchDeps, 's3' | 'outputsBucket'>,
  run: BatchRun,
): Promise<BatchRunSummary> {
  const results = await getResults<SegmentResult>(
    deps.s3,
    deps.outputsBucket,
    run,
    (index) => new Error(`segment ${index} of ${run.itemCount} produced no result`),
  );
  // Every result is there (else getResults failed): the plan's segments are the results' segments.
  const segments = results.map(({ segment }) => ({ segment }));
  const report = await finalizeBatch(deps, { ...run, segments }, results);
  return summarizeBatchReport(report);
}

export function summarizeBatchReport(report: BatchReport): BatchRunSummary {
  const { parts, ...rest } = report;
  return { ...rest, partCount: parts.length };
}
