/**
 * Histogram-based gradient-boosted decision trees for binary classification (logistic loss), in the
 * style of XGBoost's `hist` / LightGBM: features are quantile-binned once into a column-major
 * Uint8Array, each node accumulates gradient/hessian histograms over its rows, and only the smaller
 * child of a split is histogrammed (the sibling is parent minus child).
 *
 * Exactness contract with model-types.ts: a split "bin <= b goes left" is stored as
 * `x < threshold` with threshold = the smallest training value of bin b + 1 (a float32 data value),
 * so on the raw float32 features the stored ensemble routes every training row exactly as the trainer
 * did, and `ensembleMargin` reproduces the trainer's margins bit for bit (same leaf values, added in
 * the same order onto the same baseScore). Leaf values and baseScore are float32-representable
 * (Math.fround), so a float32 writer such as an ONNX attribute stores them without loss.
 */
import { Random } from '#shared/random.ts';
import { type Dataset, rowCount, takeRows, validateDataset } from './dataset.ts';
import { InvalidParameterError, requireInRange, requireInteger } from './errors.ts';
import { shuffle, stratifiedSplit } from './metrics.ts';
import type { Tree, TreeEnsemble } from './model-types.ts';

export interface GbdtParams {
  /** Boosting rounds (an upper bound when early stopping is on). */
  readonly nTrees: number;
  readonly maxDepth: number;
  /** Leaves per tree; 0 = only maxDepth limits the tree. With a limit, the best split is taken first. */
  readonly maxLeaves: number;
  readonly learningRate: number;
  /** L2 regularization on leaf values. */
  readonly lambda: number;
  /** Minimum hessian sum in each child of a split. */
  readonly minChildWeight: number;
  /** Histogram bins per feature, at most 256 (bin indices are bytes). */
  readonly maxBins: number;
  /** Share of rows drawn (without replacement, per tree) to grow each tree. */
  readonly subsample: number;
  /** Share of features drawn per tree. */
  readonly colsampleByTree: number;
  /** Stop after this many rounds without a lower validation log loss; 0 = off. */
  readonly earlyStoppingRounds: number;
  /** Stratified share of the training rows held out for early stopping when no validation set is given. */
  readonly validationFraction: number;
  readonly seed: number;
}

export const DEFAULT_GBDT_PARAMS: GbdtParams = {
  nTrees: 100,
  maxDepth: 6,
  maxLeaves: 0,
  learningRate: 0.1,
  lambda: 1,
  minChildWeight: 1,
  maxBins: 256,
  subsample: 1,
  colsampleByTree: 1,
  earlyStoppingRounds: 0,
  validationFraction: 0.1,
  seed: 42,
};

export interface GbdtOptions {
  /** Held-out rows for the validation log loss (and early stopping); else see validationFraction. */
  readonly validation?: Dataset;
  /** Called after each boosting round with the rounds done and the most there can be (nTrees). */
  readonly onRound?: (round: number, maxRounds: number) => void;
}

export interface GbdtResult {
  readonly model: TreeEnsemble;
  readonly params: GbdtParams;
  /** Indices (into the input rows, ascending) of the rows the trees were fitted on. */
  readonly trainRows: Uint32Array;
  /** The trainer's margin for each of trainRows under `model` (equal to ensembleMargin, bit for bit). */
  readonly trainMargins: Float64Array;
  /** Validation log loss after each round (empty without validation rows). */
  readonly validationLogLoss: number[];
  /** Trees kept: the round with the lowest validation log loss when early stopping is on. */
  readonly bestIteration: number;
  readonly stoppedEarly: boolean;
}

/** XGBoost's kRtEps, on the same gain scale (G²/(H + λ) terms): smaller gains are rounding noise. */
const MIN_GAIN = 1e-6;
/** Keeps hessians of confidently-predicted rows away from zero (XGBoost's floor). */
const MIN_HESSIAN = 1e-16;

export function resolveGbdtParams(params: Partial<GbdtParams> = {}): GbdtParams {
  const p: GbdtParams = { ...DEFAULT_GBDT_PARAMS, ...params };
  const open = { minOpen: true, maxOpen: false };
  const closed = { minOpen: false, maxOpen: false };
  requireInteger('nTrees', p.nTrees, 1);
  requireInteger('maxDepth', p.maxDepth, 1, 30);
  if (p.maxLeaves !== 0) requireInteger('maxLeaves', p.maxLeaves, 2);
  requireInRange('learningRate', p.learningRate, 0, 1, open);
  requireInRange('lambda', p.lambda, 0, Number.MAX_VALUE, closed);
  requireInRange('minChildWeight', p.minChildWeight, 0, Number.MAX_VALUE, closed);
  requireInteger('maxBins', p.maxBins, 2, 256);
  requireInRange('subsample', p.subsample, 0, 1, open);
  requireInRange('colsampleByTree', p.colsampleByTree, 0, 1, open);
  requireInteger('earlyStoppingRounds', p.earlyStoppingRounds, 0);
  requireInRange('validationFraction', p.validationFraction, 0, 1, { minOpen: true, maxOpen: true });
  requireInteger('seed', p.seed, 0, Number.MAX_SAFE_INTEGER);
  return p;
}

export function trainGbdt(
  data: Dataset,
  params: Partial<GbdtParams> = {},
  options: GbdtOptions = {},
): GbdtResult {
  const p = resolveGbdtParams(params);
  validateDataset(data, 'train');
  const { train, trainRows, validation } = chooseValidation(data, p, options.validation);
  requireBothClasses(train.y);
  const valid = validation && {
    y: validation.y,
    addTree: (grown: GrownTree, margins: Float64Array) => addTreeToMargins(grown.tree, validation, margins),
  };
  return boost(binFeatures(train, p.maxBins), train.y, trainRows, valid, p, options.onRound);
}

/**
 * Rows binned beforehand with fixed edges (see {@link binEdges}, {@link binInto}): what a trainer that
 * never holds the float rows of the whole set trains on. `edges` are data values, so the exactness
 * contract above holds as for {@link trainGbdt}.
 */
export interface BinnedDataset {
  readonly rows: number;
  readonly featureCount: number;
  /** Column-major bin index of every value: bins[feature * rows + row]. */
  readonly bins: Uint8Array;
  /** Per feature: edges[k] is the smallest value of bin k + 1 (at most maxBins - 1 edges). */
  readonly edges: readonly Float32Array[];
  /** 0/1 labels, one per row. */
  readonly y: Uint8Array;
}

export interface BinnedGbdtOptions {
  /** Held-out rows binned with the same edges; else see validationFraction. */
  readonly validation?: BinnedDataset;
  readonly onRound?: GbdtOptions['onRound'];
}

/**
 * {@link trainGbdt} on pre-binned rows. With the edges {@link trainGbdt} would compute from the same
 * training rows (and the same validation rows, binned with them), the model is the same, tree for tree:
 * routing a validation row on its bins equals routing its float32 values on the thresholds.
 */
export function trainGbdtBinned(
  data: BinnedDataset,
  params: Partial<GbdtParams> = {},
  options: BinnedGbdtOptions = {},
): GbdtResult {
  const p = resolveGbdtParams(params);
  validateBinned(data, p, 'train');
  let train = data;
  let trainRows = identity(data.rows);
  let validation = options.validation;
  if (validation) {
    validateBinned(validation, p, 'validation');
    if (validation.edges !== data.edges) {
      throw new InvalidParameterError(
        'validation.edges',
        'validation rows must be binned with the training edges',
      );
    }
  } else if (p.earlyStoppingRounds > 0) {
    const split = earlyStoppingSplit(data.y, p);
    train = takeBinnedRows(data, split.train);
    trainRows = split.train;
    validation = takeBinnedRows(data, split.validation);
  }
  requireBothClasses(train.y);
  const binned = validation;
  const valid = binned && {
    y: binned.y,
    addTree: (grown: GrownTree, margins: Float64Array) => addBinnedTreeToMargins(grown, binned, margins),
  };
  return boost(binningOf(train), train.y, trainRows, valid, p, options.onRound);
}

function requireBothClasses(y: Uint8Array): void {
  const positives = y.reduce((sum, label) => sum + label, 0);
  if (positives === 0 || positives === y.length) {
    throw new InvalidParameterError('train.y', 'training labels must contain both classes');
  }
}

/** The validation rows of a boosting run: their labels and how a new tree adds to their margins. */
interface ValidationRows {
  readonly y: Uint8Array;
  readonly addTree: (grown: GrownTree, margins: Float64Array) => void;
}

function boost(
  binning: Binning,
  y: Uint8Array,
  trainRows: Uint32Array,
  validation: ValidationRows | undefined,
  p: GbdtParams,
  onRound: GbdtOptions['onRound'],
): GbdtResult {
  const n = binning.rows;
  const positives = y.reduce((sum, label) => sum + label, 0);
  const baseScore = Math.fround(Math.log(positives / (n - positives)));
  const margins = new Float64Array(n).fill(baseScore);
  const validMargins = validation ? new Float64Array(validation.y.length).fill(baseScore) : undefined;
  const grower = new TreeGrower(binning, p);
  const random = new Random(p.seed);
  const trees: Tree[] = [];
  const validationLogLoss: number[] = [];
  let best = { rounds: 0, loss: Infinity, margins };
  let stoppedEarly = false;

  for (let round = 1; round <= p.nTrees; round++) {
    grower.setGradients(margins, y);
    const tree = grower.grow(
      sampleRows(n, p.subsample, random),
      sampleFeatures(binning.featureCount, p.colsampleByTree, random),
    );
    grower.addToMargins(tree, margins);
    trees.push(tree.tree);
    onRound?.(round, p.nTrees);
    if (!validation || !validMargins) continue;

    validation.addTree(tree, validMargins);
    const loss = marginLogLoss(validMargins, validation.y);
    validationLogLoss.push(loss);
    if (p.earlyStoppingRounds === 0) continue;
    if (loss < best.loss) best = { rounds: round, loss, margins: margins.slice() };
    if (round - best.rounds >= p.earlyStoppingRounds) {
      stoppedEarly = true;
      break;
    }
  }

  const keep = p.earlyStoppingRounds > 0 && validation ? best.rounds : trees.length;
  const trainMargins = keep === trees.length ? margins : best.margins;
  return {
    model: {
      kind: 'tree-ensemble',
      featureCount: binning.featureCount,
      baseScore,
      trees: trees.slice(0, keep),
    },
    params: p,
    trainRows,
    trainMargins,
    validationLogLoss,
    bestIteration: keep,
    stoppedEarly,
  };
}

/** The stratified share of the training rows held out for early stopping when no validation set is given. */
function earlyStoppingSplit(y: Uint8Array, p: GbdtParams) {
  const split = stratifiedSplit(y, { validation: p.validationFraction, seed: p.seed });
  if (split.validation.length === 0) {
    throw new InvalidParameterError('validationFraction', 'validationFraction leaves no validation rows');
  }
  return split;
}

function chooseValidation(
  data: Dataset,
  p: GbdtParams,
  validation: Dataset | undefined,
): { train: Dataset; trainRows: Uint32Array; validation: Dataset | undefined } {
  const allRows = () => identity(rowCount(data));
  if (validation) {
    validateDataset(validation, 'validation');
    if (validation.featureCount !== data.featureCount) {
      throw new InvalidParameterError(
        'validation.featureCount',
        'validation.featureCount must equal train.featureCount',
      );
    }
    return { train: data, trainRows: allRows(), validation };
  }
  if (p.earlyStoppingRounds === 0) return { train: data, trainRows: allRows(), validation: undefined };
  const split = earlyStoppingSplit(data.y, p);
  return {
    train: takeRows(data, split.train),
    trainRows: split.train,
    validation: takeRows(data, split.validation),
  };
}

// ---------------------------------------------------------------------------------------------
// Binning

interface Binning {
  readonly rows: number;
  readonly featureCount: number;
  /** Column-major bin index of every value: bins[feature * rows + row]. */
  readonly bins: Uint8Array;
  /** Per feature: edges[k] is the smallest value in bin k + 1, so bin(x) = #{k : edges[k] <= x}. */
  readonly edges: readonly Float32Array[];
  /** Per feature: start of its bins in a histogram, in bins (the last entry is the total). */
  readonly histOffsets: Int32Array;
}

function binFeatures(data: Dataset, maxBins: number): Binning {
  const n = rowCount(data);
  const { featureCount } = data;
  const bins = new Uint8Array(featureCount * n);
  const edges: Float32Array[] = [];
  const columns = new ColumnSorter(data.x, n, featureCount);
  for (let f = 0; f < featureCount; f++) {
    const { sorted, order } = columns.sort(f);
    const featureEdges = quantileEdges(sorted, maxBins);
    edges.push(featureEdges);
    // bin = number of edges <= value: one merge-like walk over the sorted values. NaN (sorted last)
    // compares false, so it stays in the last bin, which no split sends left (as `NaN < t` is false).
    const out = bins.subarray(f * n, (f + 1) * n);
    let bin = 0;
    for (let k = 0; k < n; k++) {
      const value = sorted[k]!;
      while (bin < featureEdges.length && featureEdges[bin]! <= value) bin++;
      out[order[k]!] = bin;
    }
  }
  return { rows: n, featureCount, bins, edges, histOffsets: histOffsetsOf(edges) };
}

/** Per feature: start of its bins in a histogram, in bins (the last entry is the total). */
function histOffsetsOf(edges: readonly Float32Array[]): Int32Array {
  const offsets = new Int32Array(edges.length + 1);
  for (let f = 0; f < edges.length; f++) offsets[f + 1] = offsets[f]! + edges[f]!.length + 1;
  return offsets;
}

/** The columns of a row-major float32 matrix, one at a time, sorted ascending (NaN last). */
class ColumnSorter {
  private readonly column: Float32Array;
  private readonly sorted: Float32Array;
  private readonly radix: RadixScratch;

  constructor(
    private readonly x: Float32Array,
    private readonly rows: number,
    private readonly featureCount: number,
  ) {
    this.column = new Float32Array(rows);
    this.sorted = new Float32Array(rows);
    this.radix = new RadixScratch(rows);
  }

  /** Feature f's values sorted, and the row of each (both overwritten by the next call). */
  sort(f: number): { sorted: Float32Array; order: Uint32Array } {
    const { x, rows, featureCount, column, sorted } = this;
    for (let i = 0; i < rows; i++) column[i] = x[i * featureCount + f]!;
    const order = this.radix.argsort(column);
    for (let k = 0; k < rows; k++) sorted[k] = column[order[k]!]!;
    return { sorted, order };
  }
}

/**
 * Quantile bin edges of each feature from rows (row-major float32) such as a uniform sample of a dataset
 * too large to hold: the same rule as {@link trainGbdt} applies to its training rows, so the edges are
 * values of the sample, hence data values.
 */
export function binEdges(x: Float32Array, featureCount: number, maxBins: number): Float32Array[] {
  requireInteger('maxBins', maxBins, 2, 256);
  const rows = x.length / featureCount;
  const columns = new ColumnSorter(x, rows, featureCount);
  return Array.from({ length: featureCount }, (_, f) => quantileEdges(columns.sort(f).sorted, maxBins));
}

/** The bin of each of `features` (one row) under `edges`, written to bins[f * stride + at]: column-major. */
export function binInto(
  edges: readonly Float32Array[],
  features: Float32Array,
  bins: Uint8Array,
  stride: number,
  at: number,
): void {
  for (let f = 0; f < edges.length; f++) {
    const featureEdges = edges[f]!;
    const value = features[f]!;
    // Number of edges <= value (binary search); NaN compares false everywhere: the last bin, as above.
    let lo = 0;
    let hi = featureEdges.length;
    if (Number.isNaN(value)) lo = hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (featureEdges[mid]! <= value) lo = mid + 1;
      else hi = mid;
    }
    bins[f * stride + at] = lo;
  }
}

function binningOf(data: BinnedDataset): Binning {
  const { rows, featureCount, bins, edges } = data;
  return { rows, featureCount, bins, edges, histOffsets: histOffsetsOf(edges) };
}

function validateBinned(data: BinnedDataset, p: GbdtParams, what: string): void {
  const { rows, featureCount, bins, edges, y } = data;
  if (!Number.isInteger(featureCount) || featureCount < 1) {
    throw new InvalidParameterError(`${what}.featureCount`, `${what}.featureCount must be an integer >= 1`);
  }
  if (y.length !== rows || bins.length !== rows * featureCount) {
    throw new InvalidParameterError(
      `${what}.bins`,
      `${what} has ${bins.length} bins and ${y.length} labels, expected rows (${rows}) x featureCount (${featureCount}) and rows`,
    );
  }
  const tooMany = edges.findIndex((e) => e.length >= p.maxBins);
  if (edges.length !== featureCount || tooMany >= 0) {
    throw new InvalidParameterError(
      `${what}.edges`,
      `${what}.edges must hold fewer than maxBins (${p.maxBins}) edges for each of the ${featureCount} features`,
    );
  }
  for (let i = 0; i < rows; i++) {
    if (y[i]! > 1)
      throw new InvalidParameterError(`${what}.y`, `${what}.y[${i}] is ${y[i]}, labels must be 0 or 1`);
  }
}

/** The rows at `indices`, in that order, as a new binned dataset with the same edges. */
function takeBinnedRows(data: BinnedDataset, indices: Uint32Array): BinnedDataset {
  const n = indices.length;
  const bins = new Uint8Array(n * data.featureCount);
  for (let f = 0; f < data.featureCount; f++) {
    const from = f * data.rows;
    const to = f * n;
    for (let k = 0; k < n; k++) bins[to + k] = data.bins[from + indices[k]!]!;
  }
  const y = new Uint8Array(n);
  for (let k = 0; k < n; k++) y[k] = data.y[indices[k]!]!;
  return { rows: n, featureCount: data.featureCount, bins, edges: data.edges, y };
}

/** LSD radix argsort of float32 values (4 passes of 8 bits), far faster than a comparison sort. */
class RadixScratch {
  private readonly keys: Uint32Array;
  private readonly keysOut: Uint32Array;
  private readonly order: Uint32Array;
  private readonly orderOut: Uint32Array;
  private readonly counts = new Uint32Array(256);

  constructor(n: number) {
    this.keys = new Uint32Array(n);
    this.keysOut = new Uint32Array(n);
    this.order = new Uint32Array(n);
    this.orderOut = new Uint32Array(n);
  }

  /** Indices of `values` in ascending order, NaN last, equal values in index order. */
  argsort(values: Float32Array): Uint32Array {
    let keys = this.keys;
    let order = this.order;
    let keysOut = this.keysOut;
    let orderOut = this.orderOut;
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) {
      keys[i] = sortableKey(values[i]!, bits[i]!);
      order[i] = i;
    }
    for (let shift = 0; shift < 32; shift += 8) {
      const counts = this.counts.fill(0);
      for (let i = 0; i < values.length; i++) counts[(keys[i]! >>> shift) & 255]!++;
      let total = 0;
      for (let d = 0; d < 256; d++) {
        const c = counts[d]!;
        counts[d] = total;
        total += c;
      }
      for (let i = 0; i < values.length; i++) {
        const key = keys[i]!;
        const at = counts[(key >>> shift) & 255]!++;
        keysOut[at] = key;
        orderOut[at] = order[i]!;
      }
      [keys, keysOut] = [keysOut, keys];
      [order, orderOut] = [orderOut, order];
    }
    return order; // four passes: back in this.order
  }
}

/** Maps float32 bits to unsigned integers in the same order; -0 joins +0, every NaN sorts last. */
function sortableKey(value: number, bits: number): number {
  if (Number.isNaN(value)) return 0xffffffff;
  if (value === 0) return 0x80000000;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

/**
 * Bin edges (actual data values) from sorted values (NaN last). Few distinct values: one bin each.
 * Otherwise greedy equal-count bins, where a value holding at least a bin's share of the rows gets a
 * bin of its own (so e.g. a mass of zeros is not merged with its neighbours).
 */
function quantileEdges(sorted: Float32Array, maxBins: number): Float32Array {
  let valid = sorted.length;
  while (valid > 0 && Number.isNaN(sorted[valid - 1])) valid--;
  const distinct: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < valid; i++) {
    if (i > 0 && sorted[i] === sorted[i - 1]) counts[counts.length - 1]!++;
    else {
      distinct.push(sorted[i]!);
      counts.push(1);
    }
  }
  if (distinct.length <= maxBins) return Float32Array.from(distinct.slice(1));

  const edges: number[] = [];
  let rowsLeft = valid;
  let target = valid / maxBins;
  let inBin = counts[0]!;
  for (let j = 1; j < distinct.length && edges.length < maxBins - 1; j++) {
    const count = counts[j]!;
    if (inBin >= target || count >= target) {
      edges.push(distinct[j]!);
      rowsLeft -= inBin;
      target = rowsLeft / (maxBins - edges.length);
      inBin = 0;
    }
    inBin += count;
  }
  return Float32Array.from(edges);
}

// ---------------------------------------------------------------------------------------------
// Sampling

function sampleRows(n: number, share: number, random: Random): Uint32Array {
  if (share === 1) return identity(n);
  const picked: number[] = [];
  for (let i = 0; i < n; i++) if (random.float() < share) picked.push(i);
  if (picked.length === 0) picked.push(random.int(0, n - 1));
  return Uint32Array.from(picked);
}

function identity(n: number): Uint32Array {
  const rows = new Uint32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  return rows;
}

function sampleFeatures(featureCount: number, share: number, random: Random): Int32Array {
  const all = Int32Array.from({ length: featureCount }, (_, f) => f);
  if (share === 1) return all;
  const count = Math.max(1, Math.round(featureCount * share));
  return shuffle(all, random).slice(0, count).sort();
}

// ---------------------------------------------------------------------------------------------
// Tree growth

interface Split {
  readonly gain: number;
  readonly feature: number;
  readonly bin: number;
  readonly gradLeft: number;
  readonly hessLeft: number;
}

/** A leaf of the tree being grown, owning rows[start, end) of the grower's row buffer. */
interface GrowingLeaf {
  readonly node: number;
  readonly depth: number;
  readonly start: number;
  readonly end: number;
  readonly grad: number;
  readonly hess: number;
  hist: Float64Array | undefined;
  split: Split | undefined;
}

interface GrownTree {
  readonly tree: Tree;
  /** Split bin per node (-1 for leaves): the tree in bin space, for rows it was not grown on. */
  readonly splitBin: number[];
  /** Final leaves and their row ranges in the grower's row buffer. */
  readonly leaves: GrowingLeaf[];
  /** The rows the tree was grown on (row buffer contents, partitioned by leaf). */
  readonly rows: Uint32Array;
}

class TreeGrower {
  /** Gradient and hessian of row i at [2i] and [2i + 1]. */
  private readonly gradHess: Float64Array;
  /**
   * The gradient pair of the row at each position of the row buffer: partitioning moves the pairs
   * with their rows, so every node reads its gradients sequentially, never gathers them.
   */
  private readonly rowGradHess: Float64Array;
  private readonly scratch: Uint32Array;
  private readonly scratchGradHess: Float64Array;
  private readonly histPool: Float64Array[] = [];
  private readonly histSize: number;
  private readonly maxLeaves: number;
  /** This tree's features that can split (2+ bins), ascending: the scan order that breaks gain ties. */
  private features = new Int32Array(0);
  private manyBinFeatures = new Int32Array(0);
  private twoBinFeatures = new Int32Array(0);

  constructor(
    private readonly binning: Binning,
    private readonly p: GbdtParams,
  ) {
    const n = binning.rows;
    this.gradHess = new Float64Array(2 * n);
    this.rowGradHess = new Float64Array(2 * n);
    this.scratch = new Uint32Array(n);
    this.scratchGradHess = new Float64Array(2 * n);
    this.histSize = binning.histOffsets[binning.featureCount]! * 2;
    this.maxLeaves = p.maxLeaves === 0 ? Infinity : p.maxLeaves;
  }

  /** Logistic loss: gradient p - y and hessian p (1 - p) at the current margins. */
  setGradients(margins: Float64Array, labels: Uint8Array): void {
    for (let i = 0; i < margins.length; i++) {
      const prob = 1 / (1 + Math.exp(-margins[i]!));
      this.gradHess[2 * i] = prob - labels[i]!;
      this.gradHess[2 * i + 1] = Math.max(prob * (1 - prob), MIN_HESSIAN);
    }
  }

  grow(rows: Uint32Array, features: Int32Array): GrownTree {
    const binCount = (f: number) => this.binning.edges[f]!.length + 1;
    this.features = features.filter((f) => binCount(f) >= 2);
    this.manyBinFeatures = features.filter((f) => binCount(f) > 2);
    this.twoBinFeatures = features.filter((f) => binCount(f) === 2);
    const tree: Tree = { feature: [], threshold: [], left: [], right: [], value: [] };
    const splitBin: number[] = [];
    const addNode = (): number => {
      tree.feature.push(-1);
      tree.threshold.push(0);
      tree.left.push(-1);
      tree.right.push(-1);
      tree.value.push(0);
      splitBin.push(-1);
      return tree.feature.length - 1;
    };

    let grad = 0;
    let hess = 0;
    const { gradHess, rowGradHess } = this;
    for (let k = 0; k < rows.length; k++) {
      const g = gradHess[2 * rows[k]!]!;
      const h = gradHess[2 * rows[k]! + 1]!;
      rowGradHess[2 * k] = g;
      rowGradHess[2 * k + 1] = h;
      grad += g;
      hess += h;
    }
    const root: GrowingLeaf = {
      node: addNode(),
      depth: 0,
      start: 0,
      end: rows.length,
      grad,
      hess,
      hist: undefined,
      split: undefined,
    };
    const leaves = [root];
    const candidates: GrowingLeaf[] = [];
    if (this.splittable(root)) {
      root.hist = this.buildHistogram(rows, root);
      this.considerSplit(root, candidates);
    }

    while (candidates.length > 0 && leaves.length < this.maxLeaves) {
      const parent = takeBest(candidates);
      const split = parent.split!;
      const node = parent.node;
      const mid = this.partition(rows, parent.start, parent.end, split);
      const left: GrowingLeaf = {
        node: addNode(),
        depth: parent.depth + 1,
        start: parent.start,
        end: mid,
        grad: split.gradLeft,
        hess: split.hessLeft,
        hist: undefined,
        split: undefined,
      };
      const right: GrowingLeaf = {
        node: addNode(),
        depth: parent.depth + 1,
        start: mid,
        end: parent.end,
        grad: parent.grad - split.gradLeft,
        hess: parent.hess - split.hessLeft,
        hist: undefined,
        split: undefined,
      };
      tree.feature[node] = split.feature;
      tree.threshold[node] = this.binning.edges[split.feature]![split.bin]!;
      tree.left[node] = left.node;
      tree.right[node] = right.node;
      splitBin[node] = split.bin;
      leaves.splice(leaves.indexOf(parent), 1, left, right);

      if (this.splittable(left) || this.splittable(right)) {
        const leftSmaller = mid - parent.start <= parent.end - mid;
        const [small, large] = leftSmaller ? [left, right] : [right, left];
        small.hist = this.buildHistogram(rows, small);
        large.hist = subtractInPlace(parent.hist!, small.hist);
        this.considerSplit(left, candidates);
        this.considerSplit(right, candidates);
      } else {
        this.histPool.push(parent.hist!);
      }
      parent.hist = undefined;
    }
    for (const leaf of candidates) this.releaseHistogram(leaf);

    for (const leaf of leaves) {
      tree.value[leaf.node] = Math.fround((-leaf.grad / (leaf.hess + this.p.lambda)) * this.p.learningRate);
    }
    return { tree, splitBin, leaves, rows };
  }

  /** Adds the tree's leaf values to the training margins: grown rows by leaf range, others by descent. */
  addToMargins(grown: GrownTree, margins: Float64Array): void {
    const { tree, leaves, rows } = grown;
    for (const leaf of leaves) {
      const value = tree.value[leaf.node]!;
      for (let k = leaf.start; k < leaf.end; k++) margins[rows[k]!]! += value;
    }
    if (rows.length === margins.length) return;
    const grownOn = new Uint8Array(margins.length);
    for (const row of rows) grownOn[row] = 1;
    const { bins, rows: n } = this.binning;
    for (let row = 0; row < margins.length; row++) {
      if (grownOn[row]) continue;
      let node = 0;
      while (tree.feature[node] !== -1) {
        const bin = bins[tree.feature[node]! * n + row]!;
        node = bin <= grown.splitBin[node]! ? tree.left[node]! : tree.right[node]!;
      }
      margins[row]! += tree.value[node]!;
    }
  }

  private splittable(leaf: GrowingLeaf): boolean {
    return (
      leaf.depth < this.p.maxDepth && leaf.end - leaf.start >= 2 && leaf.hess >= 2 * this.p.minChildWeight
    );
  }

  /** Finds the leaf's best split; keeps the leaf (and its histogram) as a candidate only if one exists. */
  private considerSplit(leaf: GrowingLeaf, candidates: GrowingLeaf[]): void {
    if (this.splittable(leaf)) leaf.split = this.bestSplit(leaf);
    if (leaf.split) candidates.push(leaf);
    else this.releaseHistogram(leaf);
  }

  private releaseHistogram(leaf: GrowingLeaf): void {
    if (leaf.hist) this.histPool.push(leaf.hist);
    leaf.hist = undefined;
  }

  private bestSplit(leaf: GrowingLeaf): Split | undefined {
    const { lambda, minChildWeight } = this.p;
    const hist = leaf.hist!;
    const parentScore = (leaf.grad * leaf.grad) / (leaf.hess + lambda);
    let best: Split | undefined;
    let bestGain = MIN_GAIN;
    for (const f of this.features) {
      const from = this.binning.histOffsets[f]! << 1;
      const to = (this.binning.histOffsets[f + 1]! << 1) - 2; // the last bin cannot go left
      let gl = 0;
      let hl = 0;
      for (let j = from; j < to; j += 2) {
        gl += hist[j]!;
        hl += hist[j + 1]!;
        const hr = leaf.hess - hl;
        if (hl < minChildWeight) continue;
        if (hr < minChildWeight) break;
        const gr = leaf.grad - gl;
        const gain = (gl * gl) / (hl + lambda) + (gr * gr) / (hr + lambda) - parentScore;
        if (gain > bestGain) {
          bestGain = gain;
          best = { gain, feature: f, bin: (j - from) >> 1, gradLeft: gl, hessLeft: hl };
        }
      }
    }
    return best;
  }

  /** Sums the leaf's gradients and hessians per (feature, bin). */
  private buildHistogram(rows: Uint32Array, leaf: GrowingLeaf): Float64Array {
    const hist = this.histPool.pop() ?? new Float64Array(this.histSize);
    hist.fill(0);
    const node = { rows, start: leaf.start, end: leaf.end, gradHess: this.rowGradHess };
    accumulateManyBins(hist, this.binning, this.manyBinFeatures, node);
    accumulateTwoBins(hist, this.binning, this.twoBinFeatures, node, leaf.grad, leaf.hess);
    return hist;
  }

  /**
   * Stable in-place partition of rows[start, end) (and their gradient pairs) by the split; returns
   * where the right side begins.
   */
  private partition(rows: Uint32Array, start: number, end: number, split: Split): number {
    const { bins, rows: n } = this.binning;
    const { rowGradHess, scratch, scratchGradHess } = this;
    const column = split.feature * n;
    const bin = split.bin;
    let left = start;
    let right = 0;
    for (let k = start; k < end; k++) {
      // Branch-free: the side is data-dependent and mispredicts half the time.
      const row = rows[k]!;
      const g = rowGradHess[2 * k]!;
      const h = rowGradHess[2 * k + 1]!;
      const goesRight = (bin - bins[column + row]!) >>> 31;
      rows[left] = row;
      rowGradHess[2 * left] = g;
      rowGradHess[2 * left + 1] = h;
      scratch[right] = row;
      scratchGradHess[2 * right] = g;
      scratchGradHess[2 * right + 1] = h;
      left += 1 - goesRight;
      right += goesRight;
    }
    rows.set(scratch.subarray(0, right), left);
    rowGradHess.set(scratchGradHess.subarray(0, 2 * right), 2 * left);
    return left;
  }
}

/** The rows[start, end) of one node; the gradient pair of rows[k] is at gradHess[2k], gradHess[2k + 1]. */
interface NodeRows {
  readonly rows: Uint32Array;
  readonly start: number;
  readonly end: number;
  readonly gradHess: Float64Array;
}

/**
 * Histograms of features with 3+ bins, four features per pass over the rows: the row index and the
 * gradient pair are loaded once for four features, and the four histograms are independent add
 * chains (one feature's adds often hit the same bin back to back, which serializes them).
 */
function accumulateManyBins(
  hist: Float64Array,
  binning: Binning,
  features: Int32Array,
  node: NodeRows,
): void {
  const { bins, rows: n, histOffsets } = binning;
  const { rows, start, end, gradHess } = node;
  let i = 0;
  for (; i + 4 <= features.length; i += 4) {
    const c0 = features[i]! * n;
    const c1 = features[i + 1]! * n;
    const c2 = features[i + 2]! * n;
    const c3 = features[i + 3]! * n;
    const o0 = histOffsets[features[i]!]! << 1;
    const o1 = histOffsets[features[i + 1]!]! << 1;
    const o2 = histOffsets[features[i + 2]!]! << 1;
    const o3 = histOffsets[features[i + 3]!]! << 1;
    for (let k = start; k < end; k++) {
      const row = rows[k]!;
      const g = gradHess[k << 1]!;
      const h = gradHess[(k << 1) + 1]!;
      const j0 = o0 + (bins[c0 + row]! << 1);
      const j1 = o1 + (bins[c1 + row]! << 1);
      const j2 = o2 + (bins[c2 + row]! << 1);
      const j3 = o3 + (bins[c3 + row]! << 1);
      hist[j0]! += g;
      hist[j0 + 1]! += h;
      hist[j1]! += g;
      hist[j1 + 1]! += h;
      hist[j2]! += g;
      hist[j2 + 1]! += h;
      hist[j3]! += g;
      hist[j3 + 1]! += h;
    }
  }
  for (; i < features.length; i++) {
    const column = features[i]! * n;
    const offset = histOffsets[features[i]!]! << 1;
    for (let k = start; k < end; k++) {
      const j = offset + (bins[column + rows[k]!]! << 1);
      hist[j]! += gradHess[k << 1]!;
      hist[j + 1]! += gradHess[(k << 1) + 1]!;
    }
  }
}

/**
 * Histograms of two-bin features (the one-hot columns): bin 1 is summed in registers as bin * g, with
 * no memory traffic, and bin 0 is the node total minus bin 1.
 */
function accumulateTwoBins(
  hist: Float64Array,
  binning: Binning,
  features: Int32Array,
  node: NodeRows,
  grad: number,
  hess: number,
): void {
  const { bins, rows: n, histOffsets } = binning;
  const { rows, start, end, gradHess } = node;
  const store = (feature: number, grad1: number, hess1: number) => {
    const offset = histOffsets[feature]! << 1;
    hist[offset] = grad - grad1;
    hist[offset + 1] = hess - hess1;
    hist[offset + 2] = grad1;
    hist[offset + 3] = hess1;
  };
  let i = 0;
  for (; i + 4 <= features.length; i += 4) {
    const c0 = features[i]! * n;
    const c1 = features[i + 1]! * n;
    const c2 = features[i + 2]! * n;
    const c3 = features[i + 3]! * n;
    let g0 = 0;
    let h0 = 0;
    let g1 = 0;
    let h1 = 0;
    let g2 = 0;
    let h2 = 0;
    let g3 = 0;
    let h3 = 0;
    for (let k = start; k < end; k++) {
      const row = rows[k]!;
      const g = gradHess[k << 1]!;
      const h = gradHess[(k << 1) + 1]!;
      const b0 = bins[c0 + row]!;
      const b1 = bins[c1 + row]!;
      const b2 = bins[c2 + row]!;
      const b3 = bins[c3 + row]!;
      g0 += b0 * g;
      h0 += b0 * h;
      g1 += b1 * g;
      h1 += b1 * h;
      g2 += b2 * g;
      h2 += b2 * h;
      g3 += b3 * g;
      h3 += b3 * h;
    }
    store(features[i]!, g0, h0);
    store(features[i + 1]!, g1, h1);
    store(features[i + 2]!, g2, h2);
    store(features[i + 3]!, g3, h3);
  }
  for (; i < features.length; i++) {
    const column = features[i]! * n;
    let g1 = 0;
    let h1 = 0;
    for (let k = start; k < end; k++) {
      const b = bins[column + rows[k]!]!;
      g1 += b * gradHess[k << 1]!;
      h1 += b * gradHess[(k << 1) + 1]!;
    }
    store(features[i]!, g1, h1);
  }
}

function takeBest(candidates: GrowingLeaf[]): GrowingLeaf {
  let bestIndex = 0;
  for (let i = 1; i < candidates.length; i++) {
    const a = candidates[i]!;
    const b = candidates[bestIndex]!;
    // Ties go to the older node, so growth order never depends on anything but the data.
    if (a.split!.gain > b.split!.gain || (a.split!.gain === b.split!.gain && a.node < b.node)) bestIndex = i;
  }
  return candidates.splice(bestIndex, 1)[0]!;
}

/** parent -= child, in place; the result is the sibling's histogram. */
function subtractInPlace(parent: Float64Array, child: Float64Array): Float64Array {
  for (let j = 0; j < parent.length; j++) parent[j]! -= child[j]!;
  return parent;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Adds one tree's leaf values to `margins`, descending on the raw float32 features as ensembleMargin does. */
function addTreeToMargins(tree: Tree, data: Dataset, margins: Float64Array): void {
  const { x, featureCount } = data;
  for (let row = 0; row < margins.length; row++) {
    const offset = row * featureCount;
    let node = 0;
    while (tree.feature[node] !== -1) {
      node = x[offset + tree.feature[node]!]! < tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
    }
    margins[row]! += tree.value[node]!;
  }
}

/** Adds one tree's leaf values to `margins`, descending on bins made with the tree's edges (same routes). */
function addBinnedTreeToMargins(grown: GrownTree, data: BinnedDataset, margins: Float64Array): void {
  const { tree, splitBin } = grown;
  const { bins, rows } = data;
  for (let row = 0; row < margins.length; row++) {
    let node = 0;
    while (tree.feature[node] !== -1) {
      const bin = bins[tree.feature[node]! * rows + row]!;
      node = bin <= splitBin[node]! ? tree.left[node]! : tree.right[node]!;
    }
    margins[row]! += tree.value[node]!;
  }
}

/** Mean log loss from margins, as softplus so it stays finite without clipping. */
function marginLogLoss(margins: Float64Array, labels: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < margins.length; i++) {
    const z = labels[i] === 1 ? -margins[i]! : margins[i]!;
    total += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return total / margins.length;
}
