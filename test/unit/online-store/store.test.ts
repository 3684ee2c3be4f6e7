import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import type { RawRecord } from '#shared/features/index.ts';
import { freshness, getRecords, UnprocessedItemsError, writeRecords } from '#shared/online-store/store.ts';

// No local server returns UnprocessedItems/UnprocessedKeys on demand, so these paths use a mocked client.
const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const mock = mockClient(dynamo);
const table = 'online';
const sleeps: number[] = [];
const deps = {
  dynamo,
  table,
  sleep: async (ms: number) => {
    sleeps.push(ms);
  },
  random: () => 0.5,
};
const records: RawRecord[] = [
  ...generateRecords({ rows: 60, seed: 1, asOf: new Date('2026-11-01T00:00:00Z') }),
].map(({ churned: _label, ...raw }) => raw);

beforeEach(() => {
  mock.reset();
  sleeps.length = 0;
});

describe('online store batching and retries', () => {
  it('writes in chunks of 25 and retries unprocessed items with growing, jittered backoff', async () => {
    let calls = 0;
    mock.on(BatchWriteItemCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => {
      calls++;
      const items = input.RequestItems[table]!;
      // The first attempt of each chunk leaves its last two items unprocessed.
      return calls % 2 === 1 && items.length > 2 ? { UnprocessedItems: { [table]: items.slice(-2) } } : {};
    });
    expect(await writeRecords(deps, records)).toBe(60);
    const sizes = mock
      .commandCalls(BatchWriteItemCommand)
      .map((c) => c.args[0].input.RequestItems![table]!.length);
    expect(sizes).toEqual([25, 2, 25, 2, 10, 2]);
    expect(sleeps).toEqual([25, 25, 25]); // attempt 1: 0.5 × min(2000, 25 × 2¹)
  });

  it('gives up with a clear error when items stay unprocessed', async () => {
    mock.on(BatchWriteItemCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => ({
      UnprocessedItems: { [table]: input.RequestItems[table]! },
    }));
    await expect(writeRecords(deps, records.slice(0, 3))).rejects.toThrow(UnprocessedItemsError);
    expect(sleeps).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('reads in chunks of 100, deduplicates ids and retries unprocessed keys', async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `c-${i}`);
    let first = true;
    mock
      .on(BatchGetItemCommand)
      .callsFake((input: { RequestItems: Record<string, { Keys: { customer_id: AttributeValue }[] }> }) => {
        const keys = input.RequestItems[table]!.Keys;
        const served = first ? keys.slice(0, 10) : keys;
        const unprocessed = first ? keys.slice(10) : [];
        first = false;
        return {
          Responses: { [table]: served.map((k) => ({ customer_id: k.customer_id })) },
          ...(unprocessed.length > 0 ? { UnprocessedKeys: { [table]: { Keys: unprocessed } } } : {}),
        };
      });
    const found = await getRecords(deps, [...ids, ...ids.slice(0, 5)]);
    expect(found.size).toBe(150);
    const sizes = mock
      .commandCalls(BatchGetItemCommand)
      .map((c) => c.args[0].input.RequestItems![table]!.Keys!.length);
    expect(sizes).toEqual([100, 90, 50]);
  });

  it('reports stale records instead of hiding their age', () => {
    const now = new Date('2026-11-10T00:00:00Z');
    expect(freshness({ event_time: '2026-11-09T00:00:00Z' }, now, 2 * 86_400_000)).toEqual({
      ageMs: 86_400_000,
      stale: false,
    });
    expect(freshness({ event_time: '2026-11-01T00:00:00Z' }, now, 2 * 86_400_000).stale).toBe(true);
  });
});
