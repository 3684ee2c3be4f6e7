import { BatchGetItemCommand, BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RawRecord } from '#shared/features/index.ts';
import { fromItem, type Item, toItem } from './items.ts';

/**
 * The online feature store: one DynamoDB item per customer holding the latest raw record and its event
 * time. Reads and writes go in DynamoDB's batch sizes, and whatever a batch leaves unprocessed is
 * retried with exponential backoff and full jitter until done (or the attempts run out).
 */
export interface OnlineStoreDeps {
  /**
   * The store sends DynamoDB's own commands with its own item conversion, so any client does: the
   * document client of a pipeline, or a server's plain read client (`createDynamoClient`'s `cacheMiddleware`).
   */
  readonly dynamo: Pick<DynamoDBClient, 'send'>;
  readonly table: string;
  /** Sleep between retries (tests pass a fake). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Source of jitter in [0, 1). */
  readonly random?: () => number;
}

const WRITE_BATCH = 25;
const READ_BATCH = 100;
const MAX_ATTEMPTS = 10;
const BASE_DELAY_MS = 25;
const MAX_DELAY_MS = 2_000;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class UnprocessedItemsError extends Error {
  constructor(
    what: string,
    readonly remaining: number,
  ) {
    super(`${remaining} ${what} still unprocessed after ${MAX_ATTEMPTS} attempts`);
    this.name = 'UnprocessedItemsError';
  }
}

function backoff(deps: OnlineStoreDeps, attempt: number): Promise<void> {
  const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return (deps.sleep ?? defaultSleep)(Math.floor((deps.random ?? Math.random)() * cap));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Writes records (last write wins per customer); returns how many items DynamoDB accepted. */
export async function writeRecords(deps: OnlineStoreDeps, records: readonly RawRecord[]): Promise<number> {
  let written = 0;
  for (const batch of chunks(records, WRITE_BATCH)) written += await writeBatch(deps, batch);
  return written;
}

/** One `BatchWriteItem` of up to 25 records, its unprocessed items retried; returns how many were accepted. */
async function writeBatch(deps: OnlineStoreDeps, batch: readonly RawRecord[]): Promise<number> {
  let written = 0;
  let pending = batch.map((record) => ({ PutRequest: { Item: toItem(record) } }));
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt >= MAX_ATTEMPTS) throw new UnprocessedItemsError('writes', pending.length);
    if (attempt > 0) await backoff(deps, attempt);
    const result = await deps.dynamo.send(
      new BatchWriteItemCommand({ RequestItems: { [deps.table]: pending } }),
    );
    const unprocessed = (result.UnprocessedItems?.[deps.table] ?? []) as typeof pending;
    written += pending.length - unprocessed.length;
    pending = unprocessed;
  }
  return written;
}

/** The `BatchWriteItem` calls a {@link RecordWriter} keeps in flight by default. */
export const WRITES_IN_FLIGHT = 4;

/**
 * Writes records as they come, in batches of 25 with up to `inFlight` batches in flight, so that the
 * store is kept busy while the caller produces the next records and memory holds `inFlight + 1`
 * batches, whatever the number of records. A record must not repeat a customer of its own batch
 * (DynamoDB refuses such a batch): one writer per set of distinct customers.
 */
export interface RecordWriter {
  /** Takes a record; the promise, when there is one, resolves once the writer has room for more. */
  write(record: RawRecord): Promise<void> | undefined;
  /** Sends the last batch and waits for every write; how many items DynamoDB accepted. A failed write fails it. */
  close(): Promise<number>;
}

export function createRecordWriter(deps: OnlineStoreDeps, inFlight = WRITES_IN_FLIGHT): RecordWriter {
  if (!Number.isInteger(inFlight) || inFlight < 1) throw new Error(`inFlight must be ≥ 1 (got ${inFlight})`);
  let batch: RawRecord[] = [];
  let written = 0;
  let failure: { error: unknown } | undefined;
  const sending = new Set<Promise<void>>();
  const send = () => {
    const records = batch;
    batch = [];
    const call: Promise<void> = writeBatch(deps, records).then(
      (count) => {
        written += count;
        sending.delete(call);
      },
      (error: unknown) => {
        failure ??= { error };
        sending.delete(call);
      },
    );
    sending.add(call);
  };
  const check = () => {
    if (failure) throw failure.error;
  };
  return {
    write(record) {
      check();
      batch.push(record);
      if (batch.length < WRITE_BATCH) return undefined;
      send();
      return sending.size < inFlight ? undefined : Promise.race(sending).then(check);
    },
    async close() {
      if (batch.length > 0) send();
      await Promise.all(sending);
      check();
      return written;
    },
  };
}

export async function getRecord(deps: OnlineStoreDeps, customerId: string): Promise<RawRecord | undefined> {
  return (await getRecords(deps, [customerId])).get(customerId);
}

/**
 * Reads many customers; the map has an entry for each id found. Strongly consistent (1 read unit per
 * item instead of 0.5): a write that completed before the read is in its answer, as the serving
 * contract promises; an eventually consistent read may miss it for about a second, with no bound AWS states.
 */
export async function getRecords(
  deps: OnlineStoreDeps,
  customerIds: readonly string[],
): Promise<Map<string, RawRecord>> {
  const found = new Map<string, RawRecord>();
  for (const batch of chunks([...new Set(customerIds)], READ_BATCH)) {
    let keys: Item[] = batch.map((id) => ({ customer_id: { S: id } }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt >= MAX_ATTEMPTS) throw new UnprocessedItemsError('reads', keys.length);
      if (attempt > 0) await backoff(deps, attempt);
      const result = await deps.dynamo.send(
        new BatchGetItemCommand({ RequestItems: { [deps.table]: { Keys: keys, ConsistentRead: true } } }),
      );
      for (const item of result.Responses?.[deps.table] ?? []) {
        const record = fromItem(item) as RawRecord;
        found.set(record.customer_id, record);
      }
      keys = result.UnprocessedKeys?.[deps.table]?.Keys ?? [];
    }
  }
  return found;
}

/** Reads customers by id; the map has an entry for each id found. */
export type RecordReader = (customerIds: readonly string[]) => Promise<Map<string, RawRecord>>;

/** Calls a {@link coalescedReader} keeps in flight at once; later reads queue for the next. */
export const READS_IN_FLIGHT = 2;

interface QueuedRead {
  readonly ids: ReadonlySet<string>;
  readonly resolve: (found: Map<string, RawRecord>) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * {@link getRecords} for a server: the reads of concurrent requests are joined into shared
 * `BatchGetItem` calls of up to 100 keys (as high-throughput feature servers read DynamoDB), instead of
 * one call each. At most {@link READS_IN_FLIGHT} calls are out at once; reads that arrive meanwhile wait
 * for the next call, which takes all of them, so the busier the server the more each call carries and
 * the less each request costs. A read is only ever answered by a call sent after the request asked
 * for it, so a write completed before that request is as visible as to a read of its own; a failed
 * call fails every request that shared it.
 */
export function coalescedReader(deps: OnlineStoreDeps): RecordReader {
  const queue: QueuedRead[] = [];
  let inFlight = 0;
  let scheduled = false;
  const send = () => {
    scheduled = false;
    while (inFlight < READS_IN_FLIGHT && queue.length > 0) {
      const sharers: QueuedRead[] = [];
      const ids = new Set<string>();
      while (queue.length > 0 && (sharers.length === 0 || ids.size + queue[0]!.ids.size <= READ_BATCH)) {
        const read = queue.shift()!;
        sharers.push(read);
        for (const id of read.ids) ids.add(id);
      }
      inFlight++;
      getRecords(deps, [...ids])
        .then(
          (found) => {
            for (const read of sharers) read.resolve(found);
          },
          (error: unknown) => {
            for (const read of sharers) read.reject(error);
          },
        )
        .finally(() => {
          inFlight--;
          send();
        });
    }
  };
  return (customerIds) => {
    const wanted = new Set(customerIds);
    if (wanted.size === 0) return Promise.resolve(new Map());
    return new Promise((resolve, reject) => {
      queue.push({
        ids: wanted,
        resolve: (found) => {
          const mine = new Map<string, RawRecord>();
          for (const id of wanted) {
            const record = found.get(id);
            if (record) mine.set(id, record);
          }
          resolve(mine);
        },
        reject,
      });
      // Reads asked for in this turn of the event loop go out together.
      if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    });
  };
}

/** Age of a record relative to `now`; records older than `maxAgeMs` are reported as stale. */
export function freshness(record: Pick<RawRecord, 'event_time'>, now: Date, maxAgeMs: number) {
  const ageMs = now.getTime() - Date.parse(record.event_time);
  return { ageMs, stale: ageMs > maxAgeMs };
}
