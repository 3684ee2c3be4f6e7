/**
 * Serves an ONNX binary classifier through onnxruntime-node: Keel's own exports (onnx-export.ts) and
 * "bring your own" models converted by skl2onnx / onnxmltools, as long as they take one float32
 * [N, featureCount] input and have a plain probability tensor output.
 *
 * The class-1 probability is read from the probability output and nothing else: onnxruntime's `label`
 * output for a two-class tree ensemble is `score > 0` (or `score > 0.5` when every leaf weight is
 * non-negative), not the caller's threshold, so it is never read.
 */
import onnxProto from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { KEEL_ONNX_FORMAT, ONNX_METADATA_KEYS } from './onnx-export.ts';
import { checkBatchShape, ModelFormatError, type Scorer } from './scorer.ts';

export { ModelFormatError };

export interface OnnxScorer extends Scorer {
  readonly kind: 'onnx';
  readonly inputName: string;
  /** The output the probabilities are read from. */
  readonly outputName: string;
  /** Feature names from the model's metadata; undefined for models not written by Keel. */
  readonly featureNames: readonly string[] | undefined;
  /** Whether the model carries Keel's metadata marker. */
  readonly keelFormat: boolean;
}

export interface OnnxExpectation {
  readonly featureCount: number;
  /** When given and the model lists its feature names, both must match in order. */
  readonly featureNames?: readonly string[];
}

// Lambda gives a function one or two vCPUs and serves one request at a time: extra threads only add
// thread-pool wake-up latency to a sub-millisecond tree walk.
const SESSION_OPTIONS: InferenceSession.SessionOptions = Object.freeze({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // Failures reach the caller as rejected promises / ModelFormatError; onnxruntime's own stderr lines
  // would only duplicate them, unstructured, in the function's logs.
  logSeverityLevel: 4,
});

/** Output names used by Keel, onnxmltools and skl2onnx for class probabilities, in order of preference. */
const PROBABILITY_OUTPUT_NAMES = ['probabilities', 'output_probability', 'probability'];

export async function loadOnnxScorer(bytes: Uint8Array, expected: OnnxExpectation): Promise<OnnxScorer> {
  const F = expected.featureCount;
  const metadata = readKeelMetadata(bytes);
  checkMetadata(metadata, expected);

  let session: InferenceSession;
  try {
    session = await InferenceSession.create(bytes, SESSION_OPTIONS);
  } catch (cause) {
    throw new ModelFormatError(`onnxruntime cannot load the model: ${messageOf(cause)}`, { cause });
  }
  try {
    const inputName = checkInput(session, F);
    const outputName = pickProbabilityOutput(session);
    const width = await probeOutputWidth(session, inputName, outputName, F);

    const scoreBatch = async (x: Float32Array, rows: number): Promise<Float64Array> => {
      checkBatchShape(x, rows, F);
      if (rows === 0) return new Float64Array(0);
      const results = await session.run({ [inputName]: new Tensor('float32', x, [rows, F]) }, [outputName]);
      const data = results[outputName]!.data as Float32Array;
      const column = width - 1;
      const out = new Float64Array(rows);
      for (let r = 0; r < rows; r++) out[r] = data[r * width + column]!;
      return out;
    };
    return {
      kind: 'onnx',
      featureCount: F,
      inputName,
      outputName,
      featureNames: metadata.featureNames,
      keelFormat: metadata.keelFormat,
      scoreBatch,
      async scoreOne(x) {
        return (await scoreBatch(x, 1))[0]!;
      },
      release: () => session.release(),
    };
  } catch (error) {
    await session.release();
    throw error;
  }
}

interface KeelMetadata {
  keelFormat: boolean;
  featureCount: number | undefined;
  featureNames: string[] | undefined;
}

function readKeelMetadata(bytes: Uint8Array): KeelMetadata {
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnxProto.onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelFormatError(`not an ONNX model (protobuf decoding failed: ${messageOf(cause)})`, {
      cause,
    });
  }
  if (!proto.graph) throw new ModelFormatError('not an ONNX model: the ModelProto has no graph');
  const props = new Map(proto.metadataProps.map((p) => [p.key ?? '', p.value ?? '']));
  const countText = props.get(ONNX_METADATA_KEYS.featureCount);
  const namesText = props.get(ONNX_METADATA_KEYS.featureNames);
  let featureNames: string[] | undefined;
  if (namesText !== undefined) {
    try {
      const parsed: unknown = JSON.parse(namesText);
      if (Array.isArray(parsed) && parsed.every((n) => typeof n === 'string')) featureNames = parsed;
    } catch {
      // reported below as malformed
    }
    if (!featureNames)
      throw new ModelFormatError(`metadata '${ONNX_METADATA_KEYS.featureNames}' is not a JSON string array`);
  }
  return {
    keelFormat: props.get(ONNX_METADATA_KEYS.format) === KEEL_ONNX_FORMAT,
    featureCount: countText === undefined ? undefined : Number(countText),
    featureNames,
  };
}

function checkMetadata(metadata: KeelMetadata, expected: OnnxExpectation): void {
  const F = expected.featureCount;
  if (metadata.featureCount !== undefined && metadata.featureCount !== F) {
    throw new ModelFormatError(`the model was exported for ${metadata.featureCount} features, expected ${F}`);
  }
  const names = metadata.featureNames;
  if (!names) return;
  if (names.length !== F) {
    throw new ModelFormatError(`the model lists ${names.length} feature names, expected ${F} features`);
  }
  if (expected.featureNames) {
    const i = expected.featureNames.findIndex((name, k) => names[k] !== name);
    if (i !== -1 || expected.featureNames.length !== names.length) {
      const at = i === -1 ? Math.min(names.length, expected.featureNames.length) : i;
      throw new ModelFormatError(
        `feature names differ at position ${at}: model has '${names[at] ?? '(none)'}', ` +
          `feature set has '${expected.featureNames[at] ?? '(none)'}'`,
      );
    }
  }
}

function checkInput(session: InferenceSession, featureCount: number): string {
  if (session.inputMetadata.length !== 1) {
    throw new ModelFormatError(
      `expected one input, the model has ${session.inputMetadata.length}: ${session.inputNames.join(', ')}`,
    );
  }
  const input = session.inputMetadata[0]!;
  if (!input.isTensor) throw new ModelFormatError(`input '${input.name}' is not a tensor`);
  if (input.type !== 'float32') {
    throw new ModelFormatError(`input '${input.name}' is ${input.type}, expected float32 features`);
  }
  // An empty shape means the model does not declare one; the probe run then checks it.
  if (input.shape.length > 0) {
    if (input.shape.length !== 2) {
      throw new ModelFormatError(
        `input '${input.name}' has shape [${input.shape.join(', ')}], expected [N, ${featureCount}]`,
      );
    }
    const [rows, columns] = input.shape;
    if (isFixed(rows)) {
      throw new ModelFormatError(
        `input '${input.name}' has a fixed batch dimension ${rows}; export it with a dynamic first dimension`,
      );
    }
    if (isFixed(columns) && columns !== featureCount) {
      throw new ModelFormatError(`input '${input.name}' takes ${columns} features, expected ${featureCount}`);
    }
  }
  return input.name;
}

function pickProbabilityOutput(session: InferenceSession): string {
  const outputs = session.outputMetadata;
  const named = PROBABILITY_OUTPUT_NAMES.map((name) => outputs.find((o) => o.name === name)).find((o) => o);
  const floats = outputs.filter((o) => o.isTensor && o.type === 'float32');
  const chosen = named ?? (floats.length === 1 ? floats[0] : undefined);
  if (!chosen) {
    const list = outputs.map((o) => `${o.name} (${o.isTensor ? o.type : 'non-tensor'})`).join(', ');
    throw new ModelFormatError(`no probability output found among: ${list}`);
  }
  if (!chosen.isTensor) {
    throw new ModelFormatError(
      `output '${chosen.name}' is not a tensor (a ZipMap sequence of maps?); re-export the model with a ` +
        `plain probability tensor (skl2onnx: options={'zipmap': False}; onnxmltools: drop the ZipMap node)`,
    );
  }
  if (chosen.type !== 'float32') {
    throw new ModelFormatError(`output '${chosen.name}' is ${chosen.type}, expected float32 probabilities`);
  }
  return chosen.name;
}

/**
 * Runs one all-zero row: catches models that only fail at run time (a tree reading a feature beyond the
 * input width) and yields the output width, 2 ([p0, p1], class 1 read from column 1) or 1 (p1 alone).
 */
async function probeOutputWidth(
  session: InferenceSession,
  inputName: string,
  outputName: string,
  featureCount: number,
): Promise<number> {
  let dims: readonly number[];
  try {
    const probe = new Tensor('float32', new Float32Array(featureCount), [1, featureCount]);
    const results = await session.run({ [inputName]: probe }, [outputName]);
    dims = results[outputName]!.dims;
  } catch (cause) {
    throw new ModelFormatError(`the model fails on a ${featureCount}-feature row: ${messageOf(cause)}`, {
      cause,
    });
  }
  const width = dims.length === 1 ? 1 : dims.length === 2 && dims[0] === 1 ? dims[1]! : -1;
  if (width !== 1 && width !== 2) {
    throw new ModelFormatError(
      `output '${outputName}' has shape [${dims.join(', ')}] for one row; expected [1, 2] (binary classifier)`,
    );
  }
  return width;
}

function isFixed(dim: number | string | undefined): dim is number {
  return typeof dim === 'number' && dim >= 0;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
