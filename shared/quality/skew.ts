import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listKeys } from '#shared/aws/list-objects.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { FEATURES_PREFIX, featureDatasetHeader } from '#shared/offline/features-dataset.ts';
import { Random } from '#shared/random.ts';
import type { SkewFigures } from './types.ts';

/**
 * Training/serving skew: a sample of the feature vectors the API served from a stored record, each
 * recomputed from the offline features the ETL wrote for the same customer and the same record (its
 * event_time), and compared value by value. Both sides come from one feature module, so a difference
 * means the online record is not what the ETL wrote: changed behind its back, or written by another
 * feature definition.
 */

/** A vector the API served: one customer's stored record at one event_time. */
export interface ServedVector {
  readonly customerId: string;
  readonly eventTime: string;
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
 * features to scan are those written since the oldest sampled record.
 */
export function createSkewSample(size: number, since = Number.NEGATIVE_INFINITY, seed = 17): SkewSample {
  const random = new Random(seed);
  const kept: ServedVector[] = [];
  let seen = 0;
  return {
    offer(record) {
      if (record.source === 'batch' || record.variant === 'shadow' || !record.eventTime) return;
      if (!Array.isArray(record.x) || record.x.length !== FEATURE_COUNT || Date.parse(record.t) < since)
        return;
      seen++;
      const vector = { customerId: record.customerId, eventTime: record.eventTime, x: record.x };
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

/**
 * The offline vectors of the wanted (customer, event_time) pairs, read line by line from the feature
 * datasets the ETL wrote on `runDates` (inclusive, YYYY-MM-DD): a record is written by the ETL run of
 * its file, on or after its event_time's date. Parts written by another feature set are skipped.
 */
export async function readOfflineVectors(
  s3: S3Client,
  bucket: string,
  wanted: readonly ServedVector[],
  runDates: { readonly from: string; readonly to: string },
): Promise<{ vectors: Map<string, Float32Array>; otherFeatureSets: number }> {
  const wantedKeys = new Set(wanted.map((v) => keyOf(v.customerId, v.eventTime)));
  const wantedIds = new Set(wanted.map((v) => v.customerId));
  const keys = (await listKeys(s3, bucket, FEATURES_PREFIX)).filter((key) => {
    const date = runDateOf(key);
    return key.endsWith('.csv') && date !== undefined && date >= runDates.from && date <= runDates.to;
  });
  const vectors = new Map<string, Float32Array>();
  const headers = new Set([featureDatasetHeader(true), featureDatasetHeader(false)]);
  let otherFeatureSets = 0;
  for (const key of keys) {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    let header = true;
    for await (const line of createInterface({ input: object.Body as Readable, crlfDelay: Infinity })) {
      if (header) {
        header = false;
        if (headers.has(line)) continue;
        otherFeatureSets++;
        (object.Body as Readable).destroy();
        break;
      }
      const comma = line.indexOf(',');
      if (!wantedIds.has(line.slice(0, comma))) continue;
      const cells = line.split(',');
      const key = keyOf(cells[0]!, cells[1]!);
      if (!wantedKeys.has(key)) continue;
      const x = new Float32Array(FEATURE_COUNT);
      for (let j = 0; j < FEATURE_COUNT; j++) x[j] = Number(cells[2 + j]);
      vectors.set(key, x);
    }
  }
  return { vectors, otherFeatureSets };
}

/** Compares each served vector with its offline one; the features that differ, most often first. */
export function compareWithOffline(
  served: readonly ServedVector[],
  offline: ReadonlyMap<string, Float32Array>,
): SkewFigures {
  const differingByFeature = new Array<number>(FEATURE_COUNT).fill(0);
  let [compared, differing] = [0, 0];
  for (const vector of served) {
    const expected = offline.get(keyOf(vector.customerId, vector.eventTime));
    if (!expected) continue;
    compared++;
    let differs = false;
    for (let j = 0; j < FEATURE_COUNT; j++) {
      // Both sides are float32 values: equal records give bit-equal values.
      if (Math.fround(vector.x[j]!) !== expected[j]) {
        differingByFeature[j]!++;
        differs = true;
      }
    }
    if (differs) differing++;
  }
  const features = differingByFeature
    .map((count, j) => ({ name: FEATURE_SET.names[j]!, differing: count }))
    .filter((f) => f.differing > 0)
    .sort((a, b) => b.differing - a.differing || a.name.localeCompare(b.name));
  return {
    sampled: served.length,
    compared,
    differing,
    share: compared === 0 ? null : differing / compared,
    features,
  };
}
