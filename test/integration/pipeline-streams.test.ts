import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '#shared/aws/clients.ts';
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
  const exists = async (key: string) =>
    ((await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: key }))).KeyCount ?? 0) >
    0;

  it('writes a small object in one put, visible only once ended', async () => {
    const stream = createObjectStream(aws.clients.s3, {
      bucket: bucket(),
      key: 'streams/small.csv',
      contentType: 'text/csv',
    });
    await stream.write('a,b\n');
    await stream.write('1,2\n');
    expect(await exists('streams/small.csv')).toBe(false);
    await stream.end();
    expect(await read('streams/small.csv')).toBe('a,b\n1,2\n');
  });

  it('keeps every line whole and in order across parts of a multipart upload', async () => {
    const stream = createObjectStream(aws.clients.s3, {
      bucket: bucket(),
      key: 'streams/large.csv',
      contentType: 'text/csv',
    });
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
    const stream = createObjectStream(aws.clients.s3, {
      bucket: bucket(),
      key: 'streams/aborted.csv',
      contentType: 'text/csv',
    });
    await stream.write('y'.repeat(PART_BYTES + 1_000));
    await stream.abort(new Error('the segment failed'));
    expect(await exists('streams/aborted.csv')).toBe(false);
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
