import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { readCsvLines } from '#shared/etl/etl.ts';
import {
  describeHeaderChange,
  headerChange,
  isHeaderUnchanged,
  OUTCOME_FILE,
} from '#shared/features/header.ts';
import { customerIdSchema, eventTimeSchema } from '#shared/features/index.ts';
import { createObjectStream, type ObjectStream } from '#shared/pipelines/object-stream.ts';
import { KEYS } from '#shared/resources.ts';
import type { OutcomeIntake } from './types.ts';

/**
 * The quality job's ground truth: every outcome file under `outcomes/` of the raw bucket (`keel data
 * import --kind outcomes`, `keel data generate --kind outcomes`, an upstream system), read as a stream
 * and indexed by customer. A file whose header is not the outcome record's is refused whole and reported;
 * a bad row goes to the quarantine in the ETL's format (one JSON line: the row number, the reasons, the
 * cells), one object per source file, so a re-run rewrites the same object instead of adding another.
 */

export interface OutcomeDeps {
  readonly s3: S3Client;
  readonly rawBucket: string;
  /** Where the quarantine is, as for the ETL. */
  readonly featuresBucket: string;
}

export interface ReadOutcomesOptions {
  /** Only outcomes observed at or after this instant are indexed (all rows are checked and counted). */
  readonly observedFrom?: Date;
  /** Only outcomes observed before this instant are indexed. */
  readonly observedBefore?: Date;
}

export interface ObservedOutcome {
  /** Epoch milliseconds. */
  readonly observedAt: number;
  readonly churned: 0 | 1;
}

/** Each customer's outcomes, oldest first. */
export type OutcomeIndex = ReadonlyMap<string, readonly ObservedOutcome[]>;

/** A file none of whose rows was read: its header is not the outcome record's. */
export interface RefusedOutcomeFile {
  readonly key: string;
  readonly reason: string;
}

export interface OutcomeReading {
  readonly index: OutcomeIndex;
  /** `files` counts every file found, refused ones included; `rows` the rows of the files read. */
  readonly intake: OutcomeIntake;
  readonly refusedFiles: readonly RefusedOutcomeFile[];
  /** The quarantine objects of the files with bad rows. */
  readonly quarantineKeys: readonly string[];
}

/** Where the bad rows of outcome files go: beside the ETL's, under a prefix of their own. */
export const OUTCOME_QUARANTINE_PREFIX = 'quarantine/outcomes/';

/** The quarantine object of one outcome file: derived from its key, so a re-run rewrites the same one. */
export function outcomeQuarantineKey(sourceKey: string): string {
  const name = sourceKey.startsWith(KEYS.outcomesPrefix)
    ? sourceKey.slice(KEYS.outcomesPrefix.length)
    : sourceKey;
  return `${OUTCOME_QUARANTINE_PREFIX}${name.replace(/\.csv$/i, '')}.jsonl`;
}

const outcomeRowSchema = z.strictObject({
  customer_id: customerIdSchema,
  churned: z.enum(['0', '1'], { error: 'must be 0 or 1' }),
  observed_at: eventTimeSchema,
});

/** Longest header line read: an outcome header is a few dozen characters, a file without newlines is not one. */
const MAX_HEADER_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * The first line of a stream (undefined when the stream is empty), and the rest of the stream, which is
 * not read until asked for: the header is checked before any row is.
 */
async function splitHeader(body: Readable): Promise<{ header: string | undefined; rows: Readable }> {
  const pieces = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headBytes = 0;
  for (;;) {
    const next = await pieces.next();
    if (next.done) {
      return {
        header: headBytes > 0 ? Buffer.concat(head).toString('utf8') : undefined,
        rows: Readable.from([]),
      };
    }
    const newline = next.value.indexOf(NEWLINE);
    const line = newline === -1 ? next.value : next.value.subarray(0, newline);
    head.push(line);
    headBytes += line.byteLength;
    if (newline === -1 && headBytes <= MAX_HEADER_BYTES) continue;
    const rest = newline === -1 ? Buffer.alloc(0) : next.value.subarray(newline + 1);
    const remaining = { [Symbol.asyncIterator]: () => pieces };
    return {
      header: Buffer.concat(head).toString('utf8'),
      rows: Readable.from(
        (async function* () {
          if (rest.byteLength > 0) yield rest;
          yield* remaining;
        })(),
        { objectMode: false },
      ),
    };
  }
}

/** Every object under `outcomes/` but folder markers, in key order. */
async function outcomeKeys(deps: OutcomeDeps): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await deps.s3.send(
      new ListObjectsV2Command({ Bucket: deps.rawBucket, Prefix: KEYS.outcomesPrefix, ContinuationToken }),
    );
    for (const { Key } of page.Contents ?? []) if (Key && !Key.endsWith('/')) keys.push(Key);
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  return keys;
}

function validDate(name: string, value: Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`${name} must be a valid date`);
  return ms;
}

/** Reads every outcome file: the index of the outcomes observed in the options' range, and the intake. */
export async function readOutcomes(
  deps: OutcomeDeps,
  options: ReadOutcomesOptions = {},
): Promise<OutcomeReading> {
  const from = validDate('observedFrom', options.observedFrom) ?? Number.NEGATIVE_INFINITY;
  const before = validDate('observedBefore', options.observedBefore) ?? Number.POSITIVE_INFINITY;
  const index = new Map<string, ObservedOutcome[]>();
  const refusedFiles: RefusedOutcomeFile[] = [];
  const quarantineKeys: string[] = [];
  const keys = await outcomeKeys(deps);
  let rows = 0;
  let quarantined = 0;

  for (const key of keys) {
    const source = `s3://${deps.rawBucket}/${key}`;
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.rawBucket, Key: key }));
    const body = object.Body as Readable;
    const { header, rows: lines } = await splitHeader(body);
    const columns = (header ?? '')
      .replace(/^\uFEFF/, '')
      .replace(/\r$/, '')
      .split(',');
    const change = headerChange(columns, OUTCOME_FILE);
    if (header === undefined || !isHeaderUnchanged(change)) {
      body.destroy();
      refusedFiles.push({
        key,
        reason: `${source}: ${header === undefined ? 'empty file, no header line' : describeHeaderChange(change, OUTCOME_FILE)}`,
      });
      continue;
    }

    const quarantineKey = outcomeQuarantineKey(key);
    let quarantine: ObjectStream | undefined;
    const refuse = async (line: object) => {
      quarantined++;
      quarantine ??= createObjectStream(deps.s3, {
        bucket: deps.featuresBucket,
        key: quarantineKey,
        contentType: 'application/x-ndjson',
      });
      await quarantine.write(`${JSON.stringify(line)}\n`);
    };
    try {
      let row = 0;
      for await (const line of readCsvLines(lines, columns)) {
        row++;
        rows++;
        if ('reason' in line) {
          await refuse({ row, reason: [line.reason] });
          continue;
        }
        const parsed = outcomeRowSchema.safeParse(line.row);
        if (!parsed.success) {
          const reason = parsed.error.issues.map(
            (issue) => `${issue.path.join('.') || 'row'}: ${issue.message}`,
          );
          await refuse({ row, reason, raw: line.row });
          continue;
        }
        const observedAt = Date.parse(parsed.data.observed_at);
        if (observedAt < from || observedAt >= before) continue;
        const outcome: ObservedOutcome = { observedAt, churned: parsed.data.churned === '1' ? 1 : 0 };
        const list = index.get(parsed.data.customer_id);
        if (list) list.push(outcome);
        else index.set(parsed.data.customer_id, [outcome]);
      }
    } catch (error) {
      body.destroy();
      await quarantine?.abort(error as Error);
      throw error;
    }
    if (quarantine) {
      await quarantine.end();
      quarantineKeys.push(quarantineKey);
    }
  }
  for (const list of index.values()) list.sort((a, b) => a.observedAt - b.observedAt);
  return { index, intake: { files: keys.length, rows, quarantined }, refusedFiles, quarantineKeys };
}

/**
 * The outcome a prediction made at `predictedAt` (epoch ms) is judged by: the customer's first outcome
 * observed at or after it and before `predictedAt + labelWindowMs`; undefined when none was.
 */
export function outcomeFor(
  index: OutcomeIndex,
  customerId: string,
  predictedAt: number,
  labelWindowMs: number,
): ObservedOutcome | undefined {
  if (!(labelWindowMs > 0))
    throw new RangeError(`labelWindowMs must be a positive number, got ${labelWindowMs}`);
  const outcome = index.get(customerId)?.find((candidate) => candidate.observedAt >= predictedAt);
  return outcome && outcome.observedAt < predictedAt + labelWindowMs ? outcome : undefined;
}
