import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { ClassicLevel } from 'classic-level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedOpenOptions, installLevelDbBounds, LEVELDB_OPEN_DEFAULTS } from '#local/leveldb-bounds.ts';
import { type LocalServers, startLocalServers } from '#local/servers.ts';
import { type AwsClients, createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { RawRecord } from '#shared/features/index.ts';
import { toItem } from '#shared/online-store/items.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

/**
 * The embedded DynamoDB closes the LevelDB iterator behind every Scan and Query page (local/leveldb-bounds.ts):
 * each one left open pinned the table files it had mapped, so a long scan kept the whole table in the
 * storage process's memory. LevelDB's own iterators are counted as they open and close.
 */
type Native = { _iterator(...args: unknown[]): { close(): Promise<void> } };
const native = ClassicLevel.prototype as unknown as Native;
const openIterators = new Set<object>();
let iteratorsOpened = 0;
const originalIterator = native._iterator;

let home: string;
let servers: LocalServers;
let operator: AwsClients;

beforeAll(async () => {
  native._iterator = function (this: unknown, ...args: unknown[]) {
    const iterator = originalIterator.apply(this, args);
    iteratorsOpened += 1;
    openIterators.add(iterator);
    const close = iterator.close.bind(iterator);
    iterator.close = () => close().finally(() => openIterators.delete(iterator));
    return iterator;
  };
  home = await mkdtemp(join(tmpdir(), 'keel-leveldb-'));
  servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  operator = createAwsClients(servers.emulators);
  const records = [...generateRecords({ rows: 60, seed: 5, asOf: new Date('2026-11-01T00:00:00Z') })].map(
    ({ churned: _, ...record }) => record as RawRecord,
  );
  for (let i = 0; i < records.length; i += 25)
    await operator.dynamo.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [servers.names.onlineFeatures]: records
            .slice(i, i + 25)
            .map((record) => ({ PutRequest: { Item: toItem(record) } })),
        },
      }),
    );
});
afterAll(async () => {
  native._iterator = originalIterator;
  operator?.dynamo.destroy();
  operator?.s3.destroy();
  await servers?.close();
  await rm(home, { recursive: true, force: true });
});

const settled = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('the embedded DynamoDB and its LevelDB', () => {
  it('closes the iterator of every Scan page, a page cut short by its Limit included', async () => {
    await settled();
    const before = iteratorsOpened;
    let pages = 0;
    let scanned = 0;
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await operator.dynamo.send(
        new ScanCommand({ TableName: servers.names.onlineFeatures, Limit: 7, ExclusiveStartKey }),
      );
      pages += 1;
      scanned += page.Items?.length ?? 0;
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    await settled();
    expect(scanned).toBe(60);
    expect(iteratorsOpened - before).toBeGreaterThanOrEqual(pages);
    expect(openIterators.size).toBe(0);
  });

  it('closes the iterator of a Query page', async () => {
    const before = iteratorsOpened;
    const page = await operator.dynamo.send(
      new QueryCommand({
        TableName: servers.names.onlineFeatures,
        KeyConditionExpression: 'customer_id = :id',
        ExpressionAttributeValues: { ':id': { S: 'nobody' } },
      }),
    );
    await settled();
    expect(page.Items).toEqual([]);
    expect(iteratorsOpened - before).toBeGreaterThanOrEqual(1);
    expect(openIterators.size).toBe(0);
  });

  it('opens LevelDB with bounded open tables and table size unless told otherwise', () => {
    expect(boundedOpenOptions({ createIfMissing: true })).toEqual({
      ...LEVELDB_OPEN_DEFAULTS,
      createIfMissing: true,
    });
    expect(boundedOpenOptions({ maxOpenFiles: 500 })).toEqual({
      ...LEVELDB_OPEN_DEFAULTS,
      maxOpenFiles: 500,
    });
    // LevelDB raises anything under 74 to 74 (64 tables); a lower default would mislead a reader.
    expect(LEVELDB_OPEN_DEFAULTS.maxOpenFiles).toBeGreaterThanOrEqual(74);
  });

  it('corrects the classes once, however often it is installed', () => {
    const open = (ClassicLevel.prototype as unknown as { _open: unknown })._open;
    installLevelDbBounds();
    expect((ClassicLevel.prototype as unknown as { _open: unknown })._open).toBe(open);
  });

  // /proc/self/maps lists the files mapped into this process (Linux, where CI runs).
  it.runIf(process.platform === 'linux')(
    'keeps at most 64 of its table files mapped, however many the table has',
    async () => {
      installLevelDbBounds();
      const location = join(home, 'many-tables');
      // A small write buffer: every batch below is flushed as a table of its own (~100 KiB), and as their
      // keys do not overlap, LevelDB moves them down the levels as they are rather than merging them.
      const db = new ClassicLevel<string, string>(location, { writeBufferSize: 64 * 1024 });
      for (let batch = 0; batch < 90; batch++)
        await db.batch(
          Array.from({ length: 500 }, (_, i) => ({
            type: 'put' as const,
            key: `k${String(batch * 500 + i).padStart(6, '0')}`,
            value: randomBytes(100).toString('hex'), // incompressible: the tables stay many
          })),
        );
      const tablesMapped = () =>
        readFileSync('/proc/self/maps', 'utf8')
          .split('\n')
          .filter((line) => line.includes(`${location}/`) && line.endsWith('.ldb')).length;
      let read = 0;
      let mostMapped = 0;
      for await (const _ of db.keys()) {
        read += 1;
        if (read % 500 === 0) mostMapped = Math.max(mostMapped, tablesMapped());
      }
      const tables = (await readdir(location)).filter((name) => name.endsWith('.ldb')).length;
      await db.close();
      expect(read).toBe(45_000);
      expect(tables).toBeGreaterThan(80);
      expect(mostMapped).toBeGreaterThan(0);
      expect(mostMapped).toBeLessThanOrEqual(64);
    },
  );
});
