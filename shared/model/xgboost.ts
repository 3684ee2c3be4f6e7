/**
 * XGBoost models in: reads a model saved by XGBoost's `save_model` (JSON, or UBJSON as XGBoost ≥ 2.1
 * writes by default and SageMaker's built-in XGBoost container saves `xgboost-model`), evaluates its
 * trees independently of Keel's tree code, and converts it to Keel's {@link TreeEnsemble} and ONNX graph.
 *
 * Accepted: a `gbtree` booster with objective `binary:logistic`, one output group, numerical splits
 * only. XGBoost's tree semantics: at a split go left when `x[split_index] < split_condition`; a missing
 * (NaN) value follows `default_left`; a leaf (left child -1) adds its `split_conditions` entry (what
 * XGBoost's own loader reads as the leaf value) to the margin; the margin starts at
 * logit(base_score); probability = sigmoid(margin).
 */
import { KeelError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/encode.ts';
import { sigmoid, type Tree, type TreeEnsemble } from './model-types.ts';
import { exportOnnx, PARITY_TOLERANCE } from './onnx-export.ts';
import { loadOnnxScorer } from './onnx-runtime.ts';
import { decodeUbjson, UbjsonError, type UbjsonValue } from './ubjson.ts';

/** The file is not an XGBoost model Keel can serve; the message names the JSON path at fault. */
export class XgboostModelError extends KeelError {
  readonly code = 'ValidationError';
}

/** The converted ONNX model does not score like the XGBoost trees it came from. */
export class XgboostParityError extends KeelError {
  readonly code = 'Internal';
}

/** One tree as XGBoost stores it: per-node arrays indexed by node id, node 0 the root. */
export interface XgboostTree {
  readonly leftChildren: Int32Array;
  readonly rightChildren: Int32Array;
  readonly splitIndices: Int32Array;
  /** Split threshold at internal nodes, leaf value at leaves (float32 values). */
  readonly splitConditions: Float64Array;
  readonly defaultLeft: Uint8Array;
}

export interface XgboostModel {
  readonly objective: 'binary:logistic';
  /** base_score as stored (a probability for binary:logistic). */
  readonly baseScore: number;
  /** The margin every row starts from: logit(base_score), in float32 as XGBoost computes it. */
  readonly baseMargin: number;
  readonly featureCount: number;
  /** learner.feature_names; empty when the model was trained without names. */
  readonly featureNames: readonly string[];
  /**
   * The trees served: every tree in the file, or, when it was trained with early stopping
   * (`learner.attributes.best_iteration`), those up to the best iteration, as Keel's own trainer keeps.
   * XGBoost's `save_model` writes every round trained, including the ones after the best.
   */
  readonly trees: readonly XgboostTree[];
  /** Trees in the file (more than `trees.length` after early stopping). */
  readonly treesInFile: number;
  /** `learner.attributes.best_iteration`; null without early stopping. */
  readonly bestIteration: number | null;
  /** XGBoost's version that wrote the model, e.g. "1.7.4"; null when the file does not say. */
  readonly version: string | null;
}

const LEARNER = 'learner';
const MODEL = `${LEARNER}.gradient_booster.model`;

/** Parses and validates an XGBoost JSON or UBJSON model file. */
export function parseXgboostModel(bytes: Uint8Array): XgboostModel {
  return readModel(decode(bytes));
}

/** The model's feature names, or null when it was trained without them. */
export function xgboostFeatureNames(model: XgboostModel): readonly string[] | null {
  return model.featureNames.length > 0 ? model.featureNames : null;
}

/**
 * Margins of row-major float32 rows, walking XGBoost's own arrays (NaN = missing → default_left).
 * Sums in double; XGBoost itself sums in float32, so its margins differ by float32 rounding.
 */
export function xgboostMargins(model: XgboostModel, x: Float32Array, rows: number): Float64Array {
  const F = model.featureCount;
  if (!Number.isInteger(rows) || rows < 0 || x.length !== rows * F) {
    throw new RangeError(`expected ${rows} rows x ${F} features = ${rows * F} values, got ${x.length}`);
  }
  const out = new Float64Array(rows).fill(model.baseMargin);
  for (const tree of model.trees) {
    const { leftChildren, rightChildren, splitIndices, splitConditions, defaultLeft } = tree;
    for (let r = 0; r < rows; r++) {
      const row = r * F;
      let node = 0;
      while (leftChildren[node] !== -1) {
        const v = x[row + splitIndices[node]!]!;
        const goLeft = Number.isNaN(v) ? defaultLeft[node] === 1 : v < splitConditions[node]!;
        node = goLeft ? leftChildren[node]! : rightChildren[node]!;
      }
      out[r]! += splitConditions[node]!;
    }
  }
  return out;
}

/** The same trees as Keel's ensemble: thresholds and leaf values as they are, default_left as missingLeft. */
export function xgboostToEnsemble(model: XgboostModel): TreeEnsemble {
  const trees: Tree[] = model.trees.map((t) => {
    const n = t.leftChildren.length;
    const tree = {
      feature: [] as number[],
      threshold: [] as number[],
      left: [] as number[],
      right: [] as number[],
      value: [] as number[],
      missingLeft: [] as boolean[],
    };
    for (let i = 0; i < n; i++) {
      const leaf = t.leftChildren[i] === -1;
      tree.feature.push(leaf ? -1 : t.splitIndices[i]!);
      tree.threshold.push(leaf ? 0 : t.splitConditions[i]!);
      tree.left.push(leaf ? -1 : t.leftChildren[i]!);
      tree.right.push(leaf ? -1 : t.rightChildren[i]!);
      tree.value.push(leaf ? t.splitConditions[i]! : 0);
      tree.missingLeft.push(!leaf && t.defaultLeft[i] === 1);
    }
    return tree;
  });
  return { kind: 'tree-ensemble', featureCount: model.featureCount, baseScore: model.baseMargin, trees };
}

export interface ImportedXgboost {
  readonly model: TreeEnsemble;
  readonly onnx: Uint8Array;
  /** Largest |onnxruntime − sigmoid(xgboostMargins)| probability over the check rows. */
  readonly parityMaxDiff: number;
  /** The ONNX model's probabilities on the check rows (what its evaluation on them needs). */
  readonly scores: Float64Array;
  /** What the model is, for the registry's metadata (`params`). */
  readonly params: Record<string, unknown>;
}

export interface XgboostImportOptions {
  readonly featureSet: FeatureSet;
  /** Rows (this feature set's encoding, row-major) the ONNX model is checked on against the XGBoost trees. */
  readonly rows: { readonly x: Float32Array; readonly count: number };
}

/**
 * Parse → check the features against `featureSet` → convert → export ONNX → check parity on the rows.
 * Throws {@link XgboostModelError} for a model Keel cannot serve as this feature set's model and
 * {@link XgboostParityError} when the ONNX scores differ from the trees by more than PARITY_TOLERANCE.
 */
export async function importXgboostModel(
  bytes: Uint8Array,
  options: XgboostImportOptions,
): Promise<ImportedXgboost> {
  const xgb = parseXgboostModel(bytes);
  checkXgboostFeatures(xgb, options.featureSet);
  const model = xgboostToEnsemble(xgb);
  const onnx = exportOnnx(model, {
    featureNames: options.featureSet.names,
    producer: { name: 'keel-xgboost', ...(xgb.version ? { version: xgb.version } : {}) },
  });
  const parity = await checkXgboostParity(xgb, onnx, options);
  return {
    model,
    onnx,
    parityMaxDiff: parity.maxDiff,
    scores: parity.scores,
    params: {
      source: 'xgboost',
      xgboost_version: xgb.version,
      objective: xgb.objective,
      base_score: xgb.baseScore,
      trees: xgb.trees.length,
      trees_in_file: xgb.treesInFile,
      best_iteration: xgb.bestIteration,
      max_depth: Math.max(0, ...xgb.trees.map(depthOf)),
    },
  };
}

/** The model's features must be the feature set's: the same names in order, or the same count when unnamed. */
export function checkXgboostFeatures(model: XgboostModel, featureSet: FeatureSet): void {
  const expected = featureSet.names;
  const names = xgboostFeatureNames(model);
  if (names) {
    const at = expected.findIndex((name, i) => names[i] !== name);
    if (at !== -1 || names.length !== expected.length) {
      const i = at === -1 ? Math.min(names.length, expected.length) : at;
      throw new XgboostModelError(
        `${LEARNER}.feature_names differ from feature set ${featureSet.version} at position ${i}: ` +
          `the model has '${names[i] ?? '(none)'}', the feature set '${expected[i] ?? '(none)'}' ` +
          `(${names.length} vs ${expected.length} features). Train on the features in this order: ${expected.join(', ')}`,
      );
    }
  } else if (model.featureCount !== expected.length) {
    throw new XgboostModelError(
      `${LEARNER}.learner_model_param.num_feature is ${model.featureCount}, feature set ${featureSet.version} ` +
        `has ${expected.length} features (${expected.join(', ')})`,
    );
  }
}

/**
 * Scores `rows` with the ONNX model and compares each probability with sigmoid of the XGBoost trees'
 * margin; returns the largest difference with the ONNX scores, or throws {@link XgboostParityError}
 * above PARITY_TOLERANCE.
 */
export async function checkXgboostParity(
  model: XgboostModel,
  onnx: Uint8Array,
  options: XgboostImportOptions,
): Promise<{ maxDiff: number; scores: Float64Array }> {
  const { x, count } = options.rows;
  if (count < 1) throw new XgboostParityError('no rows to check the converted model on');
  const margins = xgboostMargins(model, x, count);
  const scorer = await loadOnnxScorer(onnx, {
    featureCount: options.featureSet.count,
    featureNames: options.featureSet.names,
  });
  let scores: Float64Array;
  try {
    scores = await scorer.scoreBatch(x, count);
  } finally {
    await scorer.release();
  }
  let maxDiff = 0;
  let worst = 0;
  for (let r = 0; r < count; r++) {
    const diff = Math.abs(scores[r]! - sigmoid(margins[r]!));
    // A NaN difference must fail, so compare with the negation.
    if (!(diff <= maxDiff)) {
      maxDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
      worst = r;
    }
  }
  if (!(maxDiff <= PARITY_TOLERANCE)) {
    throw new XgboostParityError(
      `the ONNX conversion scores row ${worst} at ${scores[worst]}, the XGBoost trees at ` +
        `${sigmoid(margins[worst]!)} (max difference ${maxDiff} > ${PARITY_TOLERANCE} over ${count} rows)`,
    );
  }
  return { maxDiff, scores };
}

function depthOf(tree: XgboostTree): number {
  const depth = (node: number): number =>
    tree.leftChildren[node] === -1
      ? 0
      : 1 + Math.max(depth(tree.leftChildren[node]!), depth(tree.rightChildren[node]!));
  return depth(0);
}

function decode(bytes: Uint8Array): unknown {
  // A JSON model starts with '{' (possibly after whitespace); UBJSON's object marker is '{' too, but its
  // next byte is a key length marker ('i', 'U', …) or an optimized-container '$' / '#', never '"'.
  const first = bytes.findIndex((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  const looksJson = first >= 0 && bytes[first] === 0x7b && nextNonSpace(bytes, first + 1) === 0x22;
  if (looksJson || (first >= 0 && bytes[first] !== 0x7b)) {
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (cause) {
      throw new XgboostModelError(
        `not an XGBoost model: neither JSON nor UBJSON (${(cause as Error).message})`,
        { cause },
      );
    }
  }
  try {
    return decodeUbjson(bytes);
  } catch (cause) {
    if (!(cause instanceof UbjsonError)) throw cause;
    throw new XgboostModelError(`not an XGBoost model: ${cause.message}`, { cause });
  }
}

function nextNonSpace(bytes: Uint8Array, from: number): number | undefined {
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
  }
  return undefined;
}

// --- Validation of the decoded document; every error names its JSON path. ---

type Json = UbjsonValue | undefined;

function fail(path: string, message: string): never {
  throw new XgboostModelError(`${path}: ${message}`);
}

function object(value: unknown, path: string): Record<string, Json> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object');
  return value as Record<string, Json>;
}

function string(value: Json, path: string): string {
  if (typeof value !== 'string') fail(path, `expected a string, got ${describe(value)}`);
  return value;
}

function array(value: Json, path: string): Json[] {
  if (!Array.isArray(value)) fail(path, `expected an array, got ${describe(value)}`);
  return value;
}

/** XGBoost writes its parameters as decimal strings ("20", "5E-1"); UBJSON readers may see numbers. */
function numberParam(value: Json, path: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  if (typeof value === 'string' && value.trim() === '') fail(path, 'expected a number, got an empty string');
  if (!Number.isFinite(n)) fail(path, `expected a number, got ${describe(value)}`);
  return n;
}

function integerParam(value: Json, path: string, min: number): number {
  const n = numberParam(value, path);
  if (!Number.isInteger(n) || n < min) fail(path, `expected an integer >= ${min}, got ${describe(value)}`);
  return n;
}

function describe(value: Json): string {
  if (value === undefined) return 'nothing (missing)';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function readModel(document: unknown): XgboostModel {
  const root = object(document, '(file)');
  const learner = object(root[LEARNER], LEARNER);
  const version = Array.isArray(root.version) ? root.version.join('.') : null;

  const objective = object(learner.objective, `${LEARNER}.objective`);
  const objectiveName = string(objective.name, `${LEARNER}.objective.name`);
  if (objectiveName !== 'binary:logistic') {
    fail(
      `${LEARNER}.objective.name`,
      `'${objectiveName}' is not supported: Keel serves binary classifiers trained with objective 'binary:logistic'`,
    );
  }

  const param = object(learner.learner_model_param, `${LEARNER}.learner_model_param`);
  const featureCount = integerParam(param.num_feature, `${LEARNER}.learner_model_param.num_feature`, 1);
  const numClass = integerParam(param.num_class ?? '0', `${LEARNER}.learner_model_param.num_class`, 0);
  if (numClass > 1) {
    fail(`${LEARNER}.learner_model_param.num_class`, `${numClass} classes: Keel serves binary classifiers`);
  }
  if (param.num_target !== undefined) {
    const targets = integerParam(param.num_target, `${LEARNER}.learner_model_param.num_target`, 1);
    if (targets !== 1) fail(`${LEARNER}.learner_model_param.num_target`, `${targets} targets: expected 1`);
  }
  const baseScore = readBaseScore(param.base_score, `${LEARNER}.learner_model_param.base_score`);

  const featureNames = readFeatureNames(learner.feature_names, featureCount);
  if (Array.isArray(learner.feature_types) && learner.feature_types.includes('c')) {
    const at = learner.feature_types.indexOf('c');
    fail(
      `${LEARNER}.feature_types[${at}]`,
      "categorical feature ('c'): encode categories as one-hot 0/1 columns",
    );
  }

  const booster = object(learner.gradient_booster, `${LEARNER}.gradient_booster`);
  const boosterName = string(booster.name, `${LEARNER}.gradient_booster.name`);
  if (boosterName !== 'gbtree') {
    fail(
      `${LEARNER}.gradient_booster.name`,
      `booster '${boosterName}' is not supported: train with booster 'gbtree'`,
    );
  }
  const model = object(booster.model, MODEL);
  const treeParam = object(model.gbtree_model_param, `${MODEL}.gbtree_model_param`);
  const numTrees = integerParam(treeParam.num_trees, `${MODEL}.gbtree_model_param.num_trees`, 0);
  const trees = array(model.trees, `${MODEL}.trees`);
  if (trees.length !== numTrees) {
    fail(`${MODEL}.trees`, `${trees.length} trees, gbtree_model_param.num_trees says ${numTrees}`);
  }
  const treeInfo = array(model.tree_info, `${MODEL}.tree_info`);
  if (treeInfo.length !== numTrees) {
    fail(`${MODEL}.tree_info`, `${treeInfo.length} entries for ${numTrees} trees`);
  }
  treeInfo.forEach((group, i) => {
    if (group !== 0)
      fail(`${MODEL}.tree_info[${i}]`, `output group ${describe(group)}: expected one group (0)`);
  });

  const bestIteration = readBestIteration(learner.attributes, numTrees);
  const served = bestIteration === null ? trees : trees.slice(0, bestIteration + 1);
  return {
    objective: objectiveName,
    baseScore,
    baseMargin: logitFloat32(baseScore),
    featureCount,
    featureNames,
    trees: served.map((tree, i) => readTree(tree, `${MODEL}.trees[${i}]`, featureCount)),
    treesInFile: numTrees,
    bestIteration,
    version,
  };
}

/** Early stopping's best round (0-based), which must name one of the file's trees. */
function readBestIteration(attributes: Json, numTrees: number): number | null {
  if (attributes === undefined) return null;
  const best = object(attributes, `${LEARNER}.attributes`).best_iteration;
  if (best === undefined) return null;
  const path = `${LEARNER}.attributes.best_iteration`;
  const iteration = integerParam(best, path, 0);
  if (iteration >= numTrees) fail(path, `${iteration}, but the model has ${numTrees} trees`);
  return iteration;
}

/** "5E-1", or the one-element vector "[5E-1]" XGBoost 3 writes. */
function readBaseScore(value: Json, path: string): number {
  const text = typeof value === 'string' ? value.trim() : value;
  const vector = typeof text === 'string' && text.startsWith('[') && text.endsWith(']');
  const items = vector ? text.slice(1, -1).split(',') : [text];
  if (items.length !== 1) fail(path, `${items.length} base scores: expected one output`);
  const score = Math.fround(numberParam(items[0], path));
  if (!(score > 0 && score < 1)) fail(path, `${score} is not a probability in (0, 1) for binary:logistic`);
  return score;
}

/** XGBoost's ProbToMargin for binary:logistic, -log(1/p - 1), step by step in float32 as it computes it. */
function logitFloat32(p: number): number {
  return Math.fround(-Math.log(Math.fround(Math.fround(1 / p) - 1)));
}

function readFeatureNames(value: Json, featureCount: number): string[] {
  const path = `${LEARNER}.feature_names`;
  if (value === undefined) return [];
  const names = array(value, path).map((name, i) => string(name, `${path}[${i}]`));
  if (names.length > 0 && names.length !== featureCount) {
    fail(path, `${names.length} names for num_feature ${featureCount}`);
  }
  return names;
}

function readTree(value: Json, path: string, featureCount: number): XgboostTree {
  const tree = object(value, path);
  const param = object(tree.tree_param, `${path}.tree_param`);
  const n = integerParam(param.num_nodes, `${path}.tree_param.num_nodes`, 1);
  if (param.size_leaf_vector !== undefined) {
    const size = integerParam(param.size_leaf_vector, `${path}.tree_param.size_leaf_vector`, 0);
    if (size > 1) fail(`${path}.tree_param.size_leaf_vector`, `${size}: vector leaves (multi-target trees)`);
  }

  const ints = (key: string) => {
    const values = array(tree[key], `${path}.${key}`);
    if (values.length !== n) fail(`${path}.${key}`, `${values.length} entries for ${n} nodes`);
    const out = new Int32Array(n);
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v > 0x7fffffff)
        fail(`${path}.${key}[${i}]`, `expected an integer, got ${describe(v)}`);
      out[i] = v;
    });
    return out;
  };
  const leftChildren = ints('left_children');
  const rightChildren = ints('right_children');
  const splitIndices = ints('split_indices');

  const conditions = array(tree.split_conditions, `${path}.split_conditions`);
  if (conditions.length !== n)
    fail(`${path}.split_conditions`, `${conditions.length} entries for ${n} nodes`);
  const splitConditions = new Float64Array(n);
  conditions.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v))
      fail(`${path}.split_conditions[${i}]`, `expected a finite number, got ${describe(v)}`);
    // XGBoost stores these as float32; a JSON file prints them with float32 precision.
    splitConditions[i] = Math.fround(v);
  });

  const defaults = array(tree.default_left, `${path}.default_left`);
  if (defaults.length !== n) fail(`${path}.default_left`, `${defaults.length} entries for ${n} nodes`);
  const defaultLeft = new Uint8Array(n);
  defaults.forEach((v, i) => {
    if (v !== 0 && v !== 1 && v !== true && v !== false)
      fail(`${path}.default_left[${i}]`, `expected 0/1 or a boolean, got ${describe(v)}`);
    defaultLeft[i] = v === 1 || v === true ? 1 : 0;
  });

  if (tree.split_type !== undefined) {
    array(tree.split_type, `${path}.split_type`).forEach((v, i) => {
      if (v !== 0)
        fail(
          `${path}.split_type[${i}]`,
          `categorical split (${describe(v)}): encode categories as one-hot columns`,
        );
    });
  }
  if (tree.categories !== undefined && array(tree.categories, `${path}.categories`).length > 0) {
    fail(`${path}.categories`, 'categorical splits: encode categories as one-hot columns');
  }

  // Every reachable node has one parent and the root none, so walking from the root always ends.
  const hasParent = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const left = leftChildren[i]!;
    const right = rightChildren[i]!;
    if (left === -1) {
      if (right !== -1) fail(`${path}.right_children[${i}]`, `${right} at a leaf (left child -1)`);
      continue;
    }
    const feature = splitIndices[i]!;
    if (feature < 0 || feature >= featureCount) {
      fail(`${path}.split_indices[${i}]`, `feature ${feature} is outside 0..${featureCount - 1}`);
    }
    for (const [key, child] of [
      ['left_children', left],
      ['right_children', right],
    ] as const) {
      if (child <= 0 || child >= n || hasParent[child] === 1) {
        fail(`${path}.${key}[${i}]`, `${child} is not a node of its own below the root (0 < id < ${n})`);
      }
      hasParent[child] = 1;
    }
  }
  return { leftChildren, rightChildren, splitIndices, splitConditions, defaultLeft };
}
