import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

/** One listed object: its key, and when it was last written. */
export interface ListedObject {
  readonly key: string;
  readonly lastModified: Date | undefined;
}

/** Every object under `prefix`, page by page (ListObjectsV2 returns at most 1,000 keys a call). */
export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }),
    );
    for (const object of page.Contents ?? []) {
      if (object.Key) objects.push({ key: object.Key, lastModified: object.LastModified });
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return objects;
}

/** The keys of {@link listObjects}. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return (await listObjects(s3, bucket, prefix)).map((o) => o.key);
}
