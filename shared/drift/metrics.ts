import {
  type CategoricalBaseline,
  type NumericBaseline,
  type ScoreBaseline,
  UNSEEN,
} from '#shared/registry/baseline.ts';

/**
 * Drift metrics against a model version's `baseline.json`: PSI on the baseline's own bins, Jensen–Shannon
 * divergence for categories, and prediction drift (score PSI, positive-rate change). Counting is split
 * from scoring so the caller can run one tight pass per column (see compute.ts); nothing here allocates
 * per row. Every result is finite or `null`: an empty window says why it is insufficient, never NaN.
 */

/**
 * Floor applied to both sides of every PSI bin. An empty bin counts as holding 0.01% of the rows, so
 * ln(a/e) stays finite, yet a bin that goes from empty to 10% still adds (0.1 − 0.0001)·ln(0.1/0.0001)
 * ≈ 0.69: a new category or an out-of-range mass pages on its own. Bins empty on both sides add 0.
 */
export const PSI_EPSILON = 1e-4;

/** Up to this many edges a linear scan beats a binary search (quantile baselines have ≤ 9). */
const LINEAR_SCAN_MAX_EDGES = 16;

/** Population stability index `Σ (a_i − e_i)·ln(a_i / e_i)`, each share floored at `epsilon`. */
export function psi(expected: ArrayLike<number>, actual: ArrayLike<number>, epsilon = PSI_EPSILON): number {
  requireSameLength(expected, actual);
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]!, epsilon);
    const a = Math.max(actual[i]!, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/**
 * Jensen–Shannon divergence in bits: ½·KL(P‖M) + ½·KL(Q‖M) with M = (P + Q)/2, in [0, 1]. Needs no
 * smoothing: M > 0 wherever P or Q is, and 0·log 0 = 0.
 */
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>): number {
  requireSameLength(p, q);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    const qi = q[i]!;
    const m = (pi + qi) / 2;
    if (pi > 0) sum += pi * Math.log2(pi / m);
    if (qi > 0) sum += qi * Math.log2(qi / m);
  }
  // Clamped: shares that sum to 1 only up to rounding can land a hair outside [0, 1].
  return Math.min(1, Math.max(0, sum / 2));
}

function requireSameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length)
    throw new RangeError(`distributions differ in length: ${a.length} vs ${b.length}`);
}

/** Per-bin counts of the finite values of a strided column; NaN and ±Infinity are counted apart. */
export interface BinCounts {
  readonly counts: Float64Array;
  readonly valid: number;
  readonly nan: number;
  readonly infinite: number;
}

/**
 * Counts `n` values `values[start + i·stride]` into the bins of `edges` (ascending, lower-inclusive:
 * the same rule as baseline.ts `binIndex`). One pass, no allocation per value.
 */
export function countBins(
  values: Float32Array | Float64Array,
  start: number,
  stride: number,
  n: number,
  edges: Float64Array,
): BinCounts {
  const counts = new Float64Array(edges.length + 1);
  const end = start + n * stride;
  const invalid =
    edges.length <= LINEAR_SCAN_MAX_EDGES
      ? countLinear(values, start, end, stride, edges, counts)
      : countBinary(values, start, end, stride, edges, counts);
  return { counts, valid: n - invalid.nan - invalid.infinite, nan: invalid.nan, infinite: invalid.infinite };
}

// Two loops rather than one with a branch inside: each stays monomorphic and small enough to inline.
function countLinear(
  values: Float32Array | Float64Array,
  start: number,
  end: number,
  stride: number,
  edges: Float64Array,
  counts: Float64Array,
): { nan: number; infinite: number } {
  const k = edges.length;
  let nan = 0;
  let infinite = 0;
  for (let i = start; i < end; i += stride) {
    const v = values[i]!;
    // v − v is 0 for every finite v and NaN for NaN and ±Infinity.
    if (v - v !== 0) {
      if (Number.isNaN(v)) nan++;
      else infinite++;
      continue;
    }
    let b = 0;
    while (b < k && v >= edges[b]!) b++;
    counts[b]!++;
  }
  return { nan, infinite };
}

function countBinary(
  values: Float32Array | Float64Array,
  start: number,
  end: number,
  stride: number,
  edges: Float64Array,
  counts: Float64Array,
): { nan: number; infinite: number } {
  let nan = 0;
  let infinite = 0;
  for (let i = start; i < end; i += stride) {
    const v = values[i]!;
    if (v - v !== 0) {
      if (Number.isNaN(v)) nan++;
      else infinite++;
      continue;
    }
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v < edges[mid]!) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]!++;
  }
  return { nan, infinite };
}

/** Rows by category of a one-hot encoded field: `counts` in `columns` order, then {@link UNSEEN}. */
export interface CategoryCounts {
  readonly counts: Float64Array;
  readonly valid: number;
  /** Rows with a NaN or infinite value in any of the field's columns. */
  readonly invalid: number;
}

/**
 * Reads a categorical field back from its one-hot columns of a row-major matrix: the first column
 * holding 1 names the category; all zeros is an unseen category (how encode.ts writes one).
 */
export function countCategories(
  x: Float32Array | Float64Array,
  rows: number,
  stride: number,
  columns: readonly number[],
): CategoryCounts {
  const k = columns.length;
  const cols = Int32Array.from(columns);
  const counts = new Float64Array(k + 1);
  let invalid = 0;
  for (let r = 0, base = 0; r < rows; r++, base += stride) {
    let hit = k;
    let finite = true;
    for (let c = 0; c < k; c++) {
      const v = x[base + cols[c]!]!;
      if (v - v !== 0) finite = false;
      else if (v === 1 && hit === k) hit = c;
    }
    if (finite) counts[hit]!++;
    else invalid++;
  }
  return { counts, valid: rows - invalid, invalid };
}

/** Shares of a count vector; all zeros when there is nothing to share. */
function shares(counts: ArrayLike<number>, total: number): number[] {
  return Array.from(counts, (count) => (total > 0 ? count / total : 0));
}

/**
 * Why a comparison has no value, or null when it has one. Below `minRows` finite values a PSI would be
 * mostly sampling noise (its expectation without any drift is about (bins − 1)/rows).
 */
function insufficiency(rows: number, valid: number, minRows: number): string | null {
  if (rows === 0) return 'insufficient data: no rows in the window';
  if (valid === 0) return `insufficient data: none of the ${rows} values is finite`;
  if (valid < minRows) return `insufficient data: ${valid} finite values, fewer than the ${minRows} required`;
  return null;
}

/**
 * The bins a numeric feature is compared on. A baseline whose quantiles all tied (`edges: []`, one bin
 * holding everything) would make every window look identical; its min and max still bound every
 * training value, so the comparison uses three bins: below min, [min, max], above max, expected
 * [0, 1, 0]. A shift inside [min, max] stays invisible: the baseline does not record more.
 */
export function numericBins(baseline: NumericBaseline): { edges: number[]; fractions: number[] } {
  const { edges, fractions, min, max } = baseline;
  if (edges.length > 0 || !Number.isFinite(min) || !Number.isFinite(max)) return { edges, fractions };
  return { edges: [min, nextUp(max)], fractions: [0, 1, 0] };
}

/** The smallest double above a finite `x`, so that `v < nextUp(max)` means `v ≤ max`. */
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  const bits = new BigInt64Array(Float64Array.of(x).buffer);
  bits[0]! += x > 0 ? 1n : -1n;
  return new Float64Array(bits.buffer)[0]!;
}

export interface NumericDrift {
  readonly kind: 'numeric';
  readonly feature: string;
  /** Lower-inclusive inner edges of the bins compared (see {@link numericBins}). */
  readonly edges: number[];
  readonly baseline: number[];
  /** Shares of the window's finite values per bin (zeros when there are none). */
  readonly current: number[];
  readonly valid: number;
  readonly nan: number;
  readonly infinite: number;
  /** null when the window is insufficient, with the reason in `insufficient`. */
  readonly psi: number | null;
  readonly insufficient: string | null;
}

export function numericDrift(
  baseline: NumericBaseline,
  counted: BinCounts,
  rows: number,
  minRows: number,
): NumericDrift {
  const bins = numericBins(baseline);
  requireSameLength(bins.fractions, counted.counts);
  const current = shares(counted.counts, counted.valid);
  const insufficient = insufficiency(rows, counted.valid, minRows);
  return {
    kind: 'numeric',
    feature: baseline.feature,
    edges: bins.edges,
    baseline: bins.fractions,
    current,
    valid: counted.valid,
    nan: counted.nan,
    infinite: counted.infinite,
    psi: insufficient ? null : psi(bins.fractions, current),
    insufficient,
  };
}

export interface CategoricalDrift {
  readonly kind: 'categorical';
  readonly field: string;
  /** The baseline's categories in column order, then {@link UNSEEN}. */
  readonly categories: string[];
  readonly baseline: number[];
  readonly current: number[];
  readonly valid: number;
  readonly invalid: number;
  readonly psi: number | null;
  /** Jensen–Shannon divergence (bits, in [0, 1]); null when insufficient. */
  readonly js: number | null;
  readonly insufficient: string | null;
}

/**
 * Compares category shares, {@link UNSEEN} included. A category the baseline never saw (share 0, e.g. a
 * plan launched after training, which lands in `__unseen__`) is where PSI's floor matters; JS needs none.
 */
export function categoricalDrift(
  baseline: CategoricalBaseline,
  counted: CategoryCounts,
  rows: number,
  minRows: number,
): CategoricalDrift {
  const categories = [...baseline.categories, UNSEEN];
  const expected = categories.map((category) => baseline.frequencies[category] ?? 0);
  requireSameLength(expected, counted.counts);
  const current = shares(counted.counts, counted.valid);
  const insufficient = insufficiency(rows, counted.valid, minRows);
  return {
    kind: 'categorical',
    field: baseline.field,
    categories,
    baseline: expected,
    current,
    valid: counted.valid,
    invalid: counted.invalid,
    psi: insufficient ? null : psi(expected, current),
    js: insufficient ? null : jensenShannon(expected, current),
    insufficient,
  };
}

export interface PredictionDrift {
  readonly edges: number[];
  readonly baseline: number[];
  readonly current: number[];
  readonly valid: number;
  readonly nan: number;
  readonly infinite: number;
  /** PSI of the scores on the baseline's score bins (0 for a single-bin baseline: nothing to compare). */
  readonly scorePsi: number | null;
  /** Shares of scores ≥ the model's threshold. */
  readonly positiveRate: { readonly baseline: number; readonly current: number | null };
  /** current − baseline positive rate, in percentage points (0.25 → 0.35 is +10). */
  readonly positiveRateDelta: number | null;
  readonly insufficient: string | null;
}

export function predictionDrift(
  baseline: ScoreBaseline,
  scores: Float64Array,
  rows: number,
  minRows: number,
): PredictionDrift {
  const counted = countBins(scores, 0, 1, rows, Float64Array.from(baseline.edges));
  requireSameLength(baseline.fractions, counted.counts);
  let positives = 0;
  for (let i = 0; i < rows; i++) {
    const s = scores[i]!;
    if (s - s === 0 && s >= baseline.threshold) positives++; // finite scores only, as in the bins
  }
  const current = shares(counted.counts, counted.valid);
  const insufficient = insufficiency(rows, counted.valid, minRows);
  const rate = insufficient ? null : positives / counted.valid;
  return {
    edges: baseline.edges,
    baseline: baseline.fractions,
    current,
    valid: counted.valid,
    nan: counted.nan,
    infinite: counted.infinite,
    scorePsi: insufficient ? null : psi(baseline.fractions, current),
    positiveRate: { baseline: baseline.positiveRate, current: rate },
    positiveRateDelta: rate === null ? null : points(rate - baseline.positiveRate),
    insufficient,
  };
}

/**
 * A share difference in percentage points, rounded to 1e-9 points: rates are ratios of counts, and
 * without the rounding 0.35 − 0.25 would be 9.999999999999998 and miss a "≥ 10 points" threshold.
 */
function points(shareDelta: number): number {
  return Math.round(shareDelta * 100 * 1e9) / 1e9;
}
