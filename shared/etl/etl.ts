import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parse } from 'csv-parse';
import { KeelError } from '#shared/errors.ts';
import {
  encodeInto,
  FEATURE_COUNT,
  LABEL_COLUMN,
  type LabeledRecord,
  parseCsvRecord,
  parseLabeledCsvRecord,
  type RawRecord,
} from '#shared/features/index.ts';
import { featureDatasetHeader, featureDatasetPrefix, featureRow } from '#shared/offline/features-dataset.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { KEYS } from '#shared/resources.ts';

export interface EtlDeps {
  readonly s3: S3Client;
  readonly dynamo: DynamoDBDocumentClient;
  readonly rawBucket: string;
  readonly featuresBucket: string;
  readonly onlineTable: string;
  readonly clock?: () => Date;
}

export interface EtlOptions {
  readonly inputKey: string;
  /** Partition of the offline dataset (YYYY-MM-DD); default: today (UTC). */
  readonly runDate?: string;
  /** The run fails when more than this share of rows is bad (default 0.01). */
  readonly maxBadRowShare?: number;
  /** Rows per offline feature part (default 250,000): bounds memory for any input size. */
  readonly partRows?: number;
  readonly onProgress?: (rowsRead: number) => void;
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
  readonly quarantineKey: string | null;
}

/** More bad rows than the run allows; the report says how many. */
export class BadRowShareError extends KeelError {
  readonly code = 'ValidationError';
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

const ONLINE_FLUSH_ROWS = 500;
const ONLINE_PARALLEL = 4;

/**
 * Raw CSV → validated records → offline features (S3) and the online store (DynamoDB), streaming:
 * memory holds one feature part and one online batch, whatever the input size. Bad rows go to a
 * quarantine object with their row number and reason. Outputs are keyed by the input, so re-running
 * the same input rewrites the same objects and items.
 */
export async function runEtl(deps: EtlDeps, options: EtlOptions): Promise<EtlReport> {
  const runDate = options.runDate ?? (deps.clock ?? (() => new Date()))().toISOString().slice(0, 10);
  const maxBadRowShare = options.maxBadRowShare ?? 0.01;
  const partRows = options.partRows ?? 250_000;
  const featurePrefix = featureDatasetPrefix(options.inputKey, runDate);
  const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.rawBucket, Key: options.inputKey }));
  const parser = (object.Body as Readable).pipe(
    parse({ columns: true, relax_column_count: true, skip_empty_lines: true, trim: false }),
  );

  const vector = new Float32Array(FEATURE_COUNT);
  const featureParts: string[] = [];
  const quarantine: string[] = [];
  let labeled: boolean | undefined;
  let part: string[] = [];
  let online: RawRecord[] = [];
  let rowsRead = 0;
  let valid = 0;
  let onlineWritten = 0;

  const flushPart = async () => {
    if (part.length === 0 && featureParts.length > 0) return;
    const key = `${featurePrefix}part-${String(featureParts.length).padStart(5, '0')}.csv`;
    const body = `${featureDatasetHeader(labeled ?? false)}\n${part.join('\n')}${part.length > 0 ? '\n' : ''}`;
    await deps.s3.send(
      new PutObjectCommand({ Bucket: deps.featuresBucket, Key: key, Body: body, ContentType: 'text/csv' }),
    );
    featureParts.push(key);
    part = [];
  };
  const flushOnline = async () => {
    const slices: RawRecord[][] = [];
    const size = Math.ceil(online.length / ONLINE_PARALLEL);
    for (let i = 0; i < online.length; i += size) slices.push(online.slice(i, i + size));
    const counts = await Promise.all(
      slices.map((slice) => writeRecords({ dynamo: deps.dynamo, table: deps.onlineTable }, slice)),
    );
    onlineWritten += counts.reduce((a, b) => a + b, 0);
    online = [];
  };

  for await (const row of parser as AsyncIterable<Record<string, string>>) {
    rowsRead++;
    if (labeled === undefined) labeled = LABEL_COLUMN in row;
    const parsed = labeled ? parseLabeledCsvRecord(row) : parseCsvRecord(row);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'row'}: ${issue.message}`);
      quarantine.push(JSON.stringify({ row: rowsRead, reason, raw: row }));
      continue;
    }
    valid++;
    const record = parsed.data as LabeledRecord;
    encodeInto(record, vector, 0);
    part.push(
      featureRow(record.customer_id, record.event_time, vector, labeled ? record.churned : undefined),
    );
    const { churned: _label, ...raw } = record;
    online.push(raw);
    if (part.length >= partRows) await flushPart();
    if (online.length >= ONLINE_FLUSH_ROWS) await flushOnline();
    if (rowsRead % 10_000 === 0) options.onProgress?.(rowsRead);
  }
  await flushPart();
  await flushOnline();
  options.onProgress?.(rowsRead);

  const quarantineKey =
    quarantine.length > 0 ? `quarantine/run_date=${runDate}/${featurePrefix.split('/').at(-2)}.jsonl` : null;
  if (quarantineKey) {
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.featuresBucket,
        Key: quarantineKey,
        Body: `${quarantine.join('\n')}\n`,
        ContentType: 'application/x-ndjson',
      }),
    );
  }
  const report: EtlReport = {
    inputKey: options.inputKey,
    runDate,
    rowsRead,
    valid,
    quarantined: quarantine.length,
    onlineWritten,
    labeled: labeled ?? false,
    featurePrefix,
    featureParts,
    quarantineKey,
  };
  if (onlineWritten !== valid) {
    throw new Error(`online store wrote ${onlineWritten} items for ${valid} valid rows`);
  }
  if (rowsRead === 0 || quarantine.length / rowsRead > maxBadRowShare) {
    throw new BadRowShareError(
      `${quarantine.length} of ${rowsRead} rows are bad (allowed share ${maxBadRowShare}); see s3://${deps.featuresBucket}/${quarantineKey}`,
      { details: report },
    );
  }
  return report;
}
