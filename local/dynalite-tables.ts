import { createRequire } from 'node:module';

type Callback = (error?: Error | null, value?: unknown) => void;

/** The key-value view dynalite keeps its table descriptions in (one prefix of its LevelDB). */
export interface TableDescriptions {
  get(key: string, callback: Callback): void;
  put(key: string, value: unknown, callback?: Callback): void;
  del(key: string, callback?: Callback): void;
  batch(operations: readonly { readonly key: string }[], callback?: Callback): void;
}

/**
 * dynalite reads a table's description from LevelDB before every item it touches: a BatchGetItem of
 * k keys reads it k + 1 times, a BatchWriteItem of 25 items 26 times, each read one more LevelDB lookup
 * on the libuv thread pool and one more JSON decode. Only CreateTable, UpdateTable and DeleteTable
 * write descriptions, through the same view's put and del, so each one can be kept in memory and
 * forgotten at every write. It is kept encoded, so that no caller sees another's changes to its copy,
 * and a read that was under way when a write came is not kept.
 */
export function keepTableDescriptions(tables: TableDescriptions): void {
  const kept = new Map<string, string>();
  const writes = new Map<string, number>();
  const forget = (key: string) => {
    kept.delete(key);
    writes.set(key, (writes.get(key) ?? 0) + 1);
  };
  // Forgotten when a write starts (reads after it must not get the old one) and when it ends (a read
  // begun in between may have read the old one).
  const forgetting = (keys: readonly string[], callback: Callback | undefined): Callback => {
    for (const key of keys) forget(key);
    return (error, value) => {
      for (const key of keys) forget(key);
      callback?.(error, value);
    };
  };
  const { get, put, del, batch } = tables;
  tables.get = function (this: unknown, key, callback) {
    const copy = kept.get(key);
    if (copy !== undefined) {
      process.nextTick(callback, null, JSON.parse(copy));
      return;
    }
    const before = writes.get(key) ?? 0;
    get.call(this, key, (error, value) => {
      if (!error && value !== undefined && (writes.get(key) ?? 0) === before)
        kept.set(key, JSON.stringify(value));
      callback(error, value);
    });
  };
  tables.put = function (this: unknown, key, value, callback) {
    put.call(this, key, value, forgetting([key], callback));
  };
  tables.del = function (this: unknown, key, callback) {
    del.call(this, key, forgetting([key], callback));
  };
  tables.batch = function (this: unknown, operations, callback) {
    batch.call(
      this,
      operations,
      forgetting(
        operations.map((operation) => operation.key),
        callback,
      ),
    );
  };
}

const INSTALLED = Symbol.for('keel.dynalite-tables');

/** Every dynalite store this process creates from now on keeps its table descriptions; idempotent. */
export function installTableDescriptionCache(): void {
  const db = createRequire(import.meta.url)('dynalite/db') as {
    create(options: unknown): { tableDb: TableDescriptions };
    [INSTALLED]?: true;
  };
  if (db[INSTALLED]) return;
  db[INSTALLED] = true;
  const create = db.create;
  db.create = (options) => {
    const store = create(options);
    keepTableDescriptions(store.tableDb);
    return store;
  };
}
