import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/**
 * Text written to an S3 object as it is produced: an object under one part is a single PutObject,
 * a larger one a multipart upload of {@link PART_BYTES} parts, so a task holds a part or two of its
 * output, not the whole object. The object appears only when {@link ObjectStream.end} completes;
 * a stream {@link ObjectStream.abort}ed (or failed) leaves nothing visible, and the parts it had
 * uploaded to the bucket's lifecycle rule, which aborts incomplete multipart uploads (so the task
 * needs s3:PutObject only, no s3:AbortMultipartUpload).
 */
export interface ObjectStream {
  /** Appends text; the promise, when there is one, resolves once the upload has taken what waits. */
  write(text: string): Promise<void> | undefined;
  /** Completes the object. */
  end(): Promise<void>;
  /** Gives the object up: it never appears. */
  abort(reason: Error): Promise<void>;
}

/** S3's smallest part but the last; what a stream holds while a part uploads. */
export const PART_BYTES = 5 * 1024 * 1024;

export function createObjectStream(
  s3: S3Client,
  object: { readonly bucket: string; readonly key: string; readonly contentType: string },
): ObjectStream {
  const body = new PassThrough({ highWaterMark: 256 * 1024 });
  const done = new Upload({
    client: s3,
    params: { Bucket: object.bucket, Key: object.key, Body: body, ContentType: object.contentType },
    partSize: PART_BYTES,
    queueSize: 1,
    leavePartsOnError: true,
  }).done();
  // Its failure is reported by write and end.
  done.catch(() => undefined);
  return {
    write(text) {
      if (body.write(text)) return undefined;
      // A failed upload stops reading its body: its error, not a drain that never comes.
      return Promise.race([once(body, 'drain'), done]).then(() => undefined);
    },
    async end() {
      body.end();
      await done;
    },
    async abort(reason) {
      body.destroy(reason);
      await done.catch(() => undefined);
    },
  };
}
