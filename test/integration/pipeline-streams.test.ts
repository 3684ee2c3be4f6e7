import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient, createS3Client, localCredentials } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { runEtl } from '#shared/etl/etl.ts';
import { CSV_HEADER, type RawRecord, toCsvLine } from '#shared/features/index.ts';
import { createRecordWriter, getRecords } from '#shared/online-store/store.ts';
import { createObjectStream, PART_BYTES } from '#shared/pipelines/object-stream.ts';
import { etlDepsOf, startTestAws, type TestAws } from '../support/aws.ts';

/**
 * What the ETL and batch-scoring tasks stream through instead of holding: the online store's record
 * writer (batches in flight while the rows are read) and S3 objects written as they are produced
 * (multipart beyond one part). Against the local S3 and DynamoDB.
 */
let aws: TestAws;

beforeAll(async () => {
  aws = await startTestAws();
});
afterAll(async () => {
  await aws?.close();
});

const records = (rows: number, seed: number): RawRecord[] =>
  [...generateRecords({ rows, seed, asOf: new Date() })].map(({ churned: _label, ...raw }) => raw);

/** A document client over the local DynamoDB that counts the BatchWriteItem calls it has in flight. */
function countingStore() {
  const dynamo = createDocumentClient(aws.target);
  const calls = { inFlight: 0, most: 0, total: 0 };
  dynamo.middlewareStack.add(
    (next) => async (args) => {
      calls.inFlight++;
      calls.total++;
      calls.most = Math.max(calls.most, calls.inFlight);
      try {
        return await next(args);
      } finally {
        calls.inFlight--;
      }
    },
    { step: 'initialize' },
  );
  return { store: { dynamo, table: aws.names.onlineFeatures }, calls };
}

describe('createRecordWriter', () => {
  it('writes every record in batches of 25, never more than inFlight at once, and counts them', async () => {
    const { store, calls } = countingStore();
    const wanted = records(1_010, 21);
    const writer = createRecordWriter(store, 3);
    let waits = 0;
    for (const record of wanted) {
      const room = writer.write(record);
      if (room) {
        waits++;
        await room;
      }
    }
    expect(await writer.close()).toBe(1_010);
    expect(calls.total).toBe(Math.ceil(1_010 / 25));
    expect(calls.most).toBe(3);
    expect(waits).toBeGreaterThan(0);
    const found = await getRecords(
      store,
      wanted.map((r) => r.customer_id),
    );
    expect(found.size).toBe(1_010);
    expect(found.get(wanted[1_009]!.customer_id)).toEqual(wanted[1_009]);
    store.dynamo.destroy();
  });

  it('fails its close (and the writes after) with the error of a failed batch', async () => {
    const dynamo = createDocumentClient(aws.target);
    const writer = createRecordWriter({ dynamo, table: 'keel-no-such-table' }, 1);
    const failed = async () => {
      for (const record of records(60, 22)) await writer.write(record);
      return writer.close();
    };
    await expect(failed()).rejects.toThrow(/non-existent table|not found/i);
    dynamo.destroy();
  });
});

describe('createObjectStream', () => {
  const bucket = () => aws.names.outputs;
  const read = async (key: string) =>
    (
      await aws.clients.s3.send(new GetObjectCommand({ Bucket: bucket(), Key: key }))
    ).Body!.transformToString();
  /** A stream to `key` of the outputs bucket, through `s3` (the test's shared client unless given). */
  const open = (key: string, s3: S3Client = aws.clients.s3) =>
    createObjectStream(s3, { bucket: bucket(), key, contentType: 'text/csv' });
  /** Records the calls `s3` completes; `of(command)` lists one command's, in order. */
  const recordCalls = (s3: S3Client) => {
    const sent: { command: string; input: Record<string, unknown>; output: Record<string, unknown> }[] = [];
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        sent.push({
          command: context.commandName ?? '',
          input: args.input as Record<string, unknown>,
          output: result.output as unknown as Record<string, unknown>,
        });
        return result;
      },
      { step: 'initialize' },
    );
    return (command: string) => sent.filter((call) => call.command === command);
  };
  const exists = async (key: string) =>
    ((await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: key }))).KeyCount ?? 0) >
    0;

  it('writes a small object in one put, visible only once ended', async () => {
    const stream = open('streams/small.csv');
    await stream.write('a,b\n');
    await stream.write('1,2\n');
    expect(await exists('streams/small.csv')).toBe(false);
    await stream.end();
    expect(await read('streams/small.csv')).toBe('a,b\n1,2\n');
  });

  it('keeps every line whole and in order across parts of a multipart upload', async () => {
    const stream = open('streams/large.csv');
    // Lines of odd lengths, written in pieces that straddle the part boundaries.
    const lines = Array.from({ length: 220_000 }, (_, i) => `row-${i},${'x'.repeat(i % 97)}\n`);
    let piece = '';
    for (const line of lines) {
      piece += line;
      if (piece.length > 70_000) {
        await stream.write(piece);
        piece = '';
      }
    }
    await stream.write(piece);
    await stream.end();
    const text = await read('streams/large.csv');
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * PART_BYTES);
    expect(text).toBe(lines.join(''));
  });

  it('leaves no object when aborted, whatever it had uploaded', async () => {
    const stream = open('streams/aborted.csv');
    await stream.write('y'.repeat(PART_BYTES + 1_000));
    await stream.abort(new Error('the segment failed'));
    expect(await exists('streams/aborted.csv')).toBe(false);
  });
  it('keeps the bytes in order when writes come before the earlier ones are taken, multi-byte text across parts', async () => {
    const stream = open('streams/unawaited.txt');
    // 3-byte and 4-byte characters, so part boundaries fall inside characters.
    const pieces = Array.from({ length: 9 }, (_, i) => `${i}:${'é€😀'.repeat(200_000 + i)}\n`);
    const writes = pieces.map((piece) => stream.write(piece));
    expect(writes.some((write) => write !== undefined)).toBe(true);
    await stream.end();
    const text = await read('streams/unawaited.txt');
    expect(Buffer.byteLength(text)).toBeGreaterThan(3 * PART_BYTES);
    expect(text).toBe(pieces.join(''));
  });

  it('sends a part that one write filled to the last byte, then the rest', async () => {
    const stream = open('streams/exact.txt');
    // 2 bytes, then 3-byte characters up to the part's last byte.
    const pieces = ['ab', '€'.repeat((PART_BYTES - 2) / 3), 'tail\n'];
    for (const piece of pieces) await stream.write(piece);
    await stream.end();
    expect(await read('streams/exact.txt')).toBe(pieces.join(''));
  });

  it('fills and sends two part buffers in turn, however large the object', async () => {
    const s3 = createS3Client(aws.target);
    const of = recordCalls(s3);
    const stream = open('streams/reused.csv', s3);
    const line = `${'z'.repeat(99)}\n`;
    const page = line.repeat(1_000);
    for (let bytes = 0; bytes < 6 * PART_BYTES; bytes += page.length) await stream.write(page);
    await stream.end();
    const bodies = of('UploadPartCommand').map(({ input }) => input.Body as Uint8Array);
    expect(bodies.length).toBe(7);
    expect(new Set(bodies.map((body) => body.buffer)).size).toBe(2);
    const text = await read('streams/reused.csv');
    expect(text.length).toBe(Math.ceil((6 * PART_BYTES) / page.length) * page.length);
    expect(text.slice(-line.length)).toBe(line);
    s3.destroy();
  });

  it("creates the upload for CRC32 checksums and completes it with each part's, as AWS requires", async () => {
    // The SDK adds a CRC32 to every part it sends to AWS; an upload created for them is refused
    // completion unless each part's is given back (neither local emulator checks it, so this test does).
    const s3 = new S3Client({
      region: aws.target.region,
      endpoint: aws.target.endpoints!.s3,
      forcePathStyle: true,
      credentials: localCredentials(),
      requestChecksumCalculation: 'WHEN_SUPPORTED',
    });
    const of = recordCalls(s3);
    const stream = open('streams/checksummed.csv', s3);
    const text = `${'c'.repeat(99)}\n`.repeat(80_000);
    await stream.write(text);
    await stream.end();
    expect(await read('streams/checksummed.csv')).toBe(text);
    expect(of('CreateMultipartUploadCommand')[0]?.input).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
    const returned = of('UploadPartCommand').map(({ input, output }) => ({
      PartNumber: input.PartNumber,
      ETag: output.ETag,
      ...(output.ChecksumCRC32 ? { ChecksumCRC32: output.ChecksumCRC32 } : {}),
    }));
    expect(returned).toHaveLength(2);
    expect(of('CompleteMultipartUploadCommand')[0]?.input).toMatchObject({
      MultipartUpload: { Parts: returned },
    });
    s3.destroy();
  });

  it("fails its writes and its end with S3's error when a part cannot be uploaded, and leaves nothing", async () => {
    const stream = createObjectStream(aws.clients.s3, {
      bucket: 'keel-no-such-bucket',
      key: 'streams/lost.csv',
      contentType: 'text/csv',
    });
    const failed = async () => {
      for (let i = 0; i < 4; i++) await stream.write('w'.repeat(PART_BYTES));
      await stream.end();
    };
    await expect(failed()).rejects.toThrow(/bucket/i);
  });
});

describe('an ETL chunk whose offline part spans several upload parts', () => {
  it('writes every valid row once, in order, and each online item', async () => {
    // About 80 bytes a raw record offline: 80,000 rows make a part of two upload parts.
    const rows = 80_000;
    const lines = [CSV_HEADER, ...[...generateRecords({ rows, seed: 23, asOf: new Date() })].map(toCsvLine)];
    lines[7] = 'c-000007,not,a,row';
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/streams.csv', Body: `${lines.join('\n')}\n` }),
    );
    const report = await runEtl(etlDepsOf(aws), { inputKey: 'raw/streams.csv', chunkRows: rows });
    expect(report).toMatchObject({
      rowsRead: rows,
      valid: rows - 1,
      quarantined: 1,
      onlineWritten: rows - 1,
    });
    const part = await aws.clients.s3.send(
      new GetObjectCommand({ Bucket: aws.names.features, Key: report.featureParts[0]! }),
    );
    const text = await part.Body!.transformToString();
    expect(Buffer.byteLength(text)).toBeGreaterThan(PART_BYTES);
    const ids = text
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => line.slice(0, line.indexOf(',')));
    expect(ids).toEqual(
      lines
        .slice(1)
        .filter((_, i) => i !== 6)
        .map((line) => line.slice(0, line.indexOf(','))),
    );
  }, 120_000);
});
