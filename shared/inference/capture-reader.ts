import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listKeys } from '#shared/aws/list-objects.ts';
import { CAPTURE_PARTITION_SLACK_MS, type CaptureRecord, captureHourPrefix } from './capture.ts';

/**
 * Reading the prediction capture back (the drift and quality jobs): the records served in a window,
 * from the hour partitions that can hold them, one object at a time so memory holds what the reader
 * keeps, not the objects.
 */

const HOUR = 3_600_000;
const READ_CONCURRENCY = 16;

export interface CaptureSource {
  readonly s3: S3Client;
  readonly outputsBucket: string;
  readonly modelName: string;
}

/**
 * The capture hour prefixes that can hold records of [from, to): the hours the window touches, widened
 * by the partition slack (the delivery partitions by the hour its buffer started, see capture.ts).
 */
export function captureHourPrefixes(model: string, from: Date, to: Date): string[] {
  const prefixes: string[] = [];
  const [start, end] = [
    from.getTime() - CAPTURE_PARTITION_SLACK_MS,
    to.getTime() + CAPTURE_PARTITION_SLACK_MS,
  ];
  for (let t = Math.floor(start / HOUR) * HOUR; t < end; t += HOUR) {
    prefixes.push(captureHourPrefix(model, new Date(t)));
  }
  return prefixes;
}

/**
 * The JSON objects of one line of a capture object: usually the line itself; several when records
 * were concatenated without a newline (Firehose joins the records of a buffer as they are unless it is
 * told to add a delimiter). Splits at top-level `}{`, outside strings; blank lines yield nothing.
 */
export function jsonObjectsOf(line: string): string[] {
  const trimmed = line.trim();
  if (trimmed === '') return [];
  if (!trimmed.includes('}{')) return [trimmed];
  const objects: string[] = [];
  let [depth, start, inString, escaped] = [0, 0, false, false];
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      objects.push(trimmed.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < trimmed.length) objects.push(trimmed.slice(start));
  return objects;
}

/**
 * Calls `visit` with every captured record served in [from, to) (every version, source and variant:
 * the caller keeps what it needs), and counts the others: outside the window or not JSON.
 */
export async function forEachCapturedRecord(
  source: CaptureSource,
  from: Date,
  to: Date,
  visit: (record: CaptureRecord) => void,
): Promise<{ readonly visited: number; readonly skipped: number }> {
  const keys = (
    await Promise.all(
      captureHourPrefixes(source.modelName, from, to).map((p) =>
        listKeys(source.s3, source.outputsBucket, p),
      ),
    )
  ).flat();
  const [fromMs, toMs] = [from.getTime(), to.getTime()];
  let [visited, skipped, next] = [0, 0, 0];
  const take = (text: string) => {
    for (const line of text.split('\n').flatMap(jsonObjectsOf)) {
      let record: CaptureRecord;
      try {
        record = JSON.parse(line) as CaptureRecord;
      } catch {
        skipped++;
        continue;
      }
      const t = Date.parse(record.t);
      if (!(t >= fromMs && t < toMs)) {
        skipped++;
        continue;
      }
      visited++;
      visit(record);
    }
  };
  // At most READ_CONCURRENCY reads at a time: a busy hour holds thousands of small capture objects.
  const reader = async () => {
    for (let i = next++; i < keys.length; i = next++) {
      const object = await source.s3.send(
        new GetObjectCommand({ Bucket: source.outputsBucket, Key: keys[i] }),
      );
      take(await object.Body!.transformToString());
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, keys.length) }, reader));
  return { visited, skipped };
}
