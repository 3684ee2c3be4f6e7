import { GetObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';

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

/** The fields the ETL recorded, or undefined when nothing was recorded yet (no ETL run). */
export async function readStoreFields(
  s3: S3Client,
  bucket: string,
): Promise<ReadonlySet<string> | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: STORE_FIELDS_KEY }));
    const parsed = storeFieldsSchema.parse(JSON.parse(await object.Body!.transformToString()));
    return new Set(Object.keys(parsed.fields));
  } catch (error) {
    if (error instanceof NoSuchKey) return undefined;
    throw error;
  }
}
