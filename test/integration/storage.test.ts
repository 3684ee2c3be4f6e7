import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { Upload } from '@aws-sdk/lib-storage';
import { parse } from 'csv-parse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRawData } from '#shared/data/raw-data.ts';
import { CSV_COLUMNS, parseLabeledCsvRecord, RAW_FIELDS } from '#shared/features/index.ts';
import { PART_BYTES } from '#shared/pipelines/object-stream.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { LOGINS_30D, WITH_LOGINS } from '../support/raw-schemas.ts';

let aws: TestAws;
beforeAll(async () => {
  aws = await startTestAws();
});
afterAll(async () => {
  await aws?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe(`S3 through the shared client (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  it('round-trips a small object', async () => {
    const Bucket = aws.names.models;
    await aws.clients.s3.send(new PutObjectCommand({ Bucket, Key: 'a/b.json', Body: '{"x":1}' }));
    const got = await aws.clients.s3.send(new GetObjectCommand({ Bucket, Key: 'a/b.json' }));
    expect(await got.Body!.transformToString()).toBe('{"x":1}');
  });

  it('stores a streamed multipart upload of 13 MB byte-exact', async () => {
    const data = randomBytes(13 * 1024 * 1024 + 12_345);
    // Odd-sized chunks from a stream of unknown length: the upload has to reassemble parts itself.
    const chunks = function* () {
      for (let offset = 0; offset < data.length; offset += 777_777)
        yield data.subarray(offset, offset + 777_777);
    };
    const Bucket = aws.names.raw;
    await new Upload({
      client: aws.clients.s3,
      params: { Bucket, Key: 'big/blob.bin', Body: Readable.from(chunks()) },
      partSize: 5 * 1024 * 1024,
    }).done();
    const got = await aws.clients.s3.send(new GetObjectCommand({ Bucket, Key: 'big/blob.bin' }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    expect(body.length).toBe(data.length);
    expect(sha256(body)).toBe(sha256(data));
  });

  it('streams generated customers into the raw bucket and reads back every row valid', async () => {
    const summary = await writeRawData(aws.clients.s3, aws.names.raw, {
      rows: 80_000,
      seed: 5,
      asOf: new Date('2026-11-01T00:00:00Z'),
    });
    expect(summary.rows).toBe(80_000);
    const listed = await aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: aws.names.raw, Prefix: 'raw/' }),
    );
    expect(listed.Contents?.map((object) => object.Key)).toContain(summary.key);
    const got = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.raw, Key: summary.key }));
    // More than one upload part, every byte of it.
    expect(summary.bytes).toBeGreaterThan(PART_BYTES);
    expect(got.ContentLength).toBe(summary.bytes);
    let rows = 0;
    let churned = 0;
    for await (const row of (got.Body as Readable).pipe(parse({ columns: true }))) {
      const parsed = parseLabeledCsvRecord(row);
      if (!parsed.success) throw new Error(`row ${rows + 1}: ${parsed.error.message}`);
      rows++;
      churned += parsed.data.churned;
    }
    expect(rows).toBe(80_000);
    expect(churned / rows).toBeCloseTo(summary.churnRate, 10);
  });

  it('writes every field of the raw schema it is given, a new one filled from its synthetic values', async () => {
    const options = { rows: 2000, seed: 6, asOf: new Date('2026-11-01T00:00:00Z'), schema: WITH_LOGINS };
    const summary = await writeRawData(aws.clients.s3, aws.names.raw, options);
    const got = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.raw, Key: summary.key }));
    const text = await got.Body!.transformToString();
    const [header, ...lines] = text.trimEnd().split('\n');
    expect(header).toBe(
      [...new Set([...CSV_COLUMNS.slice(0, -1), 'logins_30d']), 'event_time', 'churned'].join(','),
    );
    expect(lines).toHaveLength(2000);
    expect(text).not.toContain('undefined');
    const at = header!.split(',').indexOf('logins_30d');
    expect(lines.every((line) => /^\d+$/.test(line.split(',')[at]!))).toBe(true);
    // A field without synthetic values is refused before anything is uploaded.
    const { synthetic: _, ...undeclared } = LOGINS_30D;
    await expect(
      writeRawData(aws.clients.s3, aws.names.raw, {
        ...options,
        schema: { ...RAW_FIELDS, logins_30d: undeclared },
      }),
    ).rejects.toThrow(/raw field "logins_30d" has no synthetic values/);
  });
});

describe('DynamoDB through the shared document client', () => {
  it('puts, gets and batch-writes items in the online-features table', async () => {
    const TableName = aws.names.onlineFeatures;
    await aws.clients.dynamo.send(
      new PutCommand({
        TableName,
        Item: { customer_id: 'c-000001', income: 50_000.5, plan: 'basic', gone: undefined },
      }),
    );
    const got = await aws.clients.dynamo.send(
      new GetCommand({ TableName, Key: { customer_id: 'c-000001' } }),
    );
    expect(got.Item).toEqual({ customer_id: 'c-000001', income: 50_000.5, plan: 'basic' });

    const items = Array.from({ length: 25 }, (_, i) => ({
      customer_id: `c-1${String(i).padStart(5, '0')}`,
      n: i,
    }));
    await aws.clients.dynamo.send(
      new BatchWriteCommand({
        RequestItems: { [TableName]: items.map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    const last = await aws.clients.dynamo.send(
      new GetCommand({ TableName, Key: { customer_id: 'c-100024' } }),
    );
    expect(last.Item).toEqual({ customer_id: 'c-100024', n: 24 });
  });

  it('queries the registry table by partition and sort key', async () => {
    const TableName = aws.names.modelRegistry;
    for (const sk of ['VERSION#000002', 'VERSION#000001', 'ALIAS#champion']) {
      await aws.clients.dynamo.send(new PutCommand({ TableName, Item: { pk: 'MODEL#churn', sk } }));
    }
    const result = await aws.clients.dynamo.send(
      new QueryCommand({
        TableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': 'MODEL#churn', ':prefix': 'VERSION#' },
      }),
    );
    expect(result.Items?.map((item) => item.sk)).toEqual(['VERSION#000001', 'VERSION#000002']);
  });
});
