import {
  ChecksumAlgorithm,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

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

/** UTF-8 takes at most 3 bytes for a UTF-16 code unit: text this short fits without measuring it. */
const MAX_BYTES_PER_CODE_UNIT = 3;

/**
 * The text is encoded straight into one of two part buffers, made once per stream: one fills while the
 * other uploads (one part in flight, as S3 needs no more to keep up with a task). A buffer per part, or
 * a Buffer per write joined into parts, would leave the task's whole output behind as garbage that
 * outlives young collections: its memory would grow with the object until a full collection.
 */
export function createObjectStream(
  s3: S3Client,
  object: { readonly bucket: string; readonly key: string; readonly contentType: string },
): ObjectStream {
  const { bucket: Bucket, key: Key, contentType: ContentType } = object;
  let filling: Buffer = Buffer.allocUnsafeSlow(PART_BYTES);
  let spare: Buffer | undefined;
  let used = 0;
  let upload: Promise<string> | undefined;
  let inFlight: Promise<void> | undefined;
  const parts: CompletedPart[] = [];
  let closed: Error | undefined;

  const startUpload = async () => {
    const checksums = (await s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const created = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket,
        Key,
        ContentType,
        // As the SDK's own Upload does: the parts' CRC32s, which the SDK adds, then belong to the object.
        ...(checksums ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
      }),
    );
    if (!created.UploadId) throw new Error(`S3 started no multipart upload for s3://${Bucket}/${Key}`);
    return created.UploadId;
  };

  const uploadPart = async (body: Buffer, PartNumber: number) => {
    upload ??= startUpload();
    const UploadId = await upload;
    const part = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body }));
    if (!part.ETag) throw new Error(`S3 returned no ETag for part ${PartNumber} of s3://${Bucket}/${Key}`);
    parts.push({
      PartNumber,
      ETag: part.ETag,
      ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {}),
    });
  };

  /** Sends the full buffer as the next part once the one before it is in, and fills the other. */
  const shipFull = async () => {
    await inFlight;
    const full = filling;
    filling = spare ?? Buffer.allocUnsafeSlow(PART_BYTES);
    spare = undefined;
    used = 0;
    // Its failure surfaces at the next part boundary, or at the end.
    inFlight = uploadPart(full, parts.length + 1).then(() => {
      spare = full;
    });
    inFlight.catch(() => undefined);
  };

  /** Text that crosses a part boundary: encoded once, its bytes spread over the parts. */
  const spill = async (bytes: Buffer) => {
    for (let offset = 0; offset < bytes.length; ) {
      const n = bytes.copy(filling, used, offset);
      used += n;
      offset += n;
      if (used === PART_BYTES) await shipFull();
    }
  };

  const put = (text: string) => {
    const room = PART_BYTES - used;
    if (text.length * MAX_BYTES_PER_CODE_UNIT <= room || Buffer.byteLength(text) < room) {
      used += filling.write(text, used);
      return undefined;
    }
    return spill(Buffer.from(text));
  };

  // A write made while an earlier one still spills waits its turn: the bytes stay in order.
  let pending: Promise<void> | undefined;
  const ensureOpen = () => {
    if (closed) throw closed;
  };

  return {
    write(text) {
      ensureOpen();
      const next = pending ? pending.then(() => put(text)) : put(text);
      if (!next) return undefined;
      const tracked: Promise<void> = next.finally(() => {
        if (pending === tracked) pending = undefined;
      });
      pending = tracked;
      return tracked;
    },
    async end() {
      ensureOpen();
      closed = new Error(`s3://${Bucket}/${Key} is already ended`);
      await pending;
      if (parts.length === 0 && !inFlight) {
        await s3.send(new PutObjectCommand({ Bucket, Key, ContentType, Body: filling.subarray(0, used) }));
        return;
      }
      await inFlight;
      if (used > 0) await uploadPart(filling.subarray(0, used), parts.length + 1);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId: await upload,
          // One part in flight at a time: they are in order.
          MultipartUpload: { Parts: parts },
        }),
      );
    },
    async abort(reason) {
      closed = reason;
      await pending?.catch(() => undefined);
      await inFlight?.catch(() => undefined);
    },
  };
}
