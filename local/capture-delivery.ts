import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type AwsTarget, createS3Client } from '#shared/aws/clients.ts';
import {
  CAPTURE_CONTENT_TYPE,
  captureHourPrefix,
  captureObjectKey,
  parseCaptureLine,
} from '#shared/inference/capture.ts';
import type { ResourceNames } from '#shared/resources.ts';

/**
 * The local stand-in for what AWS does with the predict process's capture lines (a CloudWatch Logs
 * subscription filter, then a Firehose stream writing to S3: lib/constructs/capture-stream.ts).
 * `accept(line)` takes any line the process wrote: capture lines pass (the filter pattern), any other
 * line is refused. They are buffered and written as JSON-lines objects to the outputs bucket, one per
 * model, when `maxLines` wait or `intervalMs` after the first of them (Firehose's buffering hints,
 * shorter), and on `close()`, so a clean stop loses nothing. Keys follow Firehose's layout: the hour
 * of the oldest buffered line's arrival, not of each record. A failed write keeps its lines for the
 * next one, as Firehose retries.
 */
export interface CaptureDeliveryOptions {
  readonly s3: S3Client;
  /** The outputs bucket. */
  readonly bucket: string;
  /** Write this long after the first buffered line (default 1 s). */
  readonly intervalMs?: number;
  /** Write as soon as this many lines wait (default 500). */
  readonly maxLines?: number;
  readonly now?: () => Date;
  /** Told about a failed write that no caller awaits (the timer's); its lines are kept. */
  readonly onError?: (error: unknown) => void;
}

/** A line offered after `close()`: nothing would write it. */
export class CaptureDeliveryClosedError extends Error {}

interface Buffered {
  readonly model: string;
  readonly line: string;
}

export class CaptureDelivery {
  private readonly intervalMs: number;
  private readonly maxLines: number;
  private readonly now: () => Date;
  private lines: Buffered[] = [];
  /** Arrival of the oldest buffered line: the partition hour of the objects that hold them. */
  private since: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly counts = { accepted: 0, written: 0, objects: 0, failedWrites: 0 };

  constructor(private readonly options: CaptureDeliveryOptions) {
    this.intervalMs = options.intervalMs ?? 1_000;
    this.maxLines = options.maxLines ?? 500;
    this.now = options.now ?? (() => new Date());
  }

  /** Takes one line of the process's output; true when it was a capture line (now buffered). */
  readonly accept = (line: string): boolean => {
    const record = parseCaptureLine(line);
    if (!record) return false;
    if (this.closed)
      throw new CaptureDeliveryClosedError('the capture delivery is closed: nothing would write this line');
    this.since ??= this.now();
    this.lines.push({ model: record.model, line });
    this.counts.accepted++;
    if (this.lines.length >= this.maxLines) this.background();
    else this.arm();
    return true;
  };

  /** Writes what is buffered now, after any write in progress; rejects when S3 refuses (lines kept). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.writing.then(() => this.write());
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Refuses further lines and writes what is buffered; rejects when that write fails. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  stats(): { accepted: number; written: number; objects: number; failedWrites: number; buffered: number } {
    return { ...this.counts, buffered: this.lines.length };
  }

  /** Unref'd: the timer does not keep a process alive; whoever stops the process closes the delivery. */
  private arm(): void {
    this.timer ??= setTimeout(() => this.background(), this.intervalMs).unref();
  }

  private background(): void {
    this.flush().catch((error: unknown) => {
      this.options.onError?.(error);
      // Retried after another interval, as Firehose retries a failed delivery.
      if (!this.closed && this.lines.length > 0) this.arm();
    });
  }

  private async write(): Promise<void> {
    if (this.lines.length === 0) return;
    const [taken, since] = [this.lines, this.since!];
    this.lines = [];
    this.since = undefined;
    const byModel = new Map<string, Buffered[]>();
    for (const b of taken) {
      const group = byModel.get(b.model);
      if (group) group.push(b);
      else byModel.set(b.model, [b]);
    }
    const failed: Buffered[] = [];
    let lastError: unknown;
    for (const [model, group] of byModel) {
      try {
        await this.options.s3.send(
          new PutObjectCommand({
            Bucket: this.options.bucket,
            Key: captureObjectKey(captureHourPrefix(model, since), this.now()),
            Body: `${group.map((b) => b.line).join('\n')}\n`,
            ContentType: CAPTURE_CONTENT_TYPE,
          }),
        );
        this.counts.written += group.length;
        this.counts.objects++;
      } catch (error) {
        failed.push(...group);
        lastError = error;
      }
    }
    if (failed.length > 0) {
      this.counts.failedWrites++;
      // Before what arrived meanwhile, under the older arrival time.
      this.lines = [...failed, ...this.lines];
      this.since = since;
      throw lastError;
    }
  }
}

/** The platform's delivery: to its outputs bucket, a failed write reported on stderr. */
export function platformCaptureDelivery(target: AwsTarget, names: ResourceNames): CaptureDelivery {
  return new CaptureDelivery({
    s3: createS3Client(target),
    bucket: names.outputs,
    onError: (error) =>
      process.stderr.write(
        `capture delivery failed (its lines are kept for the next write): ${String(error)}\n`,
      ),
  });
}
