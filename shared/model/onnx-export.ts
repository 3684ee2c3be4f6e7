/**
 * Writes a {@link ChurnModel} as an ONNX ModelProto (IR 8; opsets ai.onnx 17 and ai.onnx.ml 3) that
 * onnxruntime evaluates to the same class-1 probability as `sigmoid(ensembleMargin(...))` /
 * `sigmoid(linearMargin(...))`, to within float32 rounding of the final probability.
 *
 * Graph contract: one input `features` float32 [N, featureCount]; outputs `label` int64 [N] and
 * `probabilities` float32 [N, 2] (column 1 is class 1). `label` is onnxruntime's own decision
 * (margin > 0, or margin > 0.5 when every leaf weight is >= 0); Keel never reads it and applies its
 * own threshold to the class-1 probability.
 *
 * Tree ensembles (verified against onnxruntime 1.30, tree_ensemble_aggregator.h / tree_ensemble_common.h):
 * - The input is cast to double first: TreeEnsembleClassifier with a double input uses double
 *   thresholds, leaf weights and accumulation (`*_as_tensor` attributes), where a float input would
 *   sum the leaves in float32 and drift from the trainer's double margin by up to ~1e-5.
 * - All leaf weights carry class id 0 and `base_values` holds the single value baseScore: in the
 *   binary case onnxruntime then computes s = baseScore + sum(leaves) and writes
 *   [logistic(-s), logistic(s)]. Weights on class id 1 would silently drop base_values, and two
 *   base values would drop the leaves.
 * - Trees with `missingLeft` (imported XGBoost trees) add `nodes_missing_value_tracks_true`: a NaN
 *   input then takes the true (left, `x < threshold`) branch where it is 1, as ensembleMargin does.
 */
import onnxProto from 'onnx-proto';
import { KeelError } from '#shared/errors.ts';
import type { ChurnModel, LinearModel, Tree, TreeEnsemble } from './model-types.ts';

const { onnx } = onnxProto;
const AttrType = onnx.AttributeProto.AttributeType;
const DataType = onnx.TensorProto.DataType;

/** Keys that Keel writes into the ModelProto's `metadata_props`. */
export const ONNX_METADATA_KEYS = {
  /** Always {@link KEEL_ONNX_FORMAT}: marks a model written by this exporter. */
  format: 'keel.format',
  /** `tree-ensemble` or `linear`. */
  modelKind: 'keel.model_kind',
  /** Decimal feature count (the input's last dimension). */
  featureCount: 'keel.feature_count',
  /** JSON array of the ordered feature names the model was trained on. */
  featureNames: 'keel.feature_names',
} as const;

/**
 * An exported model and the evaluation it came from (the trainer's, or XGBoost's trees) must agree to
 * this in probability on every row checked, or nothing is registered.
 */
export const PARITY_TOLERANCE = 1e-6;
export const KEEL_ONNX_FORMAT = 'keel-churn-onnx/1';
export const ONNX_INPUT_NAME = 'features';
export const ONNX_LABEL_OUTPUT = 'label';
export const ONNX_PROBABILITY_OUTPUT = 'probabilities';

const IR_VERSION = 8;
const DEFAULT_OPSET = 17;
const ML_OPSET = 3;

export interface OnnxExportMeta {
  /** Ordered feature names; their count must equal the model's featureCount. */
  readonly featureNames: readonly string[];
  readonly producer?: { readonly name: string; readonly version?: string };
}

/** The model cannot be expressed as a valid ONNX graph (malformed tree, wrong feature names...). */
export class OnnxExportError extends KeelError {
  readonly code = 'Internal';
}

export function exportOnnx(model: ChurnModel, meta: OnnxExportMeta): Uint8Array {
  checkFeatureNames(model.featureCount, meta.featureNames);
  const body = model.kind === 'tree-ensemble' ? treeEnsembleGraph(model) : linearGraph(model);
  const F = model.featureCount;
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: meta.producer?.name ?? 'keel',
    producerVersion: meta.producer?.version ?? '',
    opsetImport: [
      { domain: '', version: DEFAULT_OPSET },
      { domain: 'ai.onnx.ml', version: ML_OPSET },
    ],
    metadataProps: [
      { key: ONNX_METADATA_KEYS.format, value: KEEL_ONNX_FORMAT },
      { key: ONNX_METADATA_KEYS.modelKind, value: model.kind },
      { key: ONNX_METADATA_KEYS.featureCount, value: String(F) },
      { key: ONNX_METADATA_KEYS.featureNames, value: JSON.stringify(meta.featureNames) },
    ],
    graph: {
      name: `keel_${model.kind.replace('-', '_')}`,
      node: body.nodes,
      initializer: body.initializers,
      input: [tensorInfo(ONNX_INPUT_NAME, DataType.FLOAT, ['N', F])],
      output: [
        tensorInfo(ONNX_LABEL_OUTPUT, DataType.INT64, ['N']),
        tensorInfo(ONNX_PROBABILITY_OUTPUT, DataType.FLOAT, ['N', 2]),
      ],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

interface GraphBody {
  nodes: onnxProto.onnx.INodeProto[];
  initializers: onnxProto.onnx.ITensorProto[];
}

const FEATURES_F64 = 'features_f64';
const castInputToDouble: onnxProto.onnx.INodeProto = {
  opType: 'Cast',
  name: 'cast_features_f64',
  input: [ONNX_INPUT_NAME],
  output: [FEATURES_F64],
  attribute: [intAttr('to', DataType.DOUBLE)],
};

function treeEnsembleGraph(model: TreeEnsemble): GraphBody {
  checkFinite(model.baseScore, 'baseScore');
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const modes: string[] = [];
  const thresholds: number[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const leafTreeIds: number[] = [];
  const leafNodeIds: number[] = [];
  const leafWeights: number[] = [];
  const missingTracksTrue: number[] = [];
  // Without any leaf weight onnxruntime leaves the binary case and writes one score per row instead of two.
  const trees: readonly Tree[] =
    model.trees.length > 0
      ? model.trees
      : [{ feature: [-1], threshold: [0], left: [-1], right: [-1], value: [0] }];
  trees.forEach((tree, t) => {
    checkTree(tree, t, model.featureCount);
    // onnxruntime takes the first listed node of each tree as its root, so nodes go out in index order.
    for (let n = 0; n < tree.feature.length; n++) {
      const feature = tree.feature[n]!;
      treeIds.push(t);
      nodeIds.push(n);
      missingTracksTrue.push(feature !== -1 && tree.missingLeft?.[n] === true ? 1 : 0);
      if (feature === -1) {
        featureIds.push(0);
        modes.push('LEAF');
        thresholds.push(0);
        trueIds.push(0);
        falseIds.push(0);
        leafTreeIds.push(t);
        leafNodeIds.push(n);
        leafWeights.push(tree.value[n]!);
      } else {
        featureIds.push(feature);
        modes.push('BRANCH_LT');
        thresholds.push(tree.threshold[n]!);
        trueIds.push(tree.left[n]!);
        falseIds.push(tree.right[n]!);
      }
    }
  });
  const classifier: onnxProto.onnx.INodeProto = {
    opType: 'TreeEnsembleClassifier',
    domain: 'ai.onnx.ml',
    name: 'tree_ensemble',
    input: [FEATURES_F64],
    output: [ONNX_LABEL_OUTPUT, ONNX_PROBABILITY_OUTPUT],
    attribute: [
      intsAttr('nodes_treeids', treeIds),
      intsAttr('nodes_nodeids', nodeIds),
      intsAttr('nodes_featureids', featureIds),
      stringsAttr('nodes_modes', modes),
      doublesTensorAttr('nodes_values_as_tensor', thresholds),
      intsAttr('nodes_truenodeids', trueIds),
      intsAttr('nodes_falsenodeids', falseIds),
      // Written only when some tree sets it, so Keel's own models export exactly as before.
      ...(trees.some((tree) => tree.missingLeft)
        ? [intsAttr('nodes_missing_value_tracks_true', missingTracksTrue)]
        : []),
      intsAttr('class_treeids', leafTreeIds),
      intsAttr('class_nodeids', leafNodeIds),
      intsAttr(
        'class_ids',
        leafWeights.map(() => 0),
      ),
      doublesTensorAttr('class_weights_as_tensor', leafWeights),
      doublesTensorAttr('base_values_as_tensor', [model.baseScore]),
      intsAttr('classlabels_int64s', [0, 1]),
      stringAttr('post_transform', 'LOGISTIC'),
    ],
  };
  return { nodes: [castInputToDouble, classifier], initializers: [] };
}

/**
 * Standard double-precision ops rather than ai.onnx.ml.LinearClassifier, whose coefficients are float32
 * and whose GEMM runs in float32.
 */
function linearGraph(model: LinearModel): GraphBody {
  const F = model.featureCount;
  if (model.weights.length !== F) {
    throw new OnnxExportError(`linear model has ${model.weights.length} weights for ${F} features`);
  }
  for (const [i, w] of model.weights.entries()) checkFinite(w, `weights[${i}]`);
  checkFinite(model.intercept, 'intercept');
  const initializers = [
    doubleTensor('weights', [F, 1], model.weights),
    doubleTensor('intercept', [1], [model.intercept]),
    doubleTensor('zero', [1], [0]),
    { name: 'label_shape', dims: [1], dataType: DataType.INT64, int64Data: [-1] },
  ];
  const node = (
    opType: string,
    input: string[],
    output: string,
    attribute: onnxProto.onnx.IAttributeProto[] = [],
  ) => ({
    opType,
    name: output,
    input,
    output: [output],
    attribute,
  });
  const nodes: onnxProto.onnx.INodeProto[] = [
    castInputToDouble,
    node('MatMul', [FEATURES_F64, 'weights'], 'dot'),
    node('Add', ['dot', 'intercept'], 'margin'),
    node('Neg', ['margin'], 'neg_margin'),
    node('Concat', ['neg_margin', 'margin'], 'margins', [intAttr('axis', 1)]),
    node('Sigmoid', ['margins'], 'probabilities_f64'),
    node('Cast', ['probabilities_f64'], ONNX_PROBABILITY_OUTPUT, [intAttr('to', DataType.FLOAT)]),
    // Same rule as the tree classifier's label (margin > 0); informational only.
    node('Greater', ['margin', 'zero'], 'positive'),
    node('Cast', ['positive'], 'label_column', [intAttr('to', DataType.INT64)]),
    node('Reshape', ['label_column', 'label_shape'], ONNX_LABEL_OUTPUT),
  ];
  return { nodes, initializers };
}

function checkFeatureNames(featureCount: number, names: readonly string[]): void {
  if (names.length !== featureCount) {
    throw new OnnxExportError(
      `${names.length} feature names given for a model with ${featureCount} features`,
    );
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new OnnxExportError(`duplicate feature name '${name}'`);
    seen.add(name);
  }
}

function checkTree(tree: Tree, t: number, featureCount: number): void {
  const n = tree.feature.length;
  if (n === 0) throw new OnnxExportError(`tree ${t} has no nodes`);
  for (const key of ['threshold', 'left', 'right', 'value', 'missingLeft'] as const) {
    const length = tree[key]?.length ?? n;
    if (length !== n) throw new OnnxExportError(`tree ${t}: ${key} has ${length} entries for ${n} nodes`);
  }
  // Each node reached from at most one parent (never the root) rules out cycles on the root's paths.
  const hasParent = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const feature = tree.feature[i]!;
    const where = `tree ${t} node ${i}`;
    if (feature === -1) {
      checkFinite(tree.value[i]!, `${where} value`);
      continue;
    }
    if (!Number.isInteger(feature) || feature < 0 || feature >= featureCount) {
      throw new OnnxExportError(`${where}: feature ${feature} is outside 0..${featureCount - 1}`);
    }
    if (Number.isNaN(tree.threshold[i]!)) throw new OnnxExportError(`${where}: threshold is NaN`);
    for (const child of [tree.left[i]!, tree.right[i]!]) {
      if (!Number.isInteger(child) || child <= 0 || child >= n || hasParent[child] === 1) {
        throw new OnnxExportError(`${where}: child ${child} is not a fresh non-root node of the tree`);
      }
      hasParent[child] = 1;
    }
  }
}

function checkFinite(value: number, what: string): void {
  if (!Number.isFinite(value)) throw new OnnxExportError(`${what} is not a finite number (${value})`);
}

/** A graph input or output: a tensor of `elemType` with fixed (number) or named (string) dimensions. */
export function tensorInfo(
  name: string,
  elemType: number,
  dims: (number | string)[],
): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function doubleTensor(name: string, dims: number[], values: readonly number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: DataType.DOUBLE, doubleData: [...values] };
}

function doublesTensorAttr(name: string, values: readonly number[]): onnxProto.onnx.IAttributeProto {
  return { name, type: AttrType.TENSOR, t: doubleTensor('', [values.length], values) };
}

function intAttr(name: string, i: number): onnxProto.onnx.IAttributeProto {
  return { name, type: AttrType.INT, i };
}

function intsAttr(name: string, ints: number[]): onnxProto.onnx.IAttributeProto {
  return { name, type: AttrType.INTS, ints };
}

function stringAttr(name: string, s: string): onnxProto.onnx.IAttributeProto {
  return { name, type: AttrType.STRING, s: new TextEncoder().encode(s) };
}

function stringsAttr(name: string, strings: string[]): onnxProto.onnx.IAttributeProto {
  const encoder = new TextEncoder();
  return { name, type: AttrType.STRINGS, strings: strings.map((s) => encoder.encode(s)) };
}
