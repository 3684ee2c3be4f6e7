/**
 * The trained gradient-boosted tree ensemble, as plain data: what the trainer produces, what the ONNX
 * exporter writes and what the in-process scorer evaluates. All three must agree on these semantics:
 *
 * - Features are float32 (a row of a Float32Array); thresholds are float32 values (Math.fround).
 * - At an internal node, go to `left` when `x[feature] < threshold` (strict), else to `right`.
 *   NaN compares false, so it goes right (ONNX: BRANCH_LT, missing value does not track true), unless
 *   the tree has `missingLeft` and it is true for that node (imported XGBoost trees: default_left).
 * - Leaves have `feature === -1`; their `value` is an additive margin (log-odds) contribution.
 * - probability(class 1) = sigmoid(baseScore + sum of the reached leaf values).
 * - Leaf values and baseScore may be any finite doubles. The ONNX export (onnx-export.ts) evaluates in
 *   double, so onnxruntime matches this reference to ~1e-7 in probability (float32 output rounding).
 *   A float32 evaluation (ONNX float attributes) would instead drift by up to ~1e-6 at 1,000 trees,
 *   from float32 accumulation, whether or not the leaves are float32-representable.
 */
export interface Tree {
  /** Split feature index per node; -1 marks a leaf. Node 0 is the root. */
  readonly feature: number[];
  /** Split threshold per node (float32-representable); 0 for leaves. */
  readonly threshold: number[];
  /** Index of the left child per node; -1 for leaves. */
  readonly left: number[];
  /** Index of the right child per node; -1 for leaves. */
  readonly right: number[];
  /** Leaf margin per node; 0 for internal nodes. */
  readonly value: number[];
  /**
   * Per node: a NaN feature goes left (true) or right (false). Absent: NaN goes right everywhere (Keel's
   * own trainer); present on trees imported from XGBoost, whose splits learn a default direction.
   */
  readonly missingLeft?: readonly boolean[];
}

export interface TreeEnsemble {
  readonly kind: 'tree-ensemble';
  /** Number of input features each row carries. */
  readonly featureCount: number;
  /** Initial margin (log-odds of the base rate). */
  readonly baseScore: number;
  readonly trees: Tree[];
}

export function sigmoid(margin: number): number {
  return 1 / (1 + Math.exp(-margin));
}

/** Margin of one row that starts at `offset` in a row-major float32 matrix. */
export function ensembleMargin(model: TreeEnsemble, x: Float32Array, offset = 0): number {
  let margin = model.baseScore;
  for (const tree of model.trees) {
    if (tree.missingLeft) {
      margin += missingAwareLeaf(tree, tree.missingLeft, x, offset);
      continue;
    }
    let node = 0;
    let feature = tree.feature[0]!;
    while (feature !== -1) {
      node = x[offset + feature]! < tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
      feature = tree.feature[node]!;
    }
    margin += tree.value[node]!;
  }
  return margin;
}

/** The leaf value a row reaches in a tree whose NaN direction is set per node. */
function missingAwareLeaf(
  tree: Tree,
  missingLeft: readonly boolean[],
  x: Float32Array,
  offset: number,
): number {
  let node = 0;
  let feature = tree.feature[0]!;
  while (feature !== -1) {
    const v = x[offset + feature]!;
    const left = Number.isNaN(v) ? missingLeft[node] === true : v < tree.threshold[node]!;
    node = left ? tree.left[node]! : tree.right[node]!;
    feature = tree.feature[node]!;
  }
  return tree.value[node]!;
}

/**
 * The logistic-regression baseline, with any input standardization already folded into the weights:
 * probability(class 1) = sigmoid(intercept + sum_i weights[i] * x[i]). The ONNX export computes this in
 * double too (not with ai.onnx.ml.LinearClassifier, whose coefficients and GEMM are float32).
 */
export interface LinearModel {
  readonly kind: 'linear';
  readonly featureCount: number;
  readonly weights: number[];
  readonly intercept: number;
}

export type ChurnModel = TreeEnsemble | LinearModel;

export function linearMargin(model: LinearModel, x: Float32Array, offset = 0): number {
  let margin = model.intercept;
  for (let i = 0; i < model.featureCount; i++) margin += model.weights[i]! * x[offset + i]!;
  return margin;
}
