import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Prediction capture: a sample of what the predict path served (the float32 feature vector the model
 * scored, the probability, the prediction, the model version, the time, the request id), buffered in
 * memory and written to S3 as JSON lines in the background. Batch scoring writes the same records
 * (`source: 'batch'`) through {@link captureRecord} and {@link captureObjects}. Nothing here is awaited on the request
 * path: `record` only pushes onto an array; flushes run on a timer or when the buffer fills, and a
 * failed flush keeps its records for the next attempt (bounded: the oldest are dropped and counted).
 *
 * Layout (outputs bucket): `captures/model=<name>/date=YYYY-MM-DD/hour=HH/<stamp>-<uuid>.jsonl`, where
 * the partition is each record's own time (one flush writes one object per hour it holds), so a reader
 * of [from, to) lists exactly the hours the window touches. One line per prediction: {@link CaptureRecord}.
 */

export const CAPTURE_PREFIX = 'captures/';

/** Where a captured prediction was made: the real-time API or a batch scoring run. */
export type CaptureSource = 'api' | 'batch';

/** One captured prediction, one JSON line. */
export interface CaptureRecord {
  /** ISO 8601 time the prediction was served. */
  readonly t: string;
  /** Absent in records written before batch scoring was captured: those are the API's. */
  readonly source?: CaptureSource;
  readonly requestId: string;
  readonly customerId: string;
  readonly model: string;
  readonly version: string;
  readonly probability: number;
  readonly prediction: number;
  /** The encoded features in FEATURE_SET order, as the model saw them (float32 values). */
  readonly x: number[];
}

/** What `record` needs from a served prediction. */
export interface CapturedPrediction {
  readonly customerId: string;
  readonly requestId: string;
  readonly model: { readonly name: string; readonly version: string };
  readonly probability: number;
  readonly prediction: number;
  readonly vector: Float32Array;
}

export interface CaptureOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Share of predictions captured, 0..1 (0 disables). */
  readonly sampleRate: number;
  /** Default `api`. */
  readonly source?: CaptureSource;
  /** Flush when this many records wait (default 500). */
  readonly batchSize?: number;
  /** Flush when the oldest waiting record is this old (default 5 s). */
  readonly maxAgeMs?: number;
  /** Records kept while S3 fails; beyond it the oldest are dropped (default 10,000). */
  readonly maxBuffered?: number;
  readonly now?: () => Date;
  readonly random?: () => number;
  /** Told about failed flushes and drops (the logger and metrics in production). */
  readonly onEvent?: (event: CaptureEvent) => void;
}

export type CaptureEvent =
  | { readonly type: 'flushed'; readonly records: number; readonly objects: number }
  | { readonly type: 'flush-failed'; readonly records: number; readonly error: string }
  | { readonly type: 'dropped'; readonly records: number };

export interface CaptureStats {
  /** Records accepted by the sample. */
  readonly sampled: number;
  /** Records written to S3. */
  readonly written: number;
  readonly buffered: number;
  readonly failedFlushes: number;
  readonly dropped: number;
}

export interface PredictionCapture {
  /** Samples and buffers one prediction; synchronous and cheap, never throws. */
  record(prediction: CapturedPrediction): void;
  /** Writes what is buffered now (also when a flush is already running: waits for it, then flushes). */
  flush(): Promise<void>;
  stats(): CaptureStats;
  /** Stops the timer and makes one last flush attempt. */
  close(): Promise<void>;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The S3 prefix holding every capture of `model` (what the predict process may write). */
export function captureModelPrefix(model: string): string {
  return `${CAPTURE_PREFIX}model=${model}/`;
}

/** The S3 prefix holding the captures of `model` served in the UTC hour of `time`. */
export function captureHourPrefix(model: string, time: Date): string {
  const date = `${time.getUTCFullYear()}-${pad(time.getUTCMonth() + 1)}-${pad(time.getUTCDate())}`;
  return `${captureModelPrefix(model)}date=${date}/hour=${pad(time.getUTCHours())}/`;
}

export const CAPTURE_CONTENT_TYPE = 'application/x-ndjson';

/** The capture line of a prediction served at `at`. */
export function captureRecord(
  prediction: CapturedPrediction,
  at: Date,
  source: CaptureSource,
): CaptureRecord {
  return {
    t: at.toISOString(),
    source,
    requestId: prediction.requestId,
    customerId: prediction.customerId,
    model: prediction.model.name,
    version: prediction.model.version,
    probability: prediction.probability,
    prediction: prediction.prediction,
    x: Array.from(prediction.vector),
  };
}

/** The objects holding `records`: one per model and hour of the records' own times, keyed by `written`. */
export function captureObjects(
  records: readonly CaptureRecord[],
  written: Date,
): { key: string; body: string; records: CaptureRecord[] }[] {
  const groups = new Map<string, CaptureRecord[]>();
  for (const record of records) {
    const prefix = captureHourPrefix(record.model, new Date(record.t));
    const group = groups.get(prefix);
    if (group) group.push(record);
    else groups.set(prefix, [record]);
  }
  const stamp = written.toISOString().replace(/[-:.]/g, '');
  return [...groups].map(([prefix, group]) => ({
    key: `${prefix}${stamp}-${randomUUID()}.jsonl`,
    body: `${group.map((r) => JSON.stringify(r)).join('\n')}\n`,
    records: group,
  }));
}

export function createPredictionCapture(options: CaptureOptions): PredictionCapture {
  const batchSize = options.batchSize ?? 500;
  const maxAgeMs = options.maxAgeMs ?? 5_000;
  const maxBuffered = Math.max(options.maxBuffered ?? 10_000, batchSize);
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  let buffer: CaptureRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let closed = false;
  const counts = { sampled: 0, written: 0, failedFlushes: 0, dropped: 0 };

  const emit = (event: CaptureEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // A reporting failure must not reach the request path or the flush loop.
    }
  };

  const arm = () => {
    if (timer || closed || buffer.length === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, maxAgeMs);
    timer.unref();
  };

  const trim = () => {
    const excess = buffer.length - maxBuffered;
    if (excess > 0) {
      buffer.splice(0, excess);
      counts.dropped += excess;
      emit({ type: 'dropped', records: excess });
    }
  };

  async function writeOnce(): Promise<void> {
    if (buffer.length === 0) return;
    const taken = buffer;
    buffer = [];
    const objects = captureObjects(taken, now());
    let written = 0;
    const failed: CaptureRecord[] = [];
    let lastError = '';
    for (const { key, body, records } of objects) {
      try {
        await options.s3.send(
          new PutObjectCommand({
            Bucket: options.bucket,
            Key: key,
            Body: body,
            ContentType: CAPTURE_CONTENT_TYPE,
          }),
        );
        written += records.length;
      } catch (error) {
        failed.push(...records);
        lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
    counts.written += written;
    if (written > 0) emit({ type: 'flushed', records: written, objects: objects.length });
    if (failed.length > 0) {
      counts.failedFlushes++;
      emit({ type: 'flush-failed', records: failed.length, error: lastError });
      // Kept for the next attempt, before what arrived meanwhile; the bound still holds.
      buffer = [...failed, ...buffer];
      trim();
    }
  }

  function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    const previous = inFlight ?? Promise.resolve();
    const run = previous.then(writeOnce).finally(() => {
      if (inFlight === run) inFlight = undefined;
      arm();
    });
    inFlight = run;
    return run;
  }

  return {
    record(prediction) {
      if (closed || options.sampleRate <= 0) return;
      if (options.sampleRate < 1 && random() >= options.sampleRate) return;
      buffer.push(captureRecord(prediction, now(), options.source ?? 'api'));
      counts.sampled++;
      trim();
      if (buffer.length >= batchSize && !inFlight) void flush();
      else arm();
    },
    flush,
    stats: () => ({ ...counts, buffered: buffer.length }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}
