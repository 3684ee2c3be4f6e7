import type { AddressInfo } from 'node:net';
import {
  BatchGetItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  installTableDescriptionCache,
  keepTableDescriptions,
  type TableDescriptions,
} from '#local/dynalite-tables.ts';
import { localCredentials } from '#shared/aws/clients.ts';

/** Table descriptions in a Map, answered asynchronously as LevelDB does; counts the reads that reach it. */
function storedDescriptions() {
  const values = new Map<string, string>();
  const reads = { count: 0 };
  const later = (fn: () => void) => setTimeout(fn, 5);
  const tables: TableDescriptions = {
    get(key, callback) {
      reads.count++;
      const value = values.get(key);
      // The value as it was when the read started, delivered later: a write may land in between.
      later(() =>
        value === undefined
          ? callback(Object.assign(new Error('NotFound'), { name: 'NotFoundError' }))
          : callback(null, JSON.parse(value)),
      );
    },
    put(key, value, callback) {
      later(() => {
        values.set(key, JSON.stringify(value));
        callback?.(null);
      });
    },
    del(key, callback) {
      later(() => {
        values.delete(key);
        callback?.(null);
      });
    },
    batch(operations, callback) {
      later(() => {
        for (const { key } of operations) values.delete(key);
        callback?.(null);
      });
    },
  };
  return { tables, reads };
}

const read = (tables: TableDescriptions, key: string) =>
  new Promise<unknown>((resolve, reject) =>
    tables.get(key, (error, value) => (error ? reject(error) : resolve(value))),
  );
const write = (tables: TableDescriptions, key: string, value: unknown) =>
  new Promise<void>((resolve, reject) =>
    tables.put(key, value, (error) => (error ? reject(error) : resolve())),
  );

describe('keepTableDescriptions', () => {
  it('reads a description from the store once, and gives every caller its own copy', async () => {
    const { tables, reads } = storedDescriptions();
    await write(tables, 'orders', { TableStatus: 'ACTIVE', KeySchema: [{ AttributeName: 'id' }] });
    keepTableDescriptions(tables);
    const first = (await read(tables, 'orders')) as { TableStatus: string };
    first.TableStatus = 'changed by a caller';
    const again = await Promise.all([read(tables, 'orders'), read(tables, 'orders')]);
    expect(again).toEqual([
      { TableStatus: 'ACTIVE', KeySchema: [{ AttributeName: 'id' }] },
      { TableStatus: 'ACTIVE', KeySchema: [{ AttributeName: 'id' }] },
    ]);
    expect(reads.count).toBe(1);
  });

  it('reads it again after a put, a delete or a batch, and keeps no read that a write overtook', async () => {
    const { tables, reads } = storedDescriptions();
    keepTableDescriptions(tables);
    await write(tables, 'orders', { v: 1 });
    expect(await read(tables, 'orders')).toEqual({ v: 1 });
    await write(tables, 'orders', { v: 2 });
    expect(await read(tables, 'orders')).toEqual({ v: 2 });
    expect(reads.count).toBe(2);

    // A read under way when a write lands returns what it read, and is not kept.
    const racing = read(tables, 'orders');
    const writing = write(tables, 'orders', { v: 3 });
    expect(await racing).toEqual({ v: 2 });
    await writing;
    expect(await read(tables, 'orders')).toEqual({ v: 3 });
    // Nor one that started while a write was under way, and read what was there before it.
    const writingFirst = write(tables, 'orders', { v: 3.5 });
    const during = read(tables, 'orders');
    await writingFirst;
    expect(await during).toEqual({ v: 3 });
    expect(await read(tables, 'orders')).toEqual({ v: 3.5 });

    await new Promise<void>((resolve) => tables.del('orders', () => resolve()));
    await expect(read(tables, 'orders')).rejects.toThrow('NotFound');
    await write(tables, 'orders', { v: 4 });
    expect(await read(tables, 'orders')).toEqual({ v: 4 });
    await new Promise<void>((resolve) => tables.batch([{ key: 'orders' }], () => resolve()));
    await expect(read(tables, 'orders')).rejects.toThrow('NotFound');
  });
});

describe('the embedded DynamoDB with its table descriptions kept', () => {
  let server: ReturnType<typeof dynalite>;
  let client: DynamoDBClient;
  beforeAll(async () => {
    installTableDescriptionCache();
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: localCredentials(),
    });
  });
  afterAll(async () => {
    client?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  const create = (TableName: string, key: string) =>
    client.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );

  it('sees a table deleted, then created again with another key, and a table updated', async () => {
    await create('keel-tables', 'id');
    await client.send(new PutItemCommand({ TableName: 'keel-tables', Item: { id: { S: 'a' } } }));
    const got = await client.send(
      new BatchGetItemCommand({
        RequestItems: { 'keel-tables': { Keys: [{ id: { S: 'a' } }, { id: { S: 'b' } }] } },
      }),
    );
    expect(got.Responses?.['keel-tables']).toEqual([{ id: { S: 'a' } }]);

    await client.send(new DeleteTableCommand({ TableName: 'keel-tables' }));
    await expect(
      client.send(new GetItemCommand({ TableName: 'keel-tables', Key: { id: { S: 'a' } } })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

    await create('keel-tables', 'pk');
    await expect(
      client.send(new PutItemCommand({ TableName: 'keel-tables', Item: { id: { S: 'a' } } })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await client.send(new PutItemCommand({ TableName: 'keel-tables', Item: { pk: { S: 'a' } } }));

    await client.send(
      new UpdateTableCommand({
        TableName: 'keel-tables',
        BillingMode: 'PROVISIONED',
        ProvisionedThroughput: { ReadCapacityUnits: 7, WriteCapacityUnits: 3 },
      }),
    );
    const described = await client.send(new DescribeTableCommand({ TableName: 'keel-tables' }));
    expect(described.Table?.ProvisionedThroughput).toMatchObject({
      ReadCapacityUnits: 7,
      WriteCapacityUnits: 3,
    });
  });
});
