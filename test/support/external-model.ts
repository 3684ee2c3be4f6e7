import onnxProto from 'onnx-proto';
import { FEATURE_COUNT, FEATURE_SET, featureIndex } from '#shared/features/index.ts';
import { tensorInfo } from '#shared/model/onnx-export.ts';

/**
 * A model of another kind than Keel's trainer writes, shaped the way skl2onnx converts a scikit-learn
 * LogisticRegression: ai.onnx.ml LinearClassifier (float32 coefficients, LOGISTIC post-transform) with
 * outputs `output_label` and a ZipMap `output_probability` (a sequence of {0: p0, 1: p1} maps), input
 * `float_input`, and only the ai.onnx.ml opset imported.
 */
const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;
const Attr = onnx.AttributeProto.AttributeType;

/** Churn log-odds: a few of the features with weights that make sense for the generated customers. */
export const EXTERNAL_WEIGHTS: Readonly<Record<string, number>> = {
  support_tickets_90d: 0.55,
  tenure_months: -0.035,
  plan_premium: -0.25,
};
export const EXTERNAL_INTERCEPT = -1.1;

export interface ExternalModelOptions {
  /** Input width; default the feature set's. */
  readonly featureCount?: number;
  readonly inputType?: 'float' | 'double';
  /** LOGISTIC gives probabilities; NONE gives raw margins (not probabilities). */
  readonly postTransform?: 'LOGISTIC' | 'NONE';
  /** The ZipMap's class labels; default [0, 1]. */
  readonly zipMapLabels?: number[];
}

export function externalOnnx(options: ExternalModelOptions = {}): Uint8Array {
  const F = options.featureCount ?? FEATURE_COUNT;
  const w = new Array<number>(F).fill(0);
  for (const [name, weight] of Object.entries(EXTERNAL_WEIGHTS)) {
    const index = featureIndex(name);
    if (index < F) w[index] = weight;
  }
  const elemType = options.inputType === 'double' ? DataType.DOUBLE : DataType.FLOAT;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'skl2onnx-like test',
    opsetImport: [{ domain: 'ai.onnx.ml', version: 1 }],
    graph: {
      name: 'logistic_regression',
      input: [tensorInfo('float_input', elemType, ['N', F])],
      output: [
        tensorInfo('output_label', DataType.INT64, ['N']),
        {
          name: 'output_probability',
          type: {
            sequenceType: {
              elemType: {
                mapType: { keyType: DataType.INT64, valueType: { tensorType: { elemType: DataType.FLOAT } } },
              },
            },
          },
        },
      ],
      node: [
        {
          opType: 'LinearClassifier',
          domain: 'ai.onnx.ml',
          name: 'linear',
          input: ['float_input'],
          output: ['output_label', 'probability_tensor'],
          attribute: [
            { name: 'coefficients', type: Attr.FLOATS, floats: [...w.map((v) => -v), ...w] },
            { name: 'intercepts', type: Attr.FLOATS, floats: [-EXTERNAL_INTERCEPT, EXTERNAL_INTERCEPT] },
            { name: 'classlabels_ints', type: Attr.INTS, ints: [0, 1] },
            { name: 'multi_class', type: Attr.INT, i: 0 },
            {
              name: 'post_transform',
              type: Attr.STRING,
              s: Buffer.from(options.postTransform ?? 'LOGISTIC'),
            },
          ],
        },
        {
          opType: 'ZipMap',
          domain: 'ai.onnx.ml',
          name: 'zipmap',
          input: ['probability_tensor'],
          output: ['output_probability'],
          attribute: [{ name: 'classlabels_int64s', type: Attr.INTS, ints: options.zipMapLabels ?? [0, 1] }],
        },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The class-1 probability the model computes for one encoded row, in double precision. */
export function externalProbability(x: Float32Array, offset = 0): number {
  let z = EXTERNAL_INTERCEPT;
  for (const [name, weight] of Object.entries(EXTERNAL_WEIGHTS))
    z += weight * x[offset + featureIndex(name)]!;
  return 1 / (1 + Math.exp(-z));
}

/** A metadata file for it, as a user would write one. */
export function externalMetadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'churn',
    algorithm: 'sklearn-logistic-regression',
    dataset: { uri: 's3://elsewhere/churn/train.parquet', rows: 50_000 },
    feature_set: {
      version: FEATURE_SET.version,
      fingerprint: FEATURE_SET.fingerprint,
      names: [...FEATURE_SET.names],
    },
    metrics: { auc: 0.71, logloss: 0.52, accuracy: 0.76 },
    threshold: 0.5,
    training: { rows: 40_000, params: { C: 1.0, solver: 'lbfgs' }, duration_ms: 1200 },
    ...overrides,
  };
}
