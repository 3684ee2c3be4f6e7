import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { KeelError } from '#shared/errors.ts';
import {
  changedField,
  countFieldIssues,
  countUnseenCategories,
  type DataQuality,
  describeFieldChange,
  emptyDataQuality,
  FieldDomainChangeError,
  mergeDataQuality,
  unseenCategoryRows,
} from '#shared/etl/data-quality.ts';
import { assertHeader, SchemaChangeError } from '#shared/features/header.ts';
import {
  CATEGORICAL_FIELDS,
  FEATURE_FIELD_NAMES,
  isImputable,
  LABEL_COLUMN,
  type LabeledRecord,
  parseCsvRecord,
  parseLabeledCsvRecord,
} from '#shared/features/index.ts';
import {
  DEFAULT_SERVICE,
  ETL_METRICS,
  FEATURE_DIMENSION,
  serviceDimensions,
} from '#shared/monitoring/metrics.ts';
import { type EmitLine, publishMetrics } from '#shared/monitoring/publish.ts';
import {
  featureDatasetPrefix,
  markDatasetComplete,
  offlineDatasetHeader,
  offlineRow,
  SUCCESS_MARKER,
} from '#shared/offline/features-dataset.ts';
import { recordStoreFields } from '#shared/online-store/fields.ts';
import { createRecordWriter } from '#shared/online-store/store.ts';
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
import { KEYS } from '#shared/resources.ts';

/**
 * The ETL as three steps, the states of the ETL state machine: `planEtl` cuts the raw file into row
 * chunks (byte ranges), `processEtlChunk` validates one chunk and stores its records, offline and online
 * (the Map state runs these in parallel), and `completeEtl` checks the counts and records the fields
 * loaded. `runEtl` runs the same steps in sequence. Every output key derives from the input key and
 * chunk index, so a re-run rewrites the same objects.
 */
export interface EtlDeps {
  readonly s3: S3Client;
  readonly dynamo: DynamoDBDocumentClient;
  readonly rawBucket: string;
  readonly featuresBucket: string;
  readonly onlineTable: string;
  readonly clock?: () => Date;
  /** Where the data-quality metrics go (default: the Powertools metrics console). */
  readonly emit?: EmitLine;
  /** The `service` dimension of those metrics (default `keel`, what the alarms watch). */
  readonly service?: string;
}

/** Publishes ETL data-quality datapoints, timed by the deps' clock. */
function publishEtlMetrics(
  deps: Pick<EtlDeps, 'clock' | 'emit' | 'service'>,
  data: readonly { readonly metricName: string; readonly value: number; readonly feature?: string }[],
  properties: Readonly<Record<string, unknown>>,
): void {
  const dimensions = serviceDimensions(deps.service ?? DEFAULT_SERVICE);
  publishMetrics(
    data.map(({ metricName, value, feature }) => ({
      metricName,
      value,
      unit: 'None',
      dimensions: feature ? { ...dimensions, [FEATURE_DIMENSION]: feature } : dimensions,
    })),
    {
      timestamp: (deps.clock ?? (() => new Date()))().getTime(),
      properties,
      ...(deps.emit ? { emit: deps.emit } : {}),
    },
  );
}

export interface EtlChunk {
  readonly index: number;
  /** Byte range [start, end) of whole lines in the raw object. */
  readonly start: number;
  readonly end: number;
  /** 1-based number of the chunk's first data row (the header is row 0). */
  readonly firstRow: number;
  readonly rows: number;
}

/**
 * What the ETL state machine carries from state to state: the plan without its chunks, and where the
 * chunks and their results are (see shared/pipelines/run-objects.ts). The chunk and finalize tasks
 * parse their input with it.
 */
export const etlRunSchema = z.object({
  inputKey: z.string().min(1),
  runDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  header: z.string().min(1),
  labeled: z.boolean(),
  totalRows: z.number().int().min(0),
  featurePrefix: z.string().min(1),
  ...runObjectsSchema.shape,
});
export type EtlRun = z.infer<typeof etlRunSchema>;

/** The whole plan, written to the features bucket: the run's scalars and every chunk. */
export type EtlPlan = Omit<EtlRun, keyof RunObjects> & { readonly chunks: EtlChunk[] };

export interface EtlChunkResult {
  readonly index: number;
  readonly rows: number;
  readonly valid: number;
  readonly quarantined: number;
  readonly onlineWritten: number;
  readonly featureKey: string;
  readonly quarantineKey: string | null;
  readonly quality: DataQuality;
  /** Valid rows without a value of each imputable field (stored without it, imputed by the features). */
  readonly imputed: Record<string, number>;
}

export interface EtlReport {
  readonly inputKey: string;
  readonly runDate: string;
  readonly rowsRead: number;
  readonly valid: number;
  readonly quarantined: number;
  readonly onlineWritten: number;
  readonly labeled: boolean;
  readonly featurePrefix: string;
  readonly featureParts: string[];
  readonly quarantineKeys: string[];
  /** The bad rows by the field they failed, and the category values the model never saw. */
  readonly quality: DataQuality;
  /**
   * Per imputable field of the raw schema, the valid rows without a value (its column absent, or the
   * cell empty): stored without it, the feature definitions impute it.
   */
  readonly imputed: Record<string, number>;
}

/** More bad rows than the run allows; `details` holds the report. */
export class BadRowShareError extends KeelError {
  readonly code = 'ValidationError';
}

/** The plan would have more chunks than a run may have; a larger `chunkRows` makes fewer. */
export class TooManyChunksError extends KeelError {
  readonly code = 'ValidationError';
}

/** The stores disagree with the input: a write was lost. */
export class EtlCountMismatchError extends KeelError {
  readonly code = 'Internal';
}

/** The newest raw CSV in the raw bucket (keys are time-ordered), or undefined when there is none. */
export async function newestRawKey(s3: S3Client, bucket: string): Promise<string | undefined> {
  let newest: string | undefined;
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: KEYS.rawPrefix, ContinuationToken }),
    );
    for (const { Key } of page.Contents ?? []) {
      if (Key?.endsWith('.csv') && (newest === undefined || Key > newest)) newest = Key;
    }
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  return newest;
}

const NEWLINE = 0x0a;
export const DEFAULT_CHUNK_ROWS = 100_000;
/**
 * The most chunks an ETL run may have: 200M rows at the default chunk size (the capacity plan needs 1,000
 * for 100M customers). The bound is the execution history, not the state: the ETL's Map is inline, so
 * each chunk adds about 7 events to the run's 25,000 (see docs/capacity-and-cost.md).
 */
export const MAX_ETL_CHUNKS = 2_000;

/**
 * The header line's columns, checked against the raw record's ({@link SchemaChangeError} when they differ).
 * A byte-order mark (spreadsheet exports) is not part of the first column's name.
 */
function checkedHeader(
  deps: Pick<EtlDeps, 'clock' | 'emit' | 'service'>,
  source: string,
  headerBytes: readonly Buffer[],
): string {
  const header = Buffer.concat(headerBytes)
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r$/, '');
  // Every check counts, a match as 0: the schema-change alarm clears with the next good file.
  const publish = (changed: number) =>
    publishEtlMetrics(deps, [{ metricName: ETL_METRICS.schemaChanges, value: changed }], { RawFile: source });
  try {
    assertHeader(source, header.split(','));
  } catch (error) {
    if (error instanceof SchemaChangeError) publish(1);
    throw error;
  }
  publish(0);
  return header;
}

/**
 * One streaming pass over the raw object that records the byte offset of every `chunkRows`-th line.
 * Raw customer fields never contain line breaks, so lines are rows.
 */
export async function planEtl(
  deps: Pick<EtlDeps, 's3' | 'rawBucket' | 'clock' | 'emit' | 'service'>,
  options: { inputKey: string; runDate?: string; chunkRows?: number; maxChunks?: number },
): Promise<EtlPlan> {
  const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
  const runDate = options.runDate ?? (deps.clock ?? (() => new Date()))().toISOString().slice(0, 10);
  const source = `s3://${deps.rawBucket}/${options.inputKey}`;
  const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.rawBucket, Key: options.inputKey }));
  let offset = 0;
  let header: string | undefined;
  const headerBytes: Buffer[] = [];
  let headerEnd = -1;
  let lines = 0;
  let chunkStart = -1;
  let lastByte = NEWLINE;
  const chunks: EtlChunk[] = [];
  for await (const piece of object.Body as Readable) {
    const bytes = piece as Buffer;
    for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) {
      const lineEnd = offset + i + 1;
      if (headerEnd === -1) {
        headerBytes.push(bytes.subarray(0, i));
        headerEnd = lineEnd;
        chunkStart = lineEnd;
        // Before any row: a changed header fails every row the same way, so the run stops here.
        header = checkedHeader(deps, source, headerBytes);
        headerBytes.length = 0;
        continue;
      }
      lines++;
      if (lines % chunkRows === 0) {
        chunks.push({
          index: chunks.length,
          start: chunkStart,
          end: lineEnd,
          firstRow: lines - chunkRows + 1,
          rows: chunkRows,
        });
        chunkStart = lineEnd;
      }
    }
    if (headerEnd === -1) headerBytes.push(bytes);
    offset += bytes.byteLength;
    if (bytes.byteLength > 0) lastByte = bytes[bytes.byteLength - 1]!;
  }
  if (headerEnd === -1 && offset > 0) {
    headerEnd = offset; // a header line without a newline, and no rows
    chunkStart = offset;
    header = checkedHeader(deps, source, headerBytes);
  }
  if (header === undefined) throw new BadRowShareError(`${source} has no header line`);
  if (lastByte !== NEWLINE && offset > chunkStart) lines++; // a last line without a newline
  const rowsInTail = lines - chunks.length * chunkRows;
  if (rowsInTail > 0) {
    chunks.push({
      index: chunks.length,
      start: chunkStart,
      end: offset,
      firstRow: lines - rowsInTail + 1,
      rows: rowsInTail,
    });
  }
  const maxChunks = options.maxChunks ?? MAX_ETL_CHUNKS;
  if (chunks.length > maxChunks) {
    throw new TooManyChunksError(
      `s3://${deps.rawBucket}/${options.inputKey} has ${lines} rows: ${chunks.length} chunks of ${chunkRows}, ` +
        `more than the ${maxChunks} a run may have; give chunkRows of at least ${Math.ceil(lines / maxChunks)}`,
    );
  }
  return {
    inputKey: options.inputKey,
    runDate,
    header,
    labeled: header.split(',').includes(LABEL_COLUMN),
    totalRows: lines,
    featurePrefix: featureDatasetPrefix(options.inputKey, runDate),
    chunks,
  };
}

/** One line of a chunk: its cells keyed by column, or why it is not a row. */
export type CsvLine = { readonly row: Record<string, string> } | { readonly reason: string };

/**
 * The lines of a chunk, one result per line (the planner's rows), so that a malformed line (an unclosed
 * quote, a wrong cell count, nothing at all) is one bad row with its own number instead of an error
 * that fails the chunk or shifts every row number after it. Quoted cells are fine within a line.
 */
export async function* readCsvLines(body: Readable, columns: readonly string[]): AsyncGenerator<CsvLine> {
  for await (const line of createInterface({ input: body, crlfDelay: Number.POSITIVE_INFINITY })) {
    let cells: string[];
    if (line === '') {
      yield { reason: 'row: empty line' };
      continue;
    }
    if (!line.includes('"')) cells = line.split(',');
    else {
      try {
        cells = (parse(line, { relax_quotes: true }) as string[][])[0] ?? [];
      } catch (error) {
        yield { reason: `row: ${(error as Error).message}` };
        continue;
      }
    }
    if (cells.length !== columns.length) {
      yield { reason: `row: ${cells.length} cells, the header has ${columns.length}` };
      continue;
    }
    yield { row: Object.fromEntries(columns.map((column, i) => [column, cells[i]!])) };
  }
}

const pad = (n: number) => String(n).padStart(5, '0');
/** The raw fields a file may lack (their policy imputes them). */
const IMPUTABLE_FIELDS = FEATURE_FIELD_NAMES.filter(isImputable);
const noneImputed = () => Object.fromEntries(IMPUTABLE_FIELDS.map((field) => [field, 0]));
/** How much of the feature part a chunk gathers before handing it to the upload. */
const LINES_FLUSH_CHARS = 64 * 1024;

export function quarantinePrefix(plan: Pick<EtlPlan, 'runDate' | 'featurePrefix'>): string {
  return `quarantine/run_date=${plan.runDate}/${plan.featurePrefix.split('/').at(-2)}/`;
}

/**
 * Validates one chunk's rows, writes its part of the offline dataset (the valid raw records), its
 * quarantine part and its online items.
 */
export async function processEtlChunk(
  deps: EtlDeps,
  plan: Omit<EtlPlan, 'chunks' | 'totalRows'>,
  chunk: EtlChunk,
): Promise<EtlChunkResult> {
  const featureKey = `${plan.featurePrefix}part-${pad(chunk.index)}.csv`;
  const quarantine: string[] = [];
  const quality = emptyDataQuality();
  const imputed = noneImputed();
  // The store's writes and the feature part's upload go on while the next rows are read: the chunk
  // holds a few batches and a part's worth of lines, not its rows.
  const online = createRecordWriter({ dynamo: deps.dynamo, table: deps.onlineTable });
  const features = createObjectStream(deps.s3, {
    bucket: deps.featuresBucket,
    key: featureKey,
    contentType: 'text/csv',
  });
  let lines = `${offlineDatasetHeader(plan.labeled)}\n`;
  let valid = 0;
  let rows = 0;
  const readChunk = async () => {
    if (chunk.end <= chunk.start) return;
    const object = await deps.s3.send(
      new GetObjectCommand({
        Bucket: deps.rawBucket,
        Key: plan.inputKey,
        Range: `bytes=${chunk.start}-${chunk.end - 1}`,
      }),
    );
    // A customer appears once per chunk: a batch write with the same key twice is refused by DynamoDB.
    const firstRowOf = new Map<string, number>();
    for await (const line of readCsvLines(object.Body as Readable, plan.header.split(','))) {
      const rowNumber = chunk.firstRow + rows;
      rows++;
      if ('reason' in line) {
        quarantine.push(JSON.stringify({ row: rowNumber, reason: [line.reason] }));
        continue;
      }
      const { row } = line;
      const parsed = plan.labeled ? parseLabeledCsvRecord(row) : parseCsvRecord(row);
      const first = parsed.success ? firstRowOf.get(parsed.data.customer_id) : undefined;
      if (!parsed.success || first !== undefined) {
        let reason = [`customer_id: duplicate of row ${first}`];
        if (!parsed.success) {
          const issues = parsed.error.issues.map((issue) => ({
            path: issue.path.join('.'),
            message: issue.message,
          }));
          countFieldIssues(quality, issues, row);
          reason = issues.map((issue) => `${issue.path || 'row'}: ${issue.message}`);
        }
        quarantine.push(JSON.stringify({ row: rowNumber, reason, raw: row }));
        continue;
      }
      firstRowOf.set(parsed.data.customer_id, rowNumber);
      const record = parsed.data as LabeledRecord;
      countUnseenCategories(quality, record);
      for (const field of IMPUTABLE_FIELDS) if (record[field] === undefined) imputed[field]!++;
      lines += `${offlineRow(record, plan.labeled)}\n`;
      valid++;
      if (lines.length >= LINES_FLUSH_CHARS) {
        await features.write(lines);
        lines = '';
      }
      const { churned: _label, ...raw } = record;
      const room = online.write(raw);
      if (room) await room;
    }
  };
  let onlineWritten: number;
  try {
    await readChunk();
    await features.write(lines);
    // The feature part appears only once the chunk's online items are in.
    onlineWritten = await online.close();
    await features.end();
  } catch (error) {
    await features.abort(error as Error);
    throw error;
  }
  let quarantineKey: string | null = null;
  if (quarantine.length > 0) {
    quarantineKey = `${quarantinePrefix(plan)}part-${pad(chunk.index)}.jsonl`;
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.featuresBucket,
        Key: quarantineKey,
        Body: `${quarantine.join('\n')}\n`,
        ContentType: 'application/x-ndjson',
      }),
    );
  }
  return {
    index: chunk.index,
    rows,
    valid,
    quarantined: quarantine.length,
    onlineWritten,
    featureKey,
    quarantineKey,
    quality,
    imputed,
  };
}

/** Adds up the chunks and fails the run when rows went missing or too many were bad. */
export function finalizeEtl(
  plan: Omit<EtlPlan, 'chunks'>,
  results: readonly EtlChunkResult[],
  options: { maxBadRowShare?: number; featuresBucket: string },
): EtlReport {
  const maxBadRowShare = options.maxBadRowShare ?? 0.01;
  const sorted = [...results].sort((a, b) => a.index - b.index);
  const sum = (pick: (r: EtlChunkResult) => number) => sorted.reduce((total, r) => total + pick(r), 0);
  const report: EtlReport = {
    inputKey: plan.inputKey,
    runDate: plan.runDate,
    rowsRead: sum((r) => r.rows),
    valid: sum((r) => r.valid),
    quarantined: sum((r) => r.quarantined),
    onlineWritten: sum((r) => r.onlineWritten),
    labeled: plan.labeled,
    featurePrefix: plan.featurePrefix,
    featureParts: sorted.map((r) => r.featureKey),
    quarantineKeys: sorted.flatMap((r) => (r.quarantineKey ? [r.quarantineKey] : [])),
    quality: mergeDataQuality(sorted.map((r) => r.quality)),
    imputed: Object.fromEntries(IMPUTABLE_FIELDS.map((field) => [field, sum((r) => r.imputed[field] ?? 0)])),
  };
  if (report.rowsRead !== plan.totalRows || report.onlineWritten !== report.valid) {
    throw new EtlCountMismatchError(
      `read ${report.rowsRead} of ${plan.totalRows} rows and wrote ${report.onlineWritten} online items for ${report.valid} valid rows`,
      { details: report },
    );
  }
  if (report.rowsRead === 0 || report.quarantined / report.rowsRead > maxBadRowShare) {
    const quarantined = `see s3://${options.featuresBucket}/${quarantinePrefix(plan)}`;
    const field = changedField(report.quality, report.rowsRead);
    if (field) {
      throw new FieldDomainChangeError(`${describeFieldChange(field, report.rowsRead)}; ${quarantined}`, {
        details: report,
      });
    }
    throw new BadRowShareError(
      `${report.quarantined} of ${report.rowsRead} rows are bad (allowed share ${maxBadRowShare}); ${quarantined}`,
      { details: report },
    );
  }
  return report;
}

export interface EtlOptions {
  readonly inputKey: string;
  readonly runDate?: string;
  readonly maxBadRowShare?: number;
  readonly chunkRows?: number;
  readonly onProgress?: (rowsDone: number, totalRows: number) => void;
}

/** The three steps in sequence, in this process (tests and tools; the state machine runs them in AWS). */
export async function runEtl(deps: EtlDeps, options: EtlOptions): Promise<EtlReport> {
  const plan = await planEtl(deps, options);
  const results: EtlChunkResult[] = [];
  for (const chunk of plan.chunks) {
    results.push(await processEtlChunk(deps, plan, chunk));
    options.onProgress?.(
      results.reduce((n, r) => n + r.rows, 0),
      plan.totalRows,
    );
  }
  return completeEtl(deps, plan, results, options.maxBadRowShare);
}

/** The raw fields a file's header carries: what a run loads into the store. */
const loadedFields = (header: string) => {
  const columns = header.split(',');
  return FEATURE_FIELD_NAMES.filter((field) => columns.includes(field));
};

/**
 * {@link finalizeEtl}; then, once per run, the fields it loaded into the store-fields manifest (what
 * promotions check a version's fields against), and last the success marker that makes the dataset
 * visible to training.
 */
export async function completeEtl(
  deps: Pick<EtlDeps, 's3' | 'featuresBucket' | 'clock' | 'emit' | 'service'>,
  plan: Omit<EtlPlan, 'chunks'>,
  results: readonly EtlChunkResult[],
  maxBadRowShare?: number,
): Promise<EtlReport> {
  const report = finalizeEtl(plan, results, { maxBadRowShare, featuresBucket: deps.featuresBucket });
  const unseen = unseenCategoryRows(report.quality);
  publishEtlMetrics(
    deps,
    [
      ...CATEGORICAL_FIELDS.map((feature) => ({
        metricName: ETL_METRICS.unseenCategoryShare,
        value: unseen[feature] / report.rowsRead,
        feature,
      })),
      // Over valid rows (only they are stored); none valid leaves no share to report.
      ...(report.valid === 0
        ? []
        : IMPUTABLE_FIELDS.map((feature) => ({
            metricName: ETL_METRICS.imputedShare,
            value: report.imputed[feature]! / report.valid,
            feature,
          }))),
    ],
    { InputKey: plan.inputKey, RunDate: plan.runDate },
  );
  const at = (deps.clock ?? (() => new Date()))();
  await recordStoreFields(deps.s3, deps.featuresBucket, loadedFields(plan.header), at);
  await markDatasetComplete(deps.s3, deps.featuresBucket, plan.featurePrefix, report);
  return report;
}

/** The plan step's output: the run, and the chunk numbers the Map state iterates over. */
export interface EtlRunPlan {
  readonly run: EtlRun;
  readonly items: number[];
}

/** The ETL state machine's output: the report without its lists, which its manifest (`_SUCCESS.json`) keeps. */
export type EtlRunSummary = Omit<EtlReport, 'featureParts' | 'quarantineKeys'> & {
  readonly featurePartCount: number;
  readonly quarantinePartCount: number;
  readonly manifestKey: string;
};

const readEtlPlan = planReader<EtlPlan>();

/** What of a plan the state machine carries; derived from the dataset's prefix, so a re-run rewrites the same objects. */
export const etlRunOf = (plan: EtlPlan): EtlRunPlan =>
  runPlanOf(
    plan,
    'chunks',
    `${KEYS.etlRunsPrefix}run_date=${plan.runDate}/${plan.featurePrefix.split('/').at(-2)}/`,
  );

/** The plan step of the state machine: {@link planEtl}, with the plan written to the features bucket. */
export async function planEtlRun(
  deps: Pick<EtlDeps, 's3' | 'rawBucket' | 'featuresBucket' | 'clock' | 'emit' | 'service'>,
  options: { inputKey: string; runDate?: string; chunkRows?: number },
): Promise<EtlRunPlan> {
  const plan = await planEtl(deps, options);
  const runPlan = etlRunOf(plan);
  await putJson(deps.s3, deps.featuresBucket, runPlan.run.planKey, plan);
  return runPlan;
}

/** One Map item: chunk `index` of the run's plan, its result written beside the plan. */
export async function processEtlRunChunk(deps: EtlDeps, run: EtlRun, index: number): Promise<EtlChunkResult> {
  const plan = await readEtlPlan(deps.s3, deps.featuresBucket, run.planKey);
  const chunk = plan.chunks[index];
  if (!chunk) throw new Error(`the plan ${run.planKey} has no chunk ${index} (it has ${plan.chunks.length})`);
  const result = await processEtlChunk(deps, plan, chunk);
  await putJson(deps.s3, deps.featuresBucket, resultKey(run, index), result);
  return result;
}

/** The finalize step: every chunk's result, read back, then {@link completeEtl}; returns the summary. */
export async function completeEtlRun(
  deps: Pick<EtlDeps, 's3' | 'featuresBucket' | 'clock' | 'emit' | 'service'>,
  run: EtlRun,
  maxBadRowShare?: number,
): Promise<EtlRunSummary> {
  const results = await getResults<EtlChunkResult>(
    deps.s3,
    deps.featuresBucket,
    run,
    (index) => new EtlCountMismatchError(`chunk ${index} of ${run.itemCount} left no result`),
  );
  return summarizeEtlReport(await completeEtl(deps, run, results, maxBadRowShare));
}

export function summarizeEtlReport(report: EtlReport): EtlRunSummary {
  const { featureParts, quarantineKeys, ...rest } = report;
  return {
    ...rest,
    featurePartCount: featureParts.length,
    quarantinePartCount: quarantineKeys.length,
    manifestKey: `${report.featurePrefix}${SUCCESS_MARKER}`,
  };
}
