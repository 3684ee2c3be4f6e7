import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import { KeelError } from '#shared/errors.ts';

/**
 * Which raw fields the online store holds: written by the ETL (beside the offline data, in the features
 * bucket) for every field a loaded file carried, read by every promotion so that a model version
 * requiring a field no load has brought yet is refused before it serves (FieldNotInStoreError).
 */
export const STORE_FIELDS_KEY = 'online-store/fields.json';

export const storeFieldsSchema = z.object({
  fields: z.record(
    z.string(),
    z.object({
      /** When a loaded file first carried the field (ISO 8601). */
      firstLoaded: z.iso.datetime({ offset: true }),
      /** When a loaded file last carried it. */
      lastLoaded: z.iso.datetime({ offset: true }),
    }),
  ),
});
export type StoreFields = z.infer<typeof storeFieldsSchema>;

/** The manifest and its ETag (what a conditional write names), or undefined when there is none. */
async function readManifest(
  s3: S3Client,
  bucket: string,
): Promise<{ manifest: StoreFields; etag: string | undefined } | undefined> {
  // Listed first: S3 answers a GET of a missing key with AccessDenied unless the caller may list the
  // bucket, and whether a listing grant limited to this key's prefix counts for that is not documented;
  // a listing with that prefix is what the grant allows, whatever S3 decides for the GET.
  const listed = await s3.send(
    new ListObjectsV2Command({ Bucket: bucket, Prefix: STORE_FIELDS_KEY, MaxKeys: 1 }),
  );
  if (!listed.Contents?.some((object) => object.Key === STORE_FIELDS_KEY)) return undefined;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: STORE_FIELDS_KEY }));
    const manifest = storeFieldsSchema.parse(JSON.parse(await object.Body!.transformToString()));
    return { manifest, etag: object.ETag };
  } catch (error) {
    if (error instanceof NoSuchKey) return undefined;
    throw error;
  }
}

/** The fields the ETL recorded, or undefined when nothing was recorded yet (no ETL run). */
export async function readStoreFields(
  s3: S3Client,
  bucket: string,
): Promise<ReadonlySet<string> | undefined> {
  const current = await readManifest(s3, bucket);
  return current && new Set(Object.keys(current.manifest.fields));
}

/** Concurrent runs kept replacing the manifest between this one's read and write. */
export class StoreFieldsConflictError extends KeelError {
  readonly code = 'Conflict';
}

/** Writes that lose a race are retried on a fresh read this many times. */
const MAX_ATTEMPTS = 10;
const BASE_DELAY_MS = 20;

/**
 * Another writer got in between the read and the write: S3 refuses the conditional write (412), is
 * finishing a concurrent one on the key (409), or the manifest named by If-Match is gone (404).
 */
function lostRace(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === 412 || status === 409 || error instanceof NoSuchKey;
}

/**
 * Adds the fields a successful ETL run loaded to the manifest, `at` the run's end: a field new to it is
 * first loaded then, a known one keeps its firstLoaded and moves its lastLoaded. A read-merge-write made
 * safe for concurrent runs by S3 conditional writes: created with If-None-Match `*`, replaced with
 * If-Match on the ETag read, and re-read and merged again when another run's write got in between.
 */
export async function recordStoreFields(
  s3: S3Client,
  bucket: string,
  fields: readonly string[],
  at: Date,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<StoreFields> {
  const when = at.toISOString();
  for (let attempt = 1; ; attempt++) {
    const current = await readManifest(s3, bucket);
    const merged: StoreFields = { fields: { ...current?.manifest.fields } };
    for (const field of fields) {
      const known = merged.fields[field];
      merged.fields[field] = known
        ? { firstLoaded: known.firstLoaded, lastLoaded: later(known.lastLoaded, when) }
        : { firstLoaded: when, lastLoaded: when };
    }
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: STORE_FIELDS_KEY,
          Body: JSON.stringify(merged, null, 2),
          ContentType: 'application/json',
          ...(current?.etag ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
        }),
      );
      return merged;
    } catch (error) {
      if (!lostRace(error)) throw error;
      if (attempt === MAX_ATTEMPTS) {
        throw new StoreFieldsConflictError(
          `s3://${bucket}/${STORE_FIELDS_KEY} changed under each of ${MAX_ATTEMPTS} writes of this run's fields ` +
            `(${fields.join(', ')}): run the ETL again (its writes are idempotent)`,
          { cause: error },
        );
      }
      await sleep(Math.floor(Math.random() * BASE_DELAY_MS * 2 ** attempt));
    }
  }
}

const later = (a: string, b: string) => (Date.parse(a) >= Date.parse(b) ? a : b);
