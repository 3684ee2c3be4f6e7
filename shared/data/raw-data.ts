import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CSV_HEADER, type LabeledRecord, toCsvLine } from '#shared/features/index.ts';
import { KEYS, keyTimestamp } from '#shared/resources.ts';
import { type GenerateOptions, generateRecords } from './generate.ts';

/** Summary of a generated file, for the CLI and for tests that check the distribution. */
export interface RawDataSummary {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly churnRate: number;
  readonly meanIncome: number;
  readonly zeroOrderShare: number;
}

export type ProgressListener = (rowsDone: number) => void;

/** Time-ordered, self-describing key: the newest file sorts last. */
export function rawDataKey(options: GenerateOptions, createdAt: Date): string {
  const drift = Object.entries(options.drift ?? {})
    .map(([field, factor]) => `-drift-${field}-${factor}`)
    .join('');
  return `${KEYS.rawPrefix}${keyTimestamp(createdAt)}-n${options.rows}-s${options.seed}${drift}.csv`;
}

const ROWS_PER_CHUNK = 2_000;

/** Generates CSV text in chunks of lines, tallying the summary as it goes. */
function* csvChunks(
  records: Iterable<LabeledRecord>,
  tally: { rows: number; bytes: number; churned: number; incomeSum: number; zeroOrders: number },
  onProgress: ProgressListener | undefined,
): Generator<string> {
  let lines: string[] = [CSV_HEADER];
  for (const record of records) {
    lines.push(toCsvLine(record));
    tally.rows++;
    tally.churned += record.churned;
    tally.incomeSum += record.income;
    if (record.orders === 0) tally.zeroOrders++;
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
 * Streams generated customers into the raw bucket as one CSV object (multipart upload): rows are
 * produced as S3 takes them, so a million rows never sit in memory at once.
 */
export async function writeRawData(
  s3: S3Client,
  bucket: string,
  options: GenerateOptions,
  { now = new Date(), onProgress }: { now?: Date; onProgress?: ProgressListener } = {},
): Promise<RawDataSummary> {
  const key = rawDataKey(options, now);
  const tally = { rows: 0, bytes: 0, churned: 0, incomeSum: 0, zeroOrders: 0 };
  const body = Readable.from(csvChunks(generateRecords(options), tally, onProgress), { objectMode: false });
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: body, ContentType: 'text/csv' },
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
  }).done();
  return {
    bucket,
    key,
    rows: tally.rows,
    bytes: tally.bytes,
    churnRate: tally.churned / tally.rows,
    meanIncome: tally.incomeSum / tally.rows,
    zeroOrderShare: tally.zeroOrders / tally.rows,
  };
}
