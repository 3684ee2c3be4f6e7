import type { S3Client } from '@aws-sdk/client-s3';
import { csvLineWriter, LABEL_COLUMN, type LabeledRecord, OUTCOME_COLUMNS } from '#shared/features/index.ts';
import { createObjectStream } from '#shared/pipelines/object-stream.ts';
import { KEYS, keyTimestamp } from '#shared/resources.ts';
import {
  type GeneratedOutcome,
  type GenerateOptions,
  generatedColumns,
  generateOutcomes,
  generateRecords,
  type OutcomeOptions,
  validateGenerateOptions,
  validateOutcomeOptions,
} from './generate.ts';

/** What every generated file's summary says: where it went, its customers and their labels. */
interface GeneratedFileSummary {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  /** The first and last customer ids written. */
  readonly customerIds: CustomerIdRange;
  readonly churnRate: number;
  /** The F of the labels' concept shift; null for labels of the unshifted relation. */
  readonly conceptShift: number | null;
}

/** Summary of a generated customers file, for the CLI and for tests that check the distribution. */
export interface RawDataSummary extends GeneratedFileSummary {
  readonly meanIncome: number;
  readonly zeroOrderShare: number;
}

export type ProgressListener = (rowsDone: number) => void;

export interface CustomerIdRange {
  readonly first: string;
  readonly last: string;
}

/** Notes the first and last customer id of the rows written. */
function idRangeTally() {
  const range = { first: '', last: '' };
  return {
    range: range as CustomerIdRange,
    see(id: string) {
      if (!range.first) range.first = id;
      range.last = id;
    },
  };
}

/** What a generated file's key says of it: rows, seed, first id, drift and shift (the customers it is about). */
function generatedName(options: Omit<GenerateOptions, 'asOf'>): string {
  const drift = Object.entries(options.drift ?? {})
    .map(([field, factor]) => `-drift-${field}-${factor}`)
    .join('');
  const firstId = (options.firstId ?? 1) === 1 ? '' : `-first${options.firstId}`;
  const shift = options.conceptShift === undefined ? '' : `-shift-${options.conceptShift}`;
  return `n${options.rows}-s${options.seed}${firstId}${drift}${shift}`;
}

/** Time-ordered, self-describing key: the newest file sorts last. */
export function rawDataKey(options: GenerateOptions, createdAt: Date): string {
  return `${KEYS.rawPrefix}${keyTimestamp(createdAt)}-${generatedName(options)}.csv`;
}

/** The outcome file of the customers of `rawDataKey` with the same options, under `outcomes/`. */
export function outcomesKey(options: OutcomeOptions, createdAt: Date): string {
  return `${KEYS.outcomesPrefix}${keyTimestamp(createdAt)}-${generatedName(options)}.csv`;
}

const ROWS_PER_CHUNK = 2_000;

/** CSV text in chunks of lines, counting rows and bytes as it goes. */
function* csvChunks<T>(
  header: string,
  records: Iterable<T>,
  toLine: (record: T) => string,
  tally: { rows: number; bytes: number },
  onProgress: ProgressListener | undefined,
): Generator<string> {
  let lines: string[] = [header];
  for (const record of records) {
    lines.push(toLine(record));
    tally.rows++;
    if (lines.length >= ROWS_PER_CHUNK) {
      const chunk = `${lines.join('\n')}\n`;
      tally.bytes += Buffer.byteLength(chunk);
      yield chunk;
      lines = [];
      onProgress?.(tally.rows);
    }
  }
  if (lines.length > 0) {
    const chunk = `${lines.join('\n')}\n`;
    tally.bytes += Buffer.byteLength(chunk);
    yield chunk;
  }
  onProgress?.(tally.rows);
}

/**
 * Streams generated rows into one CSV object (an object stream: a multipart upload beyond one part):
 * rows are produced as S3 takes them, so a million rows never sit in memory at once.
 */
async function uploadCsv<T>(
  s3: S3Client,
  object: { readonly bucket: string; readonly key: string; readonly header: string },
  records: Iterable<T>,
  toLine: (record: T) => string,
  onProgress: ProgressListener | undefined,
): Promise<{ bucket: string; key: string; rows: number; bytes: number }> {
  const tally = { rows: 0, bytes: 0 };
  const csv = createObjectStream(s3, { bucket: object.bucket, key: object.key, contentType: 'text/csv' });
  try {
    for (const chunk of csvChunks(object.header, records, toLine, tally, onProgress)) {
      const room = csv.write(chunk);
      if (room) await room;
    }
    await csv.end();
  } catch (error) {
    await csv.abort(error as Error);
    throw error;
  }
  return { bucket: object.bucket, key: object.key, ...tally };
}

/** Generated customers into the raw bucket, under `raw/`. */
export async function writeRawData(
  s3: S3Client,
  bucket: string,
  options: GenerateOptions,
  { now = new Date(), onProgress }: { now?: Date; onProgress?: ProgressListener } = {},
): Promise<RawDataSummary> {
  // Refused before anything is uploaded (a field without synthetic values, a bad drift).
  validateGenerateOptions(options);
  const columns = generatedColumns(options.schema);
  const toCsvLine = csvLineWriter(columns);
  const stats = { churned: 0, incomeSum: 0, zeroOrders: 0 };
  const ids = idRangeTally();
  const toLine = (record: LabeledRecord) => {
    ids.see(record.customer_id);
    stats.churned += record.churned;
    stats.incomeSum += record.income;
    if (record.orders === 0) stats.zeroOrders++;
    return toCsvLine(record);
  };
  const file = { bucket, key: rawDataKey(options, now), header: [...columns, LABEL_COLUMN].join(',') };
  const written = await uploadCsv(s3, file, generateRecords(options), toLine, onProgress);
  return {
    ...written,
    customerIds: ids.range,
    churnRate: stats.churned / written.rows,
    conceptShift: options.conceptShift ?? null,
    meanIncome: stats.incomeSum / written.rows,
    zeroOrderShare: stats.zeroOrders / written.rows,
  };
}

/** Summary of a generated outcome file. */
export interface OutcomesSummary extends GeneratedFileSummary {
  readonly observedAt: string;
}

/** The outcomes of generated customers into the raw bucket, under `outcomes/`, where the quality job reads them. */
export async function writeOutcomes(
  s3: S3Client,
  bucket: string,
  options: OutcomeOptions,
  { now = new Date(), onProgress }: { now?: Date; onProgress?: ProgressListener } = {},
): Promise<OutcomesSummary> {
  validateOutcomeOptions(options);
  let churned = 0;
  const ids = idRangeTally();
  const toLine = (outcome: GeneratedOutcome) => {
    ids.see(outcome.customer_id);
    churned += outcome.churned;
    return `${outcome.customer_id},${outcome.churned},${outcome.observed_at}`;
  };
  const file = { bucket, key: outcomesKey(options, now), header: OUTCOME_COLUMNS.join(',') };
  const written = await uploadCsv(s3, file, generateOutcomes(options), toLine, onProgress);
  return {
    ...written,
    customerIds: ids.range,
    churnRate: churned / written.rows,
    conceptShift: options.conceptShift ?? null,
    observedAt: options.observedAt.toISOString(),
  };
}
