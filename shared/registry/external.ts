/**
 * Bringing your own model: an ONNX binary classifier trained outside Keel (XGBoost, scikit-learn, …),
 * or an XGBoost model file converted here, is checked against this deployment's feature set and made
 * servable before it is registered like any other version. Plain functions; the caller supplies the
 * feature rows to check it on.
 */
import onnxProto from 'onnx-proto';
import { z } from 'zod';
import { type FieldIssue, KeelError, ValidationError } from '#shared/errors.ts';
import type { FeatureSet } from '#shared/features/encode.ts';
import { evaluateBinary } from '#shared/model/metrics.ts';
import { tensorInfo } from '#shared/model/onnx-export.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { ModelFormatError } from '#shared/model/scorer.ts';
import { importXgboostModel, XgboostModelError, XgboostParityError } from '#shared/model/xgboost.ts';
import { type Baseline, buildBaseline } from './baseline.ts';
import { featureSetMetadata } from './feature-sets.ts';
import { type ModelMetadata, modelMetadataSchema, type NewModelMetadata } from './metadata.ts';
import { type RegistryDeps, registerModel, sha256Hex } from './registry.ts';

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;

/** Fields the registry fills in itself: a metadata file must not carry them. */
export const COMPUTED_FIELDS = ['version', 'artifact', 'created_at'] as const;

/**
 * The metadata file of an external model: the registry's metadata without the computed fields;
 * `parent` defaults to the champion at registration. Unknown keys are refused (a misspelt `treshold`
 * must not silently vanish).
 */
export const externalMetadataSchema = modelMetadataSchema
  .omit({ version: true, artifact: true, created_at: true, external: true })
  .extend({ parent: modelMetadataSchema.shape.parent.optional() })
  .strict();
export type ExternalMetadata = z.infer<typeof externalMetadataSchema>;

/** The external model cannot be registered as it is; the message says what to change. */
export class ExternalModelError extends KeelError {
  readonly code = 'ValidationError';
}

/** Checks a metadata file's content; every problem is reported with its field path. */
export function parseExternalMetadata(value: unknown, expected: { name: string }): ExternalMetadata {
  const issues: FieldIssue[] = [];
  if (typeof value === 'object' && value !== null) {
    for (const field of COMPUTED_FIELDS)
      if (field in value) issues.push({ path: field, message: 'computed by the registry: remove it' });
  }
  const parsed = externalMetadataSchema.safeParse(
    typeof value === 'object' && value !== null
      ? Object.fromEntries(
          Object.entries(value).filter(([k]) => !(COMPUTED_FIELDS as readonly string[]).includes(k)),
        )
      : value,
  );
  if (!parsed.success) {
    issues.push(
      ...parsed.error.issues.map((issue) => ({
        path: issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(file)'),
        message: issue.message,
      })),
    );
  } else if (parsed.data.name !== expected.name) {
    issues.push({
      path: 'name',
      message: `this platform serves model "${expected.name}", not "${parsed.data.name}"`,
    });
  }
  if (issues.length > 0 || !parsed.success) {
    throw new ValidationError(
      `the metadata file is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return parsed.data;
}

/** Feature set the metadata was trained on versus this deployment's; a mismatch needs `force` and a reason. */
export function checkFeatureSet(
  metadata: ExternalMetadata,
  featureSet: FeatureSet,
  override: { force?: boolean; reason?: string },
): void {
  const declared = metadata.feature_set;
  const sameNames =
    declared.names.length === featureSet.names.length &&
    declared.names.every((n, i) => n === featureSet.names[i]);
  if (declared.fingerprint === featureSet.fingerprint && sameNames) return;
  if (override.force && override.reason) return;
  const first = declared.names.findIndex((n, i) => n !== featureSet.names[i]);
  throw new ExternalModelError(
    `the model was trained on feature set ${declared.version} (${declared.fingerprint}), this deployment computes ` +
      `${featureSet.version} (${featureSet.fingerprint})` +
      (sameNames
        ? ''
        : `; feature names differ${first >= 0 ? ` at position ${first} ('${declared.names[first]}' vs '${featureSet.names[first] ?? '(none)'}')` : ` in count (${declared.names.length} vs ${featureSet.names.length})`}`) +
      '. Retrain on the current features (`keel etl run` writes them), or register anyway with --force --reason TEXT ' +
      '(serving refuses it until the feature set matches)',
  );
}

/**
 * Makes a converter's graph servable by Keel's runtime (one float32 [N, F] input, a probability
 * tensor output), recording each change:
 * - a ZipMap output (skl2onnx and onnxmltools default: a sequence of {class: probability} maps) is
 *   replaced by the probability tensor that fed it, under the same output name;
 * - a double input is taken as float32 and cast to double inside the graph.
 * Anything else is left as it is, for the runtime's checks to accept or refuse.
 */
export function normalizeOnnx(bytes: Uint8Array): { onnx: Uint8Array; changes: string[] } {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelFormatError(`not an ONNX model (protobuf decoding failed: ${(cause as Error).message})`, {
      cause,
    });
  }
  if (!model.graph) throw new ModelFormatError('not an ONNX model: the ModelProto has no graph');
  // Decoded messages have every repeated field set; the generated types leave them optional.
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const nodes = graph.node as onnxProto.onnx.NodeProto[];
  const changes: string[] = [];

  for (const node of nodes) {
    if (node.opType !== 'ZipMap' || node.domain !== 'ai.onnx.ml') continue;
    const output = graph.output.find((o) => o.name === node.output[0]);
    if (!output) continue;
    // Column 1 is read as class 1: the map's keys must be the integer labels 0 and 1, in that order.
    const labels = node.attribute.find((a) => a.name === 'classlabels_int64s')?.ints?.map(Number);
    if (labels?.length !== 2 || labels[0] !== 0 || labels[1] !== 1) {
      throw new ModelFormatError(
        `ZipMap output '${output.name}' maps classes ${labels ? `[${labels.join(', ')}]` : 'named by strings'}; ` +
          'Keel reads class 1 from the second column: train with integer labels 0 and 1',
      );
    }
    node.opType = 'Identity';
    node.domain = '';
    node.attribute = [];
    output.type = tensorInfo(output.name ?? '', DataType.FLOAT, ['N', 2]).type ?? null;
    changes.push(`ZipMap output '${output.name}' replaced by its probability tensor`);
  }

  const [input, ...more] = graph.input;
  const tensor = input?.type?.tensorType;
  if (input?.name && more.length === 0 && tensor?.elemType === DataType.DOUBLE) {
    const name = input.name;
    const cast = `${name}_as_double`;
    if (graph.output.some((o) => o.name === name))
      throw new ModelFormatError(`input '${name}' is also an output`);
    for (const node of nodes) node.input = node.input.map((n) => (n === name ? cast : n));
    nodes.unshift(
      onnx.NodeProto.create({
        opType: 'Cast',
        name: `${cast}_cast`,
        input: [name],
        output: [cast],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: DataType.DOUBLE }],
      }),
    );
    tensor.elemType = DataType.FLOAT;
    changes.push(`double input '${name}' fed from float32 through a Cast`);
  }

  // Identity and Cast are default-domain ops: a pure ai.onnx.ml graph may not import that domain.
  if (changes.length > 0 && !model.opsetImport.some((o) => (o.domain ?? '') === '')) {
    model.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: '', version: 13 }));
  }
  return { onnx: changes.length > 0 ? onnx.ModelProto.encode(model).finish() : bytes, changes };
}

/** Feature rows to check the model on (this deployment's encoding), with labels when known. */
export interface CheckRows {
  readonly x: Float32Array;
  readonly rows: number;
  /** Labels (0/1) or empty. */
  readonly y: Uint8Array;
  /** Where the rows come from, for messages and the result. */
  readonly source: string;
}

export interface ExternalModelInput {
  readonly name: string;
  /** The ONNX file's bytes, as exported; or give {@link xgboost} instead. */
  readonly onnx?: Uint8Array;
  /**
   * An XGBoost model file (JSON or UBJSON) instead of ONNX: converted to Keel's ONNX tree ensemble,
   * checked against the XGBoost trees on {@link rows}, then checked like an ONNX file.
   */
  readonly xgboost?: Uint8Array;
  /** The metadata file's parsed JSON. */
  readonly metadata: unknown;
  readonly featureSet: FeatureSet;
  /** The current champion, recorded as parent unless the metadata names one. */
  readonly champion: string | null;
  /** Rows the model is scored on; the drift baseline is computed from them unless {@link baseline} is given. */
  readonly rows: CheckRows;
  /** A baseline.json supplied by the user (its feature set must match the metadata's). */
  readonly baseline?: unknown;
  /** Register despite a feature-set mismatch; needs {@link reason}. */
  readonly force?: boolean;
  readonly reason?: string;
  /** Where the file came from, recorded in metadata.external. */
  readonly file: string;
}

export interface CheckedExternalModel {
  readonly onnx: Uint8Array;
  readonly metadata: NewModelMetadata;
  readonly baseline: Baseline | unknown;
  /** What was checked and measured, for the caller to report. */
  readonly checks: {
    readonly inputName: string;
    readonly outputName: string;
    readonly changes: string[];
    readonly scoredRows: number;
    readonly source: string;
    /** AUC on the check rows when they are labeled (not the model's own held-out metric). */
    readonly auc: number | null;
  };
}

const baselineFileSchema = z.object({
  featureSet: z.object({ version: z.string(), fingerprint: z.string() }),
  rows: z.number().int().positive(),
  numeric: z.array(
    z.object({ feature: z.string(), edges: z.array(z.number()), fractions: z.array(z.number()) }),
  ),
  categorical: z.array(z.object({ field: z.string(), frequencies: z.record(z.string(), z.number()) })),
  score: z.object({ edges: z.array(z.number()), fractions: z.array(z.number()), threshold: z.number() }),
});

/** Every check short of writing: metadata, feature set, graph, scores on real rows, baseline. */
export async function checkExternalModel(input: ExternalModelInput): Promise<CheckedExternalModel> {
  if (input.force && !input.reason)
    throw new ExternalModelError('--force needs --reason TEXT: say why, it is recorded');
  const file = input.onnx ?? input.xgboost;
  if (!file || (input.onnx && input.xgboost)) {
    throw new ExternalModelError('give the model either as an ONNX file or as an XGBoost model file');
  }
  // An XGBoost model says what it is: its metadata file may leave the algorithm out.
  const metadataValue =
    input.xgboost &&
    typeof input.metadata === 'object' &&
    input.metadata !== null &&
    !('algorithm' in input.metadata)
      ? { algorithm: 'xgboost', ...input.metadata }
      : input.metadata;
  const parsed = parseExternalMetadata(metadataValue, { name: input.name });
  checkFeatureSet(parsed, input.featureSet, input);
  const F = input.featureSet.names.length;
  if (parsed.feature_set.names.length !== F) {
    throw new ExternalModelError(
      `metadata feature_set.names lists ${parsed.feature_set.names.length} features; this deployment computes ${F}`,
    );
  }

  if (input.rows.rows === 0) {
    throw new ExternalModelError(
      `${input.rows.source} has no rows to check the model on: pass another dataset`,
    );
  }
  const converted = input.xgboost ? await convertXgboost(input, input.xgboost) : undefined;
  const { onnx: servable, changes } = converted ?? normalizeOnnx(file);
  let scorer: Awaited<ReturnType<typeof loadOnnxScorer>>;
  try {
    scorer = await loadOnnxScorer(servable, { featureCount: F, featureNames: input.featureSet.names });
  } catch (error) {
    if (!(error instanceof ModelFormatError)) throw error;
    throw new ExternalModelError(
      `${input.file}: ${error.message}. Keel serves one float [N, ${F}] input in feature-set order ` +
        `(${input.featureSet.names.join(', ')}) and reads class 1 from a probabilities [N, 2], a [N, 1] or a ZipMap output`,
      { cause: error },
    );
  }
  let scores: Float64Array;
  try {
    scores = await scorer.scoreBatch(input.rows.x, input.rows.rows);
  } finally {
    await scorer.release();
  }
  const bad = scores.findIndex((p) => !(p >= 0 && p <= 1));
  if (bad >= 0) {
    throw new ExternalModelError(
      `${input.file}: row ${bad} of ${input.rows.source} scores ${scores[bad]}, not a probability in [0, 1]: ` +
        'export the class probabilities (not margins or logits), e.g. XGBoost objective binary:logistic',
    );
  }

  let baseline: unknown;
  if (input.baseline !== undefined) {
    const checked = baselineFileSchema.safeParse(input.baseline);
    if (!checked.success) {
      throw new ValidationError(
        'the baseline file is not a Keel baseline.json',
        checked.error.issues.map((i) => ({ path: i.path.join('.') || '(file)', message: i.message })),
      );
    }
    if (checked.data.featureSet.fingerprint !== parsed.feature_set.fingerprint) {
      throw new ExternalModelError(
        `the baseline was computed on feature set ${checked.data.featureSet.fingerprint}, the model on ${parsed.feature_set.fingerprint}`,
      );
    }
    baseline = input.baseline;
  } else {
    baseline = buildBaseline(input.featureSet, input.rows.x, input.rows.rows, scores, parsed.threshold);
  }

  const auc =
    input.rows.y.length === input.rows.rows
      ? evaluateBinary(input.rows.y, scores, parsed.threshold).auc
      : null;
  const metadata: NewModelMetadata = {
    ...parsed,
    // The definition it was checked against is what serves it; a forced registration of another feature
    // set keeps what its file declares (servable only if that names a definition of its own).
    feature_set:
      parsed.feature_set.fingerprint === input.featureSet.fingerprint
        ? featureSetMetadata(input.featureSet)
        : parsed.feature_set,
    training: converted
      ? { ...parsed.training, params: { ...parsed.training.params, ...converted.params } }
      : parsed.training,
    parent: parsed.parent === undefined ? input.champion : parsed.parent,
    external: {
      file: input.file,
      sha256: sha256Hex(file),
      changes,
      ...(input.force && input.reason ? { forced: input.reason } : {}),
    },
  };
  return {
    onnx: servable,
    metadata,
    baseline,
    checks: {
      inputName: scorer.inputName,
      outputName: scorer.outputName,
      changes,
      scoredRows: input.rows.rows,
      source: input.rows.source,
      auc: auc !== null && Number.isFinite(auc) ? auc : null,
    },
  };
}

/**
 * The XGBoost model as Keel's ONNX tree ensemble, its parity with the XGBoost trees measured on the
 * check rows; the conversion is recorded as a change, its figures in the training params.
 */
async function convertXgboost(
  input: ExternalModelInput,
  bytes: Uint8Array,
): Promise<{ onnx: Uint8Array; changes: string[]; params: Record<string, unknown> }> {
  try {
    const imported = await importXgboostModel(bytes, {
      featureSet: input.featureSet,
      rows: { x: input.rows.x, count: input.rows.rows },
    });
    const { params, parityMaxDiff } = imported;
    return {
      onnx: imported.onnx,
      changes: [
        `converted from XGBoost${params.xgboost_version ? ` ${params.xgboost_version}` : ''} ` +
          `(${params.trees} trees, max depth ${params.max_depth}) to an ONNX tree ensemble: ` +
          `largest probability difference from the XGBoost trees ${parityMaxDiff.toExponential(2)} ` +
          `on ${input.rows.rows} rows of ${input.rows.source}`,
      ],
      params: { ...params, parity_max_diff: parityMaxDiff, parity_rows: input.rows.rows },
    };
  } catch (error) {
    if (!(error instanceof XgboostModelError || error instanceof XgboostParityError)) throw error;
    throw new ExternalModelError(`${input.file}: ${error.message}`, { cause: error });
  }
}

/** Checks, then registers a new immutable version through the registry (atomic number, no overwrite). */
export async function registerExternalModel(
  deps: RegistryDeps,
  input: ExternalModelInput,
): Promise<{ metadata: ModelMetadata; checks: CheckedExternalModel['checks'] }> {
  const checked = await checkExternalModel(input);
  const metadata = await registerModel(deps, {
    name: input.name,
    onnx: checked.onnx,
    metadata: checked.metadata,
    baseline: checked.baseline,
  });
  return { metadata, checks: checked.checks };
}
