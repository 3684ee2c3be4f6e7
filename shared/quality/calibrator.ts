import { z } from 'zod';
import { InvalidParameterError, requireInteger } from '#shared/model/errors.ts';

/**
 * The map from a model's score to the probability it really stands for, fitted at training on the
 * held-out rows and stored in metadata.json as `metrics.calibration_map`. Confidence-based estimation
 * (estimate.ts) needs calibrated probabilities: a score of 0.3 must mean 30% churn.
 */

/**
 * Knots of a non-decreasing piecewise-linear map: `scores` strictly ascending, `rates` non-decreasing,
 * both in [0, 1]. Below the first knot the map is `rates[0]`, above the last `rates.at(-1)`.
 */
export const calibrationMapSchema = z
  .object({
    scores: z.array(z.number().min(0).max(1)).min(1),
    rates: z.array(z.number().min(0).max(1)).min(1),
  })
  .superRefine((map, ctx) => {
    if (map.scores.length !== map.rates.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['rates'],
        message: `rates has ${map.rates.length} values but scores has ${map.scores.length}`,
      });
      return;
    }
    for (let i = 1; i < map.scores.length; i++) {
      if (!(map.scores[i]! > map.scores[i - 1]!)) {
        ctx.addIssue({ code: 'custom', path: ['scores', i], message: 'scores must be strictly ascending' });
      }
      if (!(map.rates[i]! >= map.rates[i - 1]!)) {
        ctx.addIssue({ code: 'custom', path: ['rates', i], message: 'rates must not decrease' });
      }
    }
  });

export type CalibrationMap = z.infer<typeof calibrationMapSchema>;

/** Scores taken as they are: what a model with nothing stored is assumed to be. */
export const IDENTITY_MAP: CalibrationMap = { scores: [0, 1], rates: [0, 1] };

/** Enough knots to follow any held-out set closely, few enough to keep metadata.json a few KB. */
export const MAX_KNOTS = 200;

/** The calibrated probability of `score`: linear between knots, clamped to the end rates. */
export function calibrate(map: CalibrationMap, score: number): number {
  const { scores, rates } = map;
  const last = scores.length - 1;
  if (score <= scores[0]!) return rates[0]!;
  if (score >= scores[last]!) return rates[last]!;
  // The knot interval holding score: scores[lo] <= score < scores[hi].
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (scores[mid]! <= score) lo = mid;
    else hi = mid;
  }
  const t = (score - scores[lo]!) / (scores[hi]! - scores[lo]!);
  return rates[lo]! + t * (rates[hi]! - rates[lo]!);
}

/** A run of points pooled to one rate, over scores [low, high]. */
interface Block {
  low: number;
  high: number;
  weight: number;
  /** Weighted sum of the outcomes: the rate is positives / weight. */
  positives: number;
}

const rateOf = (block: Block) => block.positives / block.weight;
const knotsOf = (block: Block) => (block.high > block.low ? 2 : 1);

function merge(a: Block, b: Block): Block {
  return { low: a.low, high: b.high, weight: a.weight + b.weight, positives: a.positives + b.positives };
}

/**
 * Isotonic regression by pool-adjacent-violators over blocks ascending by score (one per distinct
 * score). Blocks of equal rate are pooled too, so rates rise strictly from block to block and each
 * block needs at most two knots.
 */
function poolAdjacentViolators(points: readonly Block[]): Block[] {
  const pooled: Block[] = [];
  for (const point of points) {
    let block = point;
    // Compare rates cross-multiplied: no division, so equal rates compare equal.
    while (
      pooled.length > 0 &&
      pooled.at(-1)!.positives * block.weight >= block.positives * pooled.at(-1)!.weight
    ) {
      block = merge(pooled.pop()!, block);
    }
    pooled.push(block);
  }
  return pooled;
}

/**
 * Pools neighbouring blocks until their knots fit in `maxKnots`, each time the pair whose pooling adds
 * least squared error. A pooled rate lies between the two it replaces, so the map stays monotone.
 */
function capKnots(blocks: Block[], maxKnots: number): Block[] {
  let knots = blocks.reduce((sum, block) => sum + knotsOf(block), 0);
  while (knots > maxKnots) {
    let best = 0;
    let bestCost = Infinity;
    for (let i = 0; i + 1 < blocks.length; i++) {
      const [a, b] = [blocks[i]!, blocks[i + 1]!];
      const cost = ((a.weight * b.weight) / (a.weight + b.weight)) * (rateOf(a) - rateOf(b)) ** 2;
      if (cost < bestCost) [best, bestCost] = [i, cost];
    }
    const pooled = merge(blocks[best]!, blocks[best + 1]!);
    knots += knotsOf(pooled) - knotsOf(blocks[best]!) - knotsOf(blocks[best + 1]!);
    blocks.splice(best, 2, pooled);
  }
  return blocks;
}

/** Weighted points (any order) to the isotonic map's knots: each block's two ends at its rate. */
function isotonicMap(points: Block[], maxKnots: number): CalibrationMap {
  points.sort((a, b) => a.low - b.low);
  const distinct: Block[] = [];
  for (const point of points) {
    const previous = distinct.at(-1);
    // Equal scores must map to one rate: pool them before fitting.
    if (previous !== undefined && previous.low === point.low)
      distinct[distinct.length - 1] = merge(previous, point);
    else distinct.push(point);
  }
  const map: CalibrationMap = { scores: [], rates: [] };
  for (const block of capKnots(poolAdjacentViolators(distinct), maxKnots)) {
    const rate = rateOf(block);
    map.scores.push(block.low);
    map.rates.push(rate);
    if (block.high > block.low) {
      map.scores.push(block.high);
      map.rates.push(rate);
    }
  }
  return map;
}

/**
 * Fits the calibration map on held-out scores and their 0/1 labels by isotonic regression, with at
 * most `maxKnots` knots.
 */
export function fitCalibrationMap(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  maxKnots = MAX_KNOTS,
): CalibrationMap {
  if (scores.length === 0) throw new InvalidParameterError('scores', 'scores must not be empty');
  if (labels.length !== scores.length) {
    throw new InvalidParameterError(
      'labels',
      `labels has ${labels.length} values but scores has ${scores.length}`,
    );
  }
  requireInteger('maxKnots', maxKnots, 2);
  const points: Block[] = [];
  for (let i = 0; i < scores.length; i++) {
    const score = scores[i]!;
    const label = labels[i];
    if (!(score >= 0 && score <= 1)) {
      throw new InvalidParameterError('scores', `scores[${i}] is ${score}, must be in [0, 1]`);
    }
    if (label !== 0 && label !== 1) {
      throw new InvalidParameterError('labels', `labels[${i}] is ${label}, labels must be 0 or 1`);
    }
    points.push({ low: score, high: score, weight: 1, positives: label });
  }
  return isotonicMap(points, maxKnots);
}

export type CalibratorSource = 'isotonic' | 'reliability-bins' | 'identity';

export interface Calibrator {
  /**
   * Where the map comes from: the isotonic fit stored at training, else the version's stored
   * reliability bins (versions trained before the map existed), else the identity (external models).
   */
  readonly source: CalibratorSource;
  readonly map: CalibrationMap;
}

/** The reliability bins training stores as `metrics.calibration` (CalibrationBin of model/metrics.ts). */
const reliabilityBinsSchema = z.array(
  z.object({
    count: z.number().int().min(0),
    meanPredicted: z.number().min(0).max(1).nullable(),
    observedRate: z.number().min(0).max(1).nullable(),
  }),
);

function parseMetric<T>(schema: z.ZodType<T>, metrics: Readonly<Record<string, unknown>>, key: string): T {
  const parsed = schema.safeParse(metrics[key]);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = ['metrics', key, ...issue.path.map(String)].join('.');
  throw new InvalidParameterError(`metrics.${key}`, `${field}: ${issue.message}`);
}

/**
 * The calibrator of a model version from its metadata's `metrics`. The reliability bins are a coarse
 * stand-in: the points (meanPredicted, observedRate) of the non-empty bins, weighted by their counts
 * and made monotone the same way. A field present but malformed is an error, not a silent fallback.
 */
export function calibratorOf(metrics: Readonly<Record<string, unknown>>): Calibrator {
  if (metrics.calibration_map !== undefined) {
    return { source: 'isotonic', map: parseMetric(calibrationMapSchema, metrics, 'calibration_map') };
  }
  if (metrics.calibration !== undefined) {
    const points: Block[] = [];
    for (const bin of parseMetric(reliabilityBinsSchema, metrics, 'calibration')) {
      if (bin.count === 0 || bin.meanPredicted === null || bin.observedRate === null) continue;
      const { meanPredicted: score, count } = bin;
      points.push({ low: score, high: score, weight: count, positives: bin.observedRate * count });
    }
    if (points.length > 0) return { source: 'reliability-bins', map: isotonicMap(points, MAX_KNOTS) };
  }
  return { source: 'identity', map: IDENTITY_MAP };
}
