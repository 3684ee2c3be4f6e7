import type { S3Client } from '@aws-sdk/client-s3';
import type { FeatureSet } from '#shared/features/index.ts';
import type { Dataset } from '#shared/model/dataset.ts';
import { requireInRange, requireInteger } from '#shared/model/errors.ts';
import { type BinnedDataset, binEdges, binInto } from '#shared/model/gbdt.ts';
import { datasetParts, featureRows, OfflineDatasetError } from '#shared/offline/features-dataset.ts';
import { Random } from '#shared/random.ts';

/**
 * Training data read as a stream, memory bounded by the cap whatever the dataset's size: two passes over
 * the rows. Pass 1 counts each class and keeps a uniform sample (reservoir) of float rows, which fixes
 * the quantile bin edges (data values, so the trees' thresholds stay exact) and is the drift baseline's
 * sample. Pass 2 draws exactly each class's quota (selection sampling, knowing the class counts) in row
 * order, splits each class's draw into training and held-out rows, and keeps the training rows as
 * byte bins only and the held-out rows as floats (what ONNX parity and the champion comparison score).
 */

/** Rows of pass 1's sample: enough to place 256 quantile bins finely; 16 MB of float rows. */
export const EDGE_SAMPLE_ROWS = 200_000;

/** What the candidate's metadata records of the sampling (`training.sample`). */
export interface SampleInfo {
  /** Rows in the dataset. */
  readonly rows_seen: number;
  /** Rows drawn: trained on plus held out (all of them when rows_seen <= cap). */
  readonly rows_used: number;
  readonly seed: number;
  readonly cap: number;
}

/** One row as a pass yields it (a {@link featureRows} row): `features` may be reused by the next row. */
export interface SampledRow {
  readonly customerId: string;
  /** 0 or 1; undefined (read as 0) for a row of an unlabeled part. */
  readonly label: number | undefined;
  readonly features: Float32Array;
}

export interface SampleOptions {
  /** The most rows drawn (training and held-out together). */
  readonly cap: number;
  readonly seed: number;
  /** Share of each class's draw held out for the evaluation (rounded as stratifiedSplit does). */
  readonly testShare: number;
  readonly maxBins: number;
  /**
   * Also keep the training rows' float features (the logistic trainer needs them): still bounded by the cap.
   * @default false
   */
  readonly trainFeatures?: boolean;
}

export interface TrainingSample {
  /** The training rows, binned with edges from pass 1's sample. */
  readonly train: BinnedDataset;
  /** Their float features (row-major), with {@link SampleOptions.trainFeatures} only. */
  readonly trainX: Float32Array | undefined;
  /** The held-out rows, in dataset order. */
  readonly test: Dataset;
  /** Which dataset rows `test` holds, ascending (what a champion of another feature set reads). */
  readonly testRows: Uint32Array;
  readonly testCustomerIds: readonly string[];
  /**
   * A uniform sample of the dataset's rows (pass 1's, at most {@link EDGE_SAMPLE_ROWS}), row-major: the
   * drift baseline is built from it rather than from every row, as a sample of that size pins the
   * baseline's deciles and category shares well within what drift alarms look at.
   */
  readonly reference: { readonly x: Float32Array; readonly rows: number };
  readonly info: SampleInfo;
}

/** The dataset changed between the two passes: what was counted is not what is drawn from. */
export class DatasetChangedError extends OfflineDatasetError {}

/**
 * How many rows of each class to draw so that at most `cap` are drawn in all: each class's share of
 * `cap` rounded by largest remainder (within one row of its exact share), every class present in the
 * data keeping at least one row; all rows when there are no more than `cap`.
 */
export function classQuotas(counts: readonly number[], cap: number): number[] {
  requireInteger('cap', cap, 1);
  const total = counts.reduce((sum, n) => sum + n, 0);
  if (total <= cap) return [...counts];
  const exact = counts.map((n) => (cap * n) / total);
  const quotas = exact.map(Math.floor);
  const order = exact
    .map((_, c) => c)
    .sort((a, b) => exact[b]! - quotas[b]! - (exact[a]! - quotas[a]!) || a - b);
  for (let k = 0, left = cap - quotas.reduce((s, q) => s + q, 0); k < left; k++) quotas[order[k]!]!++;
  for (let c = 0; c < counts.length; c++) {
    if (quotas[c] !== 0 || counts[c] === 0) continue;
    const largest = quotas.indexOf(Math.max(...quotas));
    if (quotas[largest]! <= 1) continue;
    quotas[largest]!--;
    quotas[c] = 1;
  }
  return quotas;
}

function labelOf(row: SampledRow): 0 | 1 {
  if (row.label === undefined || row.label === 0) return 0;
  if (row.label === 1) return 1;
  throw new OfflineDatasetError(`customer ${row.customerId} has label ${row.label}; labels must be 0 or 1`);
}

/**
 * The stratified, bounded sample of the rows `pass` yields (called twice; each call must yield the
 * same rows in the same order). Deterministic for a seed.
 */
export async function sampleTrainingRows(
  pass: () => AsyncIterable<SampledRow>,
  featureCount: number,
  options: SampleOptions,
): Promise<TrainingSample> {
  const { cap, seed, testShare, maxBins } = options;
  requireInteger('cap', cap, 1);
  requireInRange('testShare', testShare, 0, 1, { minOpen: false, maxOpen: true });
  const random = new Random(seed);
  const F = featureCount;

  // Pass 1: class counts and a uniform sample of float rows (reservoir, algorithm R).
  const edgeRows = Math.min(cap, EDGE_SAMPLE_ROWS);
  const reservoir = new Float32Array(edgeRows * F);
  const counts = [0, 0];
  let seen = 0;
  for await (const row of pass()) {
    counts[labelOf(row)]!++;
    const slot = seen < edgeRows ? seen : random.int(0, seen);
    if (slot < edgeRows) reservoir.set(row.features, slot * F);
    seen++;
  }
  if (seen === 0) throw new OfflineDatasetError('the dataset has no rows to train on');
  const reference = {
    x: reservoir.subarray(0, Math.min(seen, edgeRows) * F),
    rows: Math.min(seen, edgeRows),
  };
  const edges = binEdges(reference.x, F, maxBins);

  // Pass 2: each class's quota by selection sampling (algorithm S), split into training and held-out.
  const quotas = classQuotas(counts, cap);
  const testQuotas = quotas.map((q) => Math.round(q * testShare));
  const testCount = testQuotas[0]! + testQuotas[1]!;
  const trainCount = quotas[0]! + quotas[1]! - testCount;
  const bins = new Uint8Array(trainCount * F);
  const trainY = new Uint8Array(trainCount);
  const trainX = options.trainFeatures ? new Float32Array(trainCount * F) : undefined;
  const testX = new Float32Array(testCount * F);
  const testY = new Uint8Array(testCount);
  const testRows = new Uint32Array(testCount);
  const testCustomerIds: string[] = [];
  const unread = [...counts];
  const undrawn = [...quotas];
  const unheld = [...testQuotas];
  let row = -1;
  let trainAt = 0;
  let testAt = 0;
  for await (const sampled of pass()) {
    row++;
    const c = labelOf(sampled);
    if (unread[c] === 0) break;
    const drawn = random.float() * unread[c]! < undrawn[c]!;
    unread[c]!--;
    if (!drawn) continue;
    const heldOut = random.float() * undrawn[c]! < unheld[c]!;
    undrawn[c]!--;
    if (heldOut) {
      unheld[c]!--;
      testX.set(sampled.features, testAt * F);
      testY[testAt] = c;
      testRows[testAt] = row;
      testCustomerIds.push(sampled.customerId);
      testAt++;
    } else {
      binInto(edges, sampled.features, bins, trainCount, trainAt);
      trainY[trainAt] = c;
      trainX?.set(sampled.features, trainAt * F);
      trainAt++;
    }
  }
  if (row + 1 !== seen || unread[0] !== 0 || unread[1] !== 0) {
    throw new DatasetChangedError(
      `the dataset changed while it was read: ${seen} rows (${counts[1]} positive) in the first pass, ` +
        `not the same in the second; train again`,
    );
  }
  return {
    train: { rows: trainCount, featureCount: F, bins, edges, y: trainY },
    trainX,
    test: { x: testX, y: testY, featureCount: F },
    testRows,
    testCustomerIds,
    reference,
    info: { rows_seen: seen, rows_used: quotas[0]! + quotas[1]!, seed, cap },
  };
}

/** {@link sampleTrainingRows} over the offline dataset under `prefix`, in `featureSet`'s features. */
export async function readTrainingSample(
  s3: S3Client,
  bucket: string,
  prefix: string,
  featureSet: FeatureSet,
  options: SampleOptions,
): Promise<TrainingSample> {
  const parts = await datasetParts(s3, bucket, prefix);
  return sampleTrainingRows(() => featureRows(s3, parts, featureSet), featureSet.count, options);
}
