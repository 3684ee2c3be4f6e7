import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient, createDynamoClient, SERVING_TIMEOUTS } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { RawRecord } from '#shared/features/index.ts';
import { coalescedReader, READS_IN_FLIGHT, writeRecords } from '#shared/online-store/store.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';

/**
 * The server's reads of the online store against the local DynamoDB, through the client a server reads
 * with (its middleware built once per command), counting the calls that reach it.
 */
let aws: TestAws;
let batchGets = 0;
let consistentBatchGets = 0;
const records: RawRecord[] = [...generateRecords({ rows: 150, seed: 4, asOf: new Date() })].map(
  ({ churned: _label, ...raw }) => raw,
);

beforeAll(async () => {
  aws = await startTestAws();
  await writeRecords({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures }, records);
});
afterAll(async () => {
  await aws?.close();
});

const serverReadClient = (target = aws.target) =>
  createDynamoClient(target, SERVING_TIMEOUTS, { cacheMiddleware: true });

function countingStore(delayMs = 0) {
  const dynamo = serverReadClient();
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (/BatchGet/.test(context.commandName ?? '')) {
        batchGets++;
        const input = args.input as { RequestItems: Record<string, { ConsistentRead?: boolean }> };
        if (input.RequestItems[aws.names.onlineFeatures]?.ConsistentRead === true) consistentBatchGets++;
      }
      return next(args);
    },
    { step: 'initialize' },
  );
  return { dynamo, table: aws.names.onlineFeatures };
}

describe('coalescedReader', () => {
  it('joins concurrent requests into BatchGetItem calls of at most 100 keys, each answered with its own', async () => {
    const store = countingStore();
    expect(store.dynamo.config.cacheMiddleware).toBe(true);
    const read = coalescedReader(store);
    batchGets = 0;
    const answers = await Promise.all(records.map((record) => read([record.customer_id, 'c-unknown'])));
    expect(batchGets).toBe(Math.ceil(records.length / 99));
    expect(answers.map((answer) => [...answer.values()])).toEqual(records.map((record) => [record]));
    store.dynamo.destroy();
  });

  it('reads a write that completed before the request, and sends each later turn its own call', async () => {
    const store = countingStore();
    const read = coalescedReader(store);
    const customer = records[0]!;
    await writeRecords(store, [{ ...customer, orders: customer.orders + 7 }]);
    batchGets = 0;
    consistentBatchGets = 0;
    expect((await read([customer.customer_id])).get(customer.customer_id)?.orders).toBe(customer.orders + 7);
    expect((await read([customer.customer_id])).size).toBe(1);
    expect(batchGets).toBe(2);
    // The local DynamoDB is always consistent; DynamoDB is only when asked, so every read asks.
    expect(consistentBatchGets).toBe(2);
    store.dynamo.destroy();
  });

  it("reads over another client's connections, as a predict process reads over its document client's", async () => {
    const documents = createDocumentClient(aws.target, SERVING_TIMEOUTS);
    const reads = createDynamoClient(aws.target, SERVING_TIMEOUTS, {
      cacheMiddleware: true,
      shareConnectionsWith: documents,
    });
    expect(reads.config.requestHandler).toBe(documents.config.requestHandler);
    expect(await reads.config.maxAttempts()).toBe(SERVING_TIMEOUTS.maxAttempts);
    const read = coalescedReader({ dynamo: reads, table: aws.names.onlineFeatures });
    // Customers no other test changes.
    const customers = records.slice(10, 13);
    const found = await read(customers.map((record) => record.customer_id));
    expect([...found.values()]).toEqual(customers);
    documents.destroy();
  });

  it(`keeps at most ${READS_IN_FLIGHT} calls in flight; reads of later turns wait and share the next call`, async () => {
    const store = countingStore(100);
    const read = coalescedReader(store);
    batchGets = 0;
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const answers: Promise<Map<string, RawRecord>>[] = [];
    // Each read in a turn of its own: the first two go out alone, the next five wait for a free slot.
    for (const record of records.slice(0, READS_IN_FLIGHT + 5)) {
      answers.push(read([record.customer_id]));
      await turn();
    }
    const found = await Promise.all(answers);
    expect(found.map((answer) => [...answer.keys()])).toEqual(
      records.slice(0, READS_IN_FLIGHT + 5).map((record) => [record.customer_id]),
    );
    expect(batchGets).toBe(READS_IN_FLIGHT + 1);
    store.dynamo.destroy();
  });

  it('fails every request that shared a failed call, and the next ones read again', async () => {
    const dead = serverReadClient({
      region: 'us-east-1',
      endpoints: { s3: 'http://127.0.0.1:9', dynamodb: 'http://127.0.0.1:9' },
    });
    const read = coalescedReader({
      dynamo: dead,
      table: aws.names.onlineFeatures,
      sleep: async () => undefined,
    });
    const outcomes = await Promise.allSettled([read(['a']), read(['b']), read(['c'])]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    dead.destroy();
    expect((await coalescedReader(countingStore())([records[1]!.customer_id])).size).toBe(1);
  });
});
