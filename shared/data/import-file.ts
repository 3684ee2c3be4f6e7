import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ValidationError } from '#shared/errors.ts';
import { assertHeader, type CsvFileSchema, CUSTOMER_FILE, OUTCOME_FILE } from '#shared/features/header.ts';
import { KEYS, keyTimestamp } from '#shared/resources.ts';

/**
 * `keel data import`: a CSV file of this machine into the raw bucket, its header checked before a byte is
 * sent, streamed (a file of any size in constant memory), under a time-ordered key so that `keel etl run`
 * without `--input` takes the newest.
 */

export const IMPORT_KINDS = {
  customers: { schema: CUSTOMER_FILE, prefix: KEYS.rawPrefix },
  outcomes: { schema: OUTCOME_FILE, prefix: KEYS.outcomesPrefix },
} as const satisfies Record<string, { schema: CsvFileSchema; prefix: string }>;
export type ImportKind = keyof typeof IMPORT_KINDS;

export interface ImportSummary {
  readonly bucket: string;
  readonly key: string;
  readonly kind: ImportKind;
  /** Data rows (lines after the header). */
  readonly rows: number;
  readonly bytes: number;
}

/** The first line of a file, without a byte-order mark or a carriage return; undefined for an empty file. */
async function firstLine(path: string): Promise<string | undefined> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of lines) return line.replace(/^\uFEFF/, '');
    return undefined;
  } finally {
    lines.close();
  }
}

/** `raw/20261206T020000Z-<file name>.csv`: sorts by time, says where it came from, safe as an S3 key. */
export function importKey(kind: ImportKind, path: string, now: Date): string {
  const name = basename(path)
    .replace(/\.csv$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 100);
  return `${IMPORT_KINDS[kind].prefix}${keyTimestamp(now)}-${name || 'import'}.csv`;
}

export async function importCsvFile(
  s3: S3Client,
  bucket: string,
  options: { path: string; kind: ImportKind; now?: Date; onProgress?: (bytes: number) => void },
): Promise<ImportSummary> {
  const { schema } = IMPORT_KINDS[options.kind];
  const header = await firstLine(options.path).catch((error: NodeJS.ErrnoException) => {
    throw new ValidationError(`cannot read ${options.path}: ${error.code ?? error.message}`, [
      { path: 'FILE', message: error.code === 'ENOENT' ? 'no such file' : error.message },
    ]);
  });
  if (header === undefined) {
    throw new ValidationError(`${options.path} is empty: it needs a header line`, [
      { path: 'FILE', message: 'empty file' },
    ]);
  }
  assertHeader(options.path, header.replace(/\r$/, '').split(','), schema);

  let bytes = 0;
  let newlines = 0;
  let lastByte = 0x0a;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.byteLength;
      for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) newlines++;
      if (chunk.byteLength > 0) lastByte = chunk[chunk.byteLength - 1]!;
      options.onProgress?.(bytes);
      done(null, chunk);
    },
  });
  const key = importKey(options.kind, options.path, options.now ?? new Date());
  await new Upload({
    client: s3,
    params: {
      Bucket: bucket,
      Key: key,
      Body: createReadStream(options.path).pipe(counter),
      ContentType: 'text/csv',
    },
  }).done();
  // Lines after the header; a last line without a newline is a row too.
  const rows = newlines - 1 + (lastByte === 0x0a ? 0 : 1);
  return { bucket, key, kind: options.kind, rows: Math.max(rows, 0), bytes };
}
