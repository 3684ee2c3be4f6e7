import type { S3Client } from '@aws-sdk/client-s3';
import { listKeys } from '#shared/aws/list-objects.ts';
import type { FeatureSet, FieldValues } from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import {
  assertOfflineHeader,
  FEATURES_PREFIX,
  OfflineDatasetError,
  objectLines,
  recordDecoder,
} from '#shared/offline/features-dataset.ts';
import { Random } from '#shared/random.ts';
import type { SkewFigures } from './types.ts';

/**
 * Training/serving skew: a sample of the feature vectors the API served from a stored record, each
 * recomputed from the raw record the ETL wrote offline for the same customer and the same record (its
 * event_time), with the served version's own feature set, and compared value by value. Both sides
 * come from one interpreter, so a difference means the online record is not what the ETL wrote:
 * changed behind its back, or written by another load.
 */

/** A vector the API served: one customer's stored record at one event_time, scored by `version`. */
export interface ServedVector {
  readonly customerId: string;
  readonly eventTime: string;
  readonly version: string;
  readonly x: readonly number[];
}

export interface SkewSample {
  /** Offers a captured answer; only real-time answers from a stored record are sampled. */
  offer(record: CaptureRecord): void;
  readonly vectors: () => readonly ServedVector[];
}

/**
 * A uniform sample (reservoir) of at most `size` vectors served at or after `since` (ms), seeded so a
 * run can be repeated. Recent answers only: skew is about what the store holds now, and the offline
 * records to scan are those written since the oldest sampled record.
 */
export function createSkewSample(size: number, since = Number.NEGATIVE_INFINITY, seed = 17): SkewSample {
  const random = new Random(seed);
  const kept: ServedVector[] = [];
  let seen = 0;
  return {
    offer(record) {
      if (record.source === 'batch' || record.variant === 'shadow' || !record.eventTime) return;
      if (!Array.isArray(record.x) || Date.parse(record.t) < since) return;
      seen++;
      const vector = {
        customerId: record.customerId,
        eventTime: record.eventTime,
        version: record.version,
        x: record.x,
      };
      if (kept.length < size) kept.push(vector);
      else {
        const slot = Math.floor(random.float() * seen);
        if (slot < size) kept[slot] = vector;
      }
    },
    vectors: () => kept,
  };
}

const keyOf = (customerId: string, eventTime: string) => `${customerId}\u0000${eventTime}`;
const runDateOf = (key: string) => /run_date=(\d{4}-\d{2}-\d{2})\//.exec(key)?.[1];

/** One raw record of the offline dataset, as its part wrote it. */
export interface OfflineRecord {
  /** The part it is in (`s3://…`), and the part's columns. */
  readonly source: string;
  readonly columns: readonly string[];
  readonly cells: readonly string[];
}

/**
 * The offline records of the wanted (customer, event_time) pairs, read line by line from the datasets
 * the ETL wrote on `runDates` (inclusive, YYYY-MM-DD): a record is written by the ETL run of its file,
 * on or after its event_time's date. Parts in another layout (feature values) are skipped, counted.
 */
export async function readOfflineRecords(
  s3: S3Client,
  bucket: string,
  wanted: readonly Pick<ServedVector, 'customerId' | 'eventTime'>[],
  runDates: { readonly from: string; readonly to: string },
): Promise<{ records: Map<string, OfflineRecord>; skippedParts: number }> {
  const wantedKeys = new Set(wanted.map((v) => keyOf(v.customerId, v.eventTime)));
  const wantedIds = new Set(wanted.map((v) => v.customerId));
  const keys = (await listKeys(s3, bucket, FEATURES_PREFIX)).filter((key) => {
    const date = runDateOf(key);
    return key.endsWith('.csv') && date !== undefined && date >= runDates.from && date <= runDates.to;
  });
  const records = new Map<string, OfflineRecord>();
  let skippedParts = 0;
  for (const key of keys) {
    const source = `s3://${bucket}/${key}`;
    let columns: string[] | undefined;
    for await (const line of objectLines(s3, bucket, key)) {
      if (!columns) {
        columns = line.split(',');
        try {
          assertOfflineHeader(source, columns);
          continue;
        } catch (error) {
          if (!(error instanceof OfflineDatasetError)) throw error;
          skippedParts++;
          break;
        }
      }
      const comma = line.indexOf(',');
      if (!wantedIds.has(line.slice(0, comma))) continue;
      const cells = line.split(',');
      const key = keyOf(cells[0]!, cells[1]!);
      if (wantedKeys.has(key)) records.set(key, { source, columns, cells });
    }
  }
  return { records, skippedParts };
}

/**
 * Compares each served vector with the one its version's feature set computes from the offline record;
 * the features that differ, most often first. A vector is not compared without an offline record, when
 * its version's features cannot be computed here (`featureSetOf` gives none), or when the record lacks a
 * field the set requires.
 */
export function compareWithOffline(
  served: readonly ServedVector[],
  offline: ReadonlyMap<string, OfflineRecord>,
  featureSetOf: (version: string) => FeatureSet | undefined,
): SkewFigures {
  const differingByFeature = new Map<string, number>();
  const decoders = new Map<string, ((cells: readonly string[]) => FieldValues) | undefined>();
  const decoderOf = (record: OfflineRecord, set: FeatureSet) => {
    const id = `${record.source}\u0000${set.fingerprint}`;
    if (!decoders.has(id)) {
      try {
        decoders.set(id, recordDecoder(record.source, record.columns, set));
      } catch (error) {
        if (!(error instanceof OfflineDatasetError)) throw error;
        decoders.set(id, undefined);
      }
    }
    return decoders.get(id);
  };
  let [compared, differing] = [0, 0];
  for (const vector of served) {
    const record = offline.get(keyOf(vector.customerId, vector.eventTime));
    const set = featureSetOf(vector.version);
    if (!record || !set || vector.x.length !== set.count) continue;
    const decode = decoderOf(record, set);
    const expected = new Float32Array(set.count);
    if (!decode || set.encodeInto(decode(record.cells), expected, 0) !== undefined) continue;
    compared++;
    let differs = false;
    for (let j = 0; j < set.count; j++) {
      // Both sides are float32 values: equal records give bit-equal values.
      if (Math.fround(vector.x[j]!) !== expected[j]) {
        differingByFeature.set(set.names[j]!, (differingByFeature.get(set.names[j]!) ?? 0) + 1);
        differs = true;
      }
    }
    if (differs) differing++;
  }
  const features = [...differingByFeature]
    .map(([name, count]) => ({ name, differing: count }))
    .sort((a, b) => b.differing - a.differing || a.name.localeCompare(b.name));
  return {
    sampled: served.length,
    compared,
    differing,
    share: compared === 0 ? null : differing / compared,
    features,
  };
}
