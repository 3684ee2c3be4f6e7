import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse';
import { listKeys, listObjects } from '#shared/aws/list-objects.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';

/**
 * The offline feature dataset: CSV parts under `features/run_date=YYYY-MM-DD/<source>/`, one row per
 * customer with its id, event time, the model's features (float32 values, written so they parse back
 * to the same float32) and the label when the source had one. Plain CSV keeps it readable by Athena,
 * pandas and a human, and the header names every feature in order, so a reader checks it matches.
 */
export const FEATURES_PREFIX = 'features/';

export const featureDatasetHeader = (labeled: boolean) =>
  ['customer_id', 'event_time', ...FEATURE_SET.names, ...(labeled ? ['churned'] : [])].join(',');

/** Where the features of one raw file land: re-running the same input rewrites the same keys. */
export function featureDatasetPrefix(rawKey: string, runDate: string): string {
  const stem = rawKey.replace(/^.*\//, '').replace(/\.csv$/, '');
  return `${FEATURES_PREFIX}run_date=${runDate}/${stem}/`;
}

export function featureRow(id: string, eventTime: string, vector: Float32Array, label?: 0 | 1): string {
  let line = `${id},${eventTime}`;
  for (let i = 0; i < vector.length; i++) line += `,${vector[i]}`;
  return label === undefined ? line : `${line},${label}`;
}

export interface FeatureDataset {
  readonly rows: number;
  /** Row-major float32, rows × FEATURE_COUNT. */
  readonly x: Float32Array;
  /** Labels (0/1); empty when the data is unlabeled. */
  readonly y: Uint8Array;
  readonly customerIds: string[];
  readonly keys: string[];
}

/** Loads every part under a prefix into one matrix, checking the header against this feature set. */
export async function readFeatureDataset(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<FeatureDataset> {
  const keys = (await listKeys(s3, bucket, prefix)).filter((key) => key.endsWith('.csv'));
  if (keys.length === 0) throw new Error(`no feature data under s3://${bucket}/${prefix}`);
  keys.sort();

  let capacity = 1 << 16;
  let x = new Float32Array(capacity * FEATURE_COUNT);
  let y = new Uint8Array(capacity);
  const customerIds: string[] = [];
  let rows = 0;
  for (const key of keys) {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const parser = (object.Body as Readable).pipe(parse());
    let labeled: boolean | undefined;
    for await (const cells of parser as AsyncIterable<string[]>) {
      if (labeled === undefined) {
        labeled = cells.join(',') === featureDatasetHeader(true);
        if (!labeled && cells.join(',') !== featureDatasetHeader(false)) {
          throw new Error(
            `s3://${bucket}/${key} was written with another feature set (header differs from ${FEATURE_SET.version}); re-run the ETL`,
          );
        }
        continue;
      }
      if (rows === capacity) {
        capacity *= 2;
        const grownX = new Float32Array(capacity * FEATURE_COUNT);
        grownX.set(x);
        x = grownX;
        const grownY = new Uint8Array(capacity);
        grownY.set(y);
        y = grownY;
      }
      customerIds.push(cells[0]!);
      for (let j = 0; j < FEATURE_COUNT; j++) x[rows * FEATURE_COUNT + j] = Number(cells[2 + j]);
      y[rows] = labeled ? Number(cells[2 + FEATURE_COUNT]) : 0;
      rows++;
    }
  }
  return { rows, x: x.subarray(0, rows * FEATURE_COUNT), y: y.subarray(0, rows), customerIds, keys };
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
