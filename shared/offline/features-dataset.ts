import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listKeys, listObjects } from '#shared/aws/list-objects.ts';
import { KeelError } from '#shared/errors.ts';
import {
  CATEGORIES,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  LABEL_COLUMN,
  type LabeledRecord,
  type RawRecord,
} from '#shared/features/index.ts';

/**
 * The offline dataset: CSV parts under `features/run_date=YYYY-MM-DD/<source>/`, one row per customer
 * with its id, event time, the validated raw record (every raw field of the writing code's schema, an
 * empty cell for an absent one) and the label when the source had one. Raw values rather than feature
 * values, so that any model version's features can be computed from it: a reader builds the matrix of
 * one {@link FeatureSet} through its interpreter. Plain CSV keeps it readable by Athena, pandas and a
 * human; values never need quoting (the schema allows no comma, quote or line break).
 */
export const FEATURES_PREFIX = 'features/';

/** The columns this code writes: `customer_id,event_time,<raw fields>[,churned]`. */
export const offlineDatasetHeader = (labeled: boolean) =>
  ['customer_id', 'event_time', ...FEATURE_FIELD_NAMES, ...(labeled ? [LABEL_COLUMN] : [])].join(',');

/** Where the records of one raw file land: re-running the same input rewrites the same keys. */
export function featureDatasetPrefix(rawKey: string, runDate: string): string {
  const stem = rawKey.replace(/^.*\//, '').replace(/\.csv$/, '');
  return `${FEATURES_PREFIX}run_date=${runDate}/${stem}/`;
}

/** One line of the dataset (no newline); numbers print as the shortest text that parses back to them. */
export function offlineRow(record: RawRecord | LabeledRecord, labeled: boolean): string {
  let line = `${record.customer_id},${record.event_time}`;
  for (const name of FEATURE_FIELD_NAMES) line += `,${record[name] ?? ''}`;
  return labeled ? `${line},${(record as LabeledRecord).churned}` : line;
}

/** A part the reader cannot build the matrix from; the message names the part and what to do. */
export class OfflineDatasetError extends KeelError {
  readonly code = 'ValidationError';
}

/** A raw field the feature set requires is not in the part (its column or a row's value). */
export class MissingRawFieldError extends OfflineDatasetError {}

/**
 * Whether a header is the layout written before offline data held raw records: feature values, whose
 * one-hot columns (`plan_basic`) stand where the categorical field (`plan`) now is.
 */
const isFeatureValued = (columns: readonly string[]) =>
  Object.entries(CATEGORIES).some(
    ([field, values]) => !columns.includes(field) && values.some((v) => columns.includes(`${field}_${v}`)),
  );

/** Refuses a header that is not this dataset's layout: another file, or the feature-valued layout. */
export function assertOfflineHeader(source: string, columns: readonly string[]): void {
  if (columns[0] !== 'customer_id' || columns[1] !== 'event_time') {
    throw new OfflineDatasetError(
      `${source} is not an offline dataset part: its header starts ${columns.slice(0, 2).join(',')}, not customer_id,event_time`,
    );
  }
  if (isFeatureValued(columns)) {
    throw new OfflineDatasetError(
      `${source} holds feature values, the layout before offline data held raw records: re-run the ETL on ` +
        'its raw file (`keel etl run --input <raw key>`) to rewrite it',
    );
  }
}

/**
 * How the cells of one part become records for one feature set: the header is checked (every field the
 * set requires must be a column; others may be absent, imputed, or extra, ignored), and each call
 * fills one reused record with the fields the set reads, typed (text for its categorical fields).
 */
export function recordDecoder(
  source: string,
  columns: readonly string[],
  featureSet: FeatureSet,
): (cells: readonly string[]) => FieldValues {
  assertOfflineHeader(source, columns);
  const absent = featureSet.required.filter((field) => !columns.includes(field));
  if (absent.length > 0) {
    throw new MissingRawFieldError(
      `${source} has no column ${absent.join(', ')}, which feature set ${featureSet.version} ` +
        `(${featureSet.fingerprint}) requires: use a dataset loaded with ${absent.length > 1 ? 'these fields' : 'the field'}`,
      { details: { fields: absent, source } },
    );
  }
  const read = featureSet.fields.flatMap((name) => {
    const index = columns.indexOf(name);
    return index < 0 ? [] : [{ name, index, text: name in featureSet.categories }];
  });
  const record: Record<string, number | string | undefined> = {};
  return (cells) => {
    for (const { name, index, text } of read) {
      const cell = cells[index];
      record[name] = cell === undefined || cell === '' ? undefined : text ? cell : Number(cell);
    }
    return record;
  };
}

/** The lines of an object, streamed; leaving early (a break, a throw) closes its response. */
export async function* objectLines(s3: S3Client, bucket: string, key: string): AsyncGenerator<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = object.Body as Readable;
  try {
    yield* createInterface({ input: body, crlfDelay: Number.POSITIVE_INFINITY });
  } finally {
    // An abandoned response fails later with `aborted`: an error no one would be listening for.
    body.on('error', () => {}).destroy();
  }
}

export interface FeatureDataset {
  /** The feature set the matrix was computed for. */
  readonly featureSet: FeatureSet;
  readonly rows: number;
  /** Row-major float32, rows × featureSet.count. */
  readonly x: Float32Array;
  /** Labels (0/1); 0 for rows of unlabeled parts. */
  readonly y: Uint8Array;
  readonly customerIds: string[];
  readonly keys: string[];
}

export interface ReadFeatureDatasetOptions {
  /**
   * Only these rows (0-based over the parts in key order, ascending): the held-out rows of a training,
   * for a model of another feature set.
   * @default - every row
   */
  readonly rows?: ArrayLike<number>;
}

/** The CSV parts of a dataset, in the order its rows are numbered. */
export interface DatasetParts {
  readonly bucket: string;
  readonly prefix: string;
  readonly keys: string[];
}

export async function datasetParts(s3: S3Client, bucket: string, prefix: string): Promise<DatasetParts> {
  const keys = (await listKeys(s3, bucket, prefix)).filter((key) => key.endsWith('.csv'));
  if (keys.length === 0) throw new OfflineDatasetError(`no feature data under s3://${bucket}/${prefix}`);
  return { bucket, prefix, keys: keys.sort() };
}

/** One row of a dataset with its features, as {@link featureRows} yields it. */
export interface FeatureRow {
  /** The part the row is in. */
  readonly key: string;
  readonly customerId: string;
  readonly eventTime: string;
  /** 0 or 1; undefined in a part without the label column. */
  readonly label: number | undefined;
  /** The row's features: one buffer for every row, overwritten by the next (copy what you keep). */
  readonly features: Float32Array;
  /** The stored line itself, and its part's header line (a row copied elsewhere keeps its raw record). */
  readonly line: string;
  readonly header: string;
}

/**
 * The rows of a dataset's parts, each with `featureSet`'s features computed from the stored raw record by
 * the set's interpreter and imputed by its policy. Streams each part line by line, so memory holds one
 * row; leaving early closes the part being read.
 */
export async function* featureRows(
  s3: S3Client,
  parts: DatasetParts,
  featureSet: FeatureSet,
  options: ReadFeatureDatasetOptions = {},
): AsyncGenerator<FeatureRow> {
  const { bucket, keys } = parts;
  const features = new Float32Array(featureSet.count);
  const only = options.rows;
  let found = 0;
  let row = -1;
  for (const key of keys) {
    const source = `s3://${bucket}/${key}`;
    let decode: ((cells: readonly string[]) => FieldValues) | undefined;
    let label = -1;
    let header = '';
    for await (const line of objectLines(s3, bucket, key)) {
      const cells = line.split(',');
      if (!decode) {
        decode = recordDecoder(source, cells, featureSet);
        header = line;
        label = cells.indexOf(LABEL_COLUMN);
        continue;
      }
      if (line === '') continue;
      row++;
      if (only && only[found] !== row) continue;
      const missing = featureSet.encodeInto(decode(cells), features, 0);
      if (missing !== undefined) {
        throw new MissingRawFieldError(
          `${source}: customer ${cells[0]} has no ${missing}, which feature set ${featureSet.version} requires`,
          { details: { fields: [missing], source } },
        );
      }
      found++;
      yield {
        key,
        customerId: cells[0]!,
        eventTime: cells[1]!,
        label: label < 0 ? undefined : Number(cells[label]),
        features,
        line,
        header,
      };
      if (only && found === only.length) return;
    }
  }
  if (only && found < only.length) {
    throw new OfflineDatasetError(
      `s3://${bucket}/${parts.prefix} has ${row + 1} rows: row ${only[found]} asked for is not there (was it rewritten?)`,
    );
  }
}

/**
 * Loads every part under a prefix into one matrix of `featureSet`'s features (default: this code's
 * definition, what new models train on), row by row from {@link featureRows}: memory holds the
 * matrix, not the text.
 */
export async function readFeatureDataset(
  s3: S3Client,
  bucket: string,
  prefix: string,
  featureSet: FeatureSet = FEATURE_SET,
  options: ReadFeatureDatasetOptions = {},
): Promise<FeatureDataset> {
  const parts = await datasetParts(s3, bucket, prefix);
  const count = featureSet.count;
  let capacity = options.rows ? Math.max(options.rows.length, 1) : 1 << 16;
  let x = new Float32Array(capacity * count);
  let y = new Uint8Array(capacity);
  const customerIds: string[] = [];
  let rows = 0;
  for await (const row of featureRows(s3, parts, featureSet, options)) {
    if (rows === capacity) {
      capacity *= 2;
      const grownX = new Float32Array(capacity * count);
      grownX.set(x);
      x = grownX;
      const grownY = new Uint8Array(capacity);
      grownY.set(y);
      y = grownY;
    }
    x.set(row.features, rows * count);
    y[rows] = row.label ?? 0;
    customerIds.push(row.customerId);
    rows++;
  }
  return {
    featureSet,
    rows,
    x: x.subarray(0, rows * count),
    y: y.subarray(0, rows),
    customerIds,
    keys: parts.keys,
  };
}

/**
 * Written last by a successful ETL run: a dataset without it is incomplete (a failed or running ETL)
 * and is never picked as "the newest" for training.
 */
export const SUCCESS_MARKER = '_SUCCESS.json';

export async function markDatasetComplete(
  s3: S3Client,
  bucket: string,
  prefix: string,
  report: unknown,
): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `${prefix}${SUCCESS_MARKER}`,
      Body: JSON.stringify(report),
      ContentType: 'application/json',
    }),
  );
}

/** The prefix of the most recently completed feature dataset, or undefined when there is none. */
export async function newestFeatureDataset(s3: S3Client, bucket: string): Promise<string | undefined> {
  let newest: { prefix: string; at: number } | undefined;
  for (const object of await listObjects(s3, bucket, FEATURES_PREFIX)) {
    if (!object.key.endsWith(`/${SUCCESS_MARKER}`)) continue;
    const at = object.lastModified?.getTime() ?? 0;
    const prefix = object.key.slice(0, object.key.lastIndexOf('/') + 1);
    if (!newest || at > newest.at || (at === newest.at && prefix > newest.prefix)) newest = { prefix, at };
  }
  return newest?.prefix;
}
