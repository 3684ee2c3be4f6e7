import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BulkAdmission } from '#local/bulk-admission.ts';
import { functionOf, loadLocalDeployment } from '#local/deployment/deployment.ts';
import { type LocalServers, startLocalServers } from '#local/servers.ts';
import { type AwsClients, createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { RawRecord } from '#shared/features/index.ts';
import { toItem } from '#shared/online-store/items.ts';
import { getRecords } from '#shared/online-store/store.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { roleClients } from '../support/aws.ts';

/**
 * The embedded DynamoDB's bulk calls wait for their admission (local/bulk-admission.ts, whose policy
 * is unit-tested) with their bodies intact, whichever way they came in: a role session's call, whose
 * body the rules proxy has already read, or the operator's, which streams through. A caller that gives
 * up while held frees its place and writes nothing. Here a hand-driven admission holds every bulk call.
 */
interface Held {
  admit(): void;
  released: boolean;
}
const held: Held[] = [];
const handDriven: BulkAdmission = {
  admit(operation) {
    if (operation !== 'BatchWriteItem') return undefined;
    return new Promise((resolve) => {
      const entry: Held = {
        released: false,
        admit: () =>
          resolve(() => {
            entry.released = true;
          }),
      };
      held.push(entry);
    });
  },
};

let home: string;
let servers: LocalServers;
let operator: AwsClients;
let chunk: AwsClients;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'keel-admission-'));
  servers = await startLocalServers({
    home,
    s3Port: 0,
    dynamoPort: 0,
    environment: LOCAL_ENVIRONMENT,
    bulkAdmission: handDriven,
  });
  operator = createAwsClients(servers.target);
  const etlChunk = functionOf(await loadLocalDeployment(), 'lambdas/etl/handler.ts', 'chunk');
  chunk = roleClients(servers.target, etlChunk.roleArn, etlChunk.name);
});
afterAll(async () => {
  for (const entry of held) entry.admit();
  for (const clients of [operator, chunk]) {
    clients?.s3.destroy();
    clients?.dynamo.destroy();
  }
  await servers?.close();
  await rm(home, { recursive: true, force: true });
});

const records = [...generateRecords({ rows: 75, seed: 3, asOf: new Date('2026-11-01T00:00:00Z') })].map(
  ({ churned: _, ...record }) => record as RawRecord,
);

const writeBatch = (clients: AwsClients, batch: readonly RawRecord[], abortSignal?: AbortSignal) =>
  clients.dynamo.send(
    new BatchWriteItemCommand({
      RequestItems: {
        [servers.names.onlineFeatures]: batch.map((record) => ({ PutRequest: { Item: toItem(record) } })),
      },
    }),
    { abortSignal },
  );

/** Waits until `condition` holds (bounded: 5 s). */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within 5 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const stored = (batch: readonly RawRecord[]) =>
  getRecords(
    { dynamo: operator.dynamo, table: servers.names.onlineFeatures },
    batch.map((r) => r.customer_id),
  );

describe('bulk calls held by the admission', () => {
  it('run once admitted, with their bodies, from a role session and from the operator; reads pass meanwhile', async () => {
    const fromRole = records.slice(0, 25);
    const fromOperator = records.slice(25, 50);
    const writes = [writeBatch(chunk, fromRole), writeBatch(operator, fromOperator)];
    await until(() => held.length >= 2, 'two calls held');
    // Held: nothing written yet, and point reads are answered meanwhile.
    expect((await stored([...fromRole, ...fromOperator])).size).toBe(0);
    for (const entry of held) entry.admit();
    const results = await Promise.all(writes);
    expect(results.map((r) => Object.keys(r.UnprocessedItems ?? {}))).toEqual([[], []]);
    const found = await stored([...fromRole, ...fromOperator]);
    for (const record of [...fromRole, ...fromOperator])
      expect(found.get(record.customer_id)).toEqual(record);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(held.map((entry) => entry.released)).toEqual([true, true]);
  });

  it('a call whose caller gave up while it was held frees its place once admitted, and writes nothing', async () => {
    held.length = 0;
    const aborts = new AbortController();
    const batch = records.slice(50, 75);
    const given = writeBatch(operator, batch, aborts.signal).catch((error: Error) => error);
    await until(() => held.length >= 1, 'one call held');
    aborts.abort();
    expect(await given).toMatchObject({ name: 'AbortError' });
    // The server (in this process) sees the connection close once its event loop turns.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Admitted after its caller left: it frees its place at once and never runs.
    held[0]!.admit();
    await until(() => held[0]!.released, 'its place freed');
    expect(held[0]!.released).toBe(true);
    expect((await stored(batch)).size).toBe(0);
  });
});
