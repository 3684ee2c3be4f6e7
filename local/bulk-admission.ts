import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/**
 * Point reads first in the embedded DynamoDB. The storage process serves the API's online reads and a
 * pipeline's bulk calls on one event loop, and a pipeline keeps as many calls in flight as the store
 * takes: unchecked, a 1,000,000-row ETL slows the API's reads several-fold. So while the store serves
 * point reads (`GetItem`, `BatchGetItem`: every online read), bulk calls (`BatchWriteItem`, `Scan`: the
 * ETL's writes, batch scoring's scans) run one at a time, each followed by a pause as long as it took:
 * a pipeline then gets at most about half of the store's time, and a read waits for one bulk call at
 * most, not for a queue of them. With no point read in the last {@link SERVING_WINDOW_MS}, bulk calls
 * run as they come, at the store's full rate. (DynamoDB in AWS gives reads and writes capacity of
 * their own; this is the local store's way of not letting a pipeline starve serving.)
 */
export interface BulkAdmission {
  /**
   * Called for each request with its DynamoDB operation (`BatchWriteItem`, …). Undefined: go ahead.
   * A promise: wait for it, then call the release it gives once the response is done.
   */
  admit(operation: string): Promise<() => void> | undefined;
}

/** How long after a point read the store counts as serving. */
export const SERVING_WINDOW_MS = 200;

const POINT_READS = new Set(['GetItem', 'BatchGetItem']);
const BULK = new Set(['BatchWriteItem', 'Scan']);

export interface BulkAdmissionOptions {
  /** Milliseconds, monotonic. @default - performance.now */
  readonly now?: () => number;
  /** Runs `fn` after `ms`. @default - setTimeout */
  readonly after?: (ms: number, fn: () => void) => void;
}

export function createBulkAdmission(options: BulkAdmissionOptions = {}): BulkAdmission {
  const now = options.now ?? (() => performance.now());
  const after = options.after ?? ((ms: number, fn: () => void) => void setTimeout(fn, ms));
  let lastPointReadAt = Number.NEGATIVE_INFINITY;
  /** Bulk calls admitted and not yet released (a pause holds its call's place). */
  let running = 0;
  const waiting: (() => void)[] = [];
  const serving = () => now() - lastPointReadAt <= SERVING_WINDOW_MS;

  const admitNext = () => {
    while (waiting.length > 0 && (running === 0 || !serving())) {
      running++;
      waiting.shift()!();
    }
  };
  const releaseOf = (startedAt: number) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const done = () => {
        running--;
        admitNext();
      };
      if (serving()) after(now() - startedAt, done);
      else done();
    };
  };

  return {
    admit(operation) {
      if (POINT_READS.has(operation)) {
        lastPointReadAt = now();
        return undefined;
      }
      if (!BULK.has(operation)) return undefined;
      if (waiting.length === 0 && (running === 0 || !serving())) {
        running++;
        return Promise.resolve(releaseOf(now()));
      }
      return new Promise((resolve) => waiting.push(() => resolve(releaseOf(now()))));
    },
  };
}

/** The DynamoDB operation a request names (`X-Amz-Target: DynamoDB_20120810.BatchWriteItem`). */
export function dynamoOperation(req: IncomingMessage): string {
  const target = req.headers['x-amz-target'];
  const value = Array.isArray(target) ? target[0] : target;
  return value?.slice(value.indexOf('.') + 1) ?? '';
}

/**
 * Runs a DynamoDB request (`run`) once `admission` lets it: at once, or after a bulk call's hold. A
 * call whose caller went away while it was held never runs, and frees its place.
 */
export function runWhenAdmitted(
  admission: BulkAdmission | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  run: () => void,
): void {
  const admitted = admission?.admit(dynamoOperation(req));
  if (!admitted) {
    run();
    return;
  }
  // 'close' follows the response's end, or a connection that went away first (even while held).
  let release: (() => void) | undefined;
  let closed = false;
  res.once('close', () => {
    closed = true;
    release?.();
  });
  void admitted.then((admittedRelease) => {
    release = admittedRelease;
    if (closed) release();
    else run();
  });
}

/** A DynamoDB server's request listener behind a {@link BulkAdmission} (a held body waits in its stream). */
export function withBulkAdmission(listener: RequestListener, admission: BulkAdmission): RequestListener {
  return (req, res) => runWhenAdmitted(admission, req, res, () => listener(req, res));
}
