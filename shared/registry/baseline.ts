import type { FeatureSet } from '#shared/features/index.ts';

/**
 * The training-time distributions a model version is watched against (`baseline.json`): quantile bins
 * for each numeric feature, category frequencies for each categorical field (read back from its one-hot
 * columns; all zeros means an unseen category), and the distribution of the model's scores, all in the
 * version's own feature set. Built when a version is trained or imported, stored beside it;
 * shared/drift compares its windows on the same bins.
 */
export interface NumericBaseline {
  readonly feature: string;
  /** Bin i holds values v with edges[i-1] ≤ v < edges[i] (open-ended first and last bins). */
  readonly edges: number[];
  readonly fractions: number[];
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

export interface CategoricalBaseline {
  readonly field: string;
  readonly categories: string[];
  /** Share of each category, plus `__unseen__` for values outside the known categories. */
  readonly frequencies: Record<string, number>;
}

export interface ScoreBaseline {
  readonly edges: number[];
  readonly fractions: number[];
  readonly positiveRate: number;
  readonly threshold: number;
  readonly mean: number;
}

export interface Baseline {
  readonly featureSet: { readonly version: string; readonly fingerprint: string };
  readonly rows: number;
  readonly numeric: NumericBaseline[];
  readonly categorical: CategoricalBaseline[];
  readonly score: ScoreBaseline;
}

export const UNSEEN = '__unseen__';

/** Index of the bin `value` falls in, for edges sorted ascending (binary search). */
export function binIndex(edges: readonly number[], value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (value < edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Distinct inner quantile edges of a sample (ties collapse, so a mostly-zero feature gets few bins). */
export function quantileEdges(values: Float64Array, bins: number): number[] {
  const sorted = Float64Array.from(values).sort();
  const edges: number[] = [];
  for (let q = 1; q < bins; q++) {
    const edge = sorted[Math.min(sorted.length - 1, Math.floor((q * sorted.length) / bins))]!;
    if (edges.length === 0 ? edge > sorted[0]! : edge > edges.at(-1)!) edges.push(edge);
  }
  return edges;
}

export function binFractions(values: ArrayLike<number>, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) counts[binIndex(edges, values[i]!)]!++;
  return counts.map((count) => (values.length === 0 ? 0 : count / values.length));
}

/** Where a feature set's features are in its vector: its one-hot columns by field, and the others. */
export interface FeatureColumns {
  /** The columns that one-hot encode each categorical field the set reads. */
  readonly oneHot: Readonly<Record<string, readonly { category: string; column: number }[]>>;
  readonly numeric: readonly number[];
}

const columnsBySet = new WeakMap<FeatureSet, FeatureColumns>();

/** The {@link FeatureColumns} of a feature set, from its definition (computed once per set). */
export function featureColumns(featureSet: FeatureSet): FeatureColumns {
  let columns = columnsBySet.get(featureSet);
  if (!columns) {
    const features = featureSet.definition.features;
    columns = {
      oneHot: Object.fromEntries(
        Object.keys(featureSet.categories).map((field) => [
          field,
          features.flatMap((feature, column) =>
            feature.expr.op === 'oneHot' && feature.expr.field === field
              ? [{ category: feature.expr.value, column }]
              : [],
          ),
        ]),
      ),
      numeric: features.flatMap((feature, column) => (feature.expr.op === 'oneHot' ? [] : [column])),
    };
    columnsBySet.set(featureSet, columns);
  }
  return columns;
}

function column(x: Float32Array, rows: number, count: number, index: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) out[r] = x[r * count + index]!;
  return out;
}

export function categoryCounts(
  featureSet: FeatureSet,
  x: Float32Array,
  rows: number,
  field: string,
): Record<string, number> {
  const columns = featureColumns(featureSet).oneHot[field]!;
  const { count } = featureSet;
  const counts: Record<string, number> = Object.fromEntries([
    ...columns.map((c) => [c.category, 0]),
    [UNSEEN, 0],
  ]);
  for (let r = 0; r < rows; r++) {
    const hit = columns.find((c) => x[r * count + c.column] === 1);
    counts[hit ? hit.category : UNSEEN]!++;
  }
  return counts;
}

/** The baseline of rows × `featureSet.count` features (row-major) and the model's scores of them. */
export function buildBaseline(
  featureSet: FeatureSet,
  x: Float32Array,
  rows: number,
  scores: Float64Array,
  threshold: number,
  bins = 10,
): Baseline {
  const columns = featureColumns(featureSet);
  const numeric = columns.numeric.map((index) => {
    const values = column(x, rows, featureSet.count, index);
    const edges = quantileEdges(values, bins);
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of values) {
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return {
      feature: featureSet.names[index]!,
      edges,
      fractions: binFractions(values, edges),
      mean: sum / rows,
      min,
      max,
    };
  });
  const categorical = Object.keys(columns.oneHot).map((field) => {
    const counts = categoryCounts(featureSet, x, rows, field);
    return {
      field,
      categories: columns.oneHot[field]!.map((c) => c.category),
      frequencies: Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / rows])),
    };
  });
  const scoreEdges = quantileEdges(scores, bins);
  let positives = 0;
  let scoreSum = 0;
  for (const s of scores) {
    if (s >= threshold) positives++;
    scoreSum += s;
  }
  return {
    featureSet: { version: featureSet.version, fingerprint: featureSet.fingerprint },
    rows,
    numeric,
    categorical,
    score: {
      edges: scoreEdges,
      fractions: binFractions(scores, scoreEdges),
      positiveRate: positives / scores.length,
      threshold,
      mean: scoreSum / scores.length,
    },
  };
}
