import { randomUUID } from 'node:crypto';

/**
 * Prediction capture: a sample of what the predict path served (the float32 feature vector the model
 * scored, the probability, the prediction, the model version, the time, the request id), written as
 * ONE capture line per prediction to stdout, synchronously, before the handler returns. Nothing waits
 * in memory: Lambda freezes an environment the moment its handler returns and reaps it later, and ECS
 * stops a task with SIGTERM, so anything buffered in the process is lost (the previous design, a
 * buffer flushed by a timer, wrote nothing in a Lambda-like run). On Linux a write to stdout (a pipe,
 * a file or a TTY) completes before `write` returns; Lambda and the ECS awslogs driver ship what the
 * process wrote, whatever happens to the process afterwards.
 *
 * In AWS a CloudWatch Logs subscription filter ({@link CAPTURE_FILTER_PATTERN}) on the predict log
 * group sends the capture lines, and only them, to a Firehose stream that writes them to the outputs
 * bucket (lib/constructs/capture-stream.ts). Locally the platform reads the stdout of the function's
 * Lambda-like environments and offers each line to its stand-in for that pipeline
 * (local/capture-delivery.ts).
 *
 * Layout (outputs bucket): `captures/model=<name>/date=YYYY-MM-DD/hour=HH/<name>.jsonl`, one record
 * per line. Firehose (and the local stand-in, likewise) partitions by the hour its buffer started, not
 * by each record's own time, so a record may sit in the hour before or after its own, by at most
 * {@link CAPTURE_PARTITION_SLACK_MS}: readers list that much around their window and filter on `t`.
 * Batch scoring writes its records (`source: 'batch'`) directly, through {@link batchCaptureLine}: one
 * object per segment, in the hour of the segment's time (every record's own), which its handler awaits.
 */

export const CAPTURE_PREFIX = 'captures/';

/** The field that marks a capture line among the other lines of stdout (logs, EMF metrics). */
export const CAPTURE_MARKER = 'keel_capture';

/**
 * The CloudWatch Logs filter pattern that selects capture lines: JSON events whose marker is 1 (what
 * {@link parseCaptureLine} accepts too).
 */
export const CAPTURE_FILTER_PATTERN = `{ $.${CAPTURE_MARKER} = 1 }`;

/**
 * How far from its own hour a delivered record may be partitioned: Firehose's largest buffering
 * interval (900 s) before, and the log subscription's delivery lag after. The capture stream refuses
 * a longer buffer.
 */
export const CAPTURE_PARTITION_SLACK_MS = 15 * 60_000;

/** Where a captured prediction was made: the real-time API or a batch scoring run. */
export type CaptureSource = 'api' | 'batch';

/**
 * Which side of a rollout a record is: the answering `champion` or `canary`, or the `shadow` score
 * of a shadow challenger (not an answer: readers of what was served skip it).
 */
export type CaptureVariant = 'champion' | 'canary' | 'shadow';

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
  /**
   * The encoded features as the model of `version` saw them (float32 values), in the order of its own
   * feature set (the definition that version was trained on, not necessarily this code's).
   */
  readonly x: number[];
  /**
   * The event_time of the stored record the features came from, when they came from it alone (no
   * request attributes): batch and real-time answers from the same record pair up on it, and the
   * offline features of the same customer and record are found by it (shared/quality).
   */
  readonly eventTime?: string;
  /** During a rollout: the rollout's id and this record's side of it. */
  readonly rollout?: string;
  readonly variant?: CaptureVariant;
}

/** What `record` needs from a served prediction. */
export interface CapturedPrediction {
  readonly customerId: string;
  readonly requestId: string;
  readonly model: { readonly name: string; readonly version: string };
  readonly probability: number;
  readonly prediction: number;
  readonly vector: Float32Array;
  /** The stored record's event_time, when the features came from it alone. */
  readonly storedEventTime?: string;
  /**
   * During a rollout: its id, and the shadow challenger's score of the same request with the features
   * it scored (shadow mode).
   */
  readonly rollout?: {
    readonly id: string;
    readonly variant: 'champion' | 'canary';
    readonly shadow?: {
      readonly version: string;
      readonly probability: number;
      readonly prediction: number;
      readonly vector: Float32Array;
    };
  };
}

export interface CaptureOptions {
  /** Share of predictions captured, 0..1 (0 disables). */
  readonly sampleRate: number;
  readonly now?: () => Date;
  readonly random?: () => number;
}

export interface PredictionCapture {
  /** Samples one prediction; a sampled one is on stdout before this returns. */
  record(prediction: CapturedPrediction): void;
  /** Predictions sampled (and written) so far. */
  stats(): { readonly sampled: number };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The S3 prefix holding every capture of `model`. */
export function captureModelPrefix(model: string): string {
  return `${CAPTURE_PREFIX}model=${model}/`;
}

/** The S3 prefix holding the captures of `model` partitioned in the UTC hour of `time`. */
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
    ...(prediction.storedEventTime ? { eventTime: prediction.storedEventTime } : {}),
    ...(prediction.rollout ? { rollout: prediction.rollout.id, variant: prediction.rollout.variant } : {}),
  };
}

/** What every record of one batch segment shares. */
export interface BatchCaptureContext {
  /** When the segment scored (every record's `t`). */
  readonly at: Date;
  /** The batch run's id. */
  readonly requestId: string;
  readonly model: { readonly name: string; readonly version: string };
}

/** One scored record of a batch segment. */
export type BatchCapturedPrediction = Pick<
  CapturedPrediction,
  'customerId' | 'probability' | 'prediction' | 'vector' | 'storedEventTime'
>;

/** A number as JSON writes it (`null` for NaN and ±Infinity). */
const jsonNumber = (n: number) => (Number.isFinite(n) ? `${n}` : 'null');

/**
 * The capture line of each record a batch segment scores, newline included: the JSON of
 * `captureRecord(…, 'batch')`, built as text. Batch scoring writes one per row, and
 * the record object, the copy of its vector and JSON.stringify made that three times as costly (8 µs
 * against 3 µs a line, a million-row run's capture from about 8 s of CPU to 3).
 */
export function batchCaptureLine(context: BatchCaptureContext): (record: BatchCapturedPrediction) => string {
  const head =
    `{"t":${JSON.stringify(context.at.toISOString())},"source":"batch",` +
    `"requestId":${JSON.stringify(context.requestId)},"customerId":`;
  const model = `,"model":${JSON.stringify(context.model.name)},"version":${JSON.stringify(context.model.version)},"probability":`;
  return (record) => {
    const { vector } = record;
    let x = '';
    for (let i = 0; i < vector.length; i++)
      x += i === 0 ? jsonNumber(vector[i]!) : `,${jsonNumber(vector[i]!)}`;
    const eventTime = record.storedEventTime ? `,"eventTime":${JSON.stringify(record.storedEventTime)}` : '';
    return `${head}${JSON.stringify(record.customerId)}${model}${jsonNumber(record.probability)},"prediction":${jsonNumber(record.prediction)},"x":[${x}]${eventTime}}\n`;
  };
}

/** The capture lines of a prediction: its answer and, in a shadow rollout, the shadow's score of it. */
function captureLines(prediction: CapturedPrediction, at: Date): string {
  const answer = captureRecord(prediction, at, 'api');
  const shadow = prediction.rollout?.shadow;
  const lines = [captureLine(answer)];
  if (shadow) {
    const { vector, ...score } = shadow;
    lines.push(captureLine({ ...answer, ...score, x: Array.from(vector), variant: 'shadow' }));
  }
  return `${lines.join('\n')}\n`;
}

/** `record` as a capture line: one JSON object, marked, on one line. */
export function captureLine(record: CaptureRecord): string {
  return JSON.stringify({ [CAPTURE_MARKER]: 1, ...record });
}

/** The record of a capture line; undefined for any other line, as the subscription filter decides. */
export function parseCaptureLine(line: string): CaptureRecord | undefined {
  // Most lines of stdout are logs and metrics: skip them without parsing.
  if (!line.includes(`"${CAPTURE_MARKER}"`)) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' &&
      value !== null &&
      (value as Record<string, unknown>)[CAPTURE_MARKER] === 1
      ? (value as CaptureRecord)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A new object's key under `prefix`: the time it was written, then a random id. */
export function captureObjectKey(prefix: string, written: Date): string {
  return `${prefix}${written.toISOString().replace(/[-:.]/g, '')}-${randomUUID()}.jsonl`;
}

export function createPredictionCapture(options: CaptureOptions): PredictionCapture {
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  let sampled = 0;
  return {
    record(prediction) {
      if (options.sampleRate <= 0) return;
      if (options.sampleRate < 1 && random() >= options.sampleRate) return;
      process.stdout.write(captureLines(prediction, now()));
      sampled++;
    },
    stats: () => ({ sampled }),
  };
}
