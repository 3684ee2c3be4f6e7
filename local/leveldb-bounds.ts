import { AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import { ClassicLevel, type OpenOptions } from 'classic-level';

/**
 * Two corrections to the LevelDB under the embedded DynamoDB (dynalite), which opens it with Level's
 * defaults and takes no options for it. Without them the storage process's memory grew with the
 * table: a 1,000,000-item parallel scan ended with every table file mapped into it.
 *
 * 1. dynalite reads each Scan and Query page through a stream over a Level iterator and, when the
 *    page is full, ends the stream by calling the iterator's `return()`, which abstract-level's
 *    iterators do not have. Every page's LevelDB iterator stayed open until the store closed, and an
 *    open iterator pins the table files it read (each mapped whole) and the version it read from.
 *    Giving the iterators a `return()` that closes them ends them as dynalite intends.
 * 2. LevelDB keeps up to `maxOpenFiles - 10` tables open and maps each one whole, so its default of
 *    1,000 lets the mapped tables grow with the data. LevelDB's floors, 74 open files (64 tables) and
 *    tables of 1 MiB, bound them near 64 MiB. The price is speed once a table outgrows that: a table
 *    read after it left the cache is opened again (writes into a 1M-item table took 15% longer).
 */
export const LEVELDB_OPEN_DEFAULTS = {
  maxOpenFiles: 74,
  maxFileSize: 1024 * 1024,
} as const satisfies OpenOptions;

/** The options LevelDB opens with: the bounds above unless the caller chose its own. */
export const boundedOpenOptions = <T extends OpenOptions>(options: T): T => ({
  ...LEVELDB_OPEN_DEFAULTS,
  ...options,
});

/** Marks the classes already corrected: a test runner may load this module more than once over one copy of them. */
const INSTALLED = Symbol.for('keel.leveldb-bounds');

/** Applies both corrections to every LevelDB this process opens from now on; idempotent. */
export function installLevelDbBounds(): void {
  const level = ClassicLevel.prototype as unknown as {
    _open(options: OpenOptions): Promise<void>;
    [INSTALLED]?: true;
  };
  if (level[INSTALLED]) return;
  level[INSTALLED] = true;
  for (const iterator of [AbstractKeyIterator.prototype, AbstractValueIterator.prototype]) {
    const closable = iterator as unknown as { return?: unknown; close(): Promise<void> };
    if (closable.return !== undefined) continue;
    Object.defineProperty(iterator, 'return', {
      configurable: true,
      writable: true,
      value: async function (this: { close(): Promise<void> }) {
        await this.close();
        return { done: true, value: undefined };
      },
    });
  }
  const open = level._open;
  level._open = function (this: unknown, options: OpenOptions) {
    return open.call(this, boundedOpenOptions(options));
  };
}
