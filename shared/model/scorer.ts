import { KeelError } from '#shared/errors.ts';
import { type ChurnModel, ensembleMargin, linearMargin, sigmoid } from './model-types.ts';

/**
 * Class-1 probabilities of row-major float32 feature rows. Implemented by the onnxruntime scorer
 * (`loadOnnxScorer`, what serving uses) and by the in-process scorer below (training, evaluation, batch).
 * Scorers return probabilities only: the decision threshold belongs to the model's metadata.
 */
export interface Scorer {
  readonly kind: 'onnx' | 'js' | 'sagemaker';
  readonly featureCount: number;
  /** `x` holds exactly `rows * featureCount` values; the result holds one probability per row. */
  scoreBatch(x: Float32Array, rows: number): Promise<Float64Array>;
  /** Probability of the single row `x` (length featureCount). */
  scoreOne(x: Float32Array): Promise<number>;
  /** Frees native resources; the scorer must not be used afterwards. */
  release(): Promise<void>;
}

/** A model (ONNX bytes or model data) that Keel cannot score for the expected feature set. */
export class ModelFormatError extends KeelError {
  readonly code = 'Internal';
}

/** A scoring call whose input does not have the shape the scorer expects. */
export class ScoringInputError extends KeelError {
  readonly code = 'Internal';
}

export function checkBatchShape(x: Float32Array, rows: number, featureCount: number): void {
  if (!Number.isInteger(rows) || rows < 0 || x.length !== rows * featureCount) {
    throw new ScoringInputError(
      `expected ${rows} rows x ${featureCount} features = ${rows * featureCount} values, got ${x.length}`,
    );
  }
}

/** Evaluates the model with the reference semantics of model-types.ts. */
export function createJsScorer(model: ChurnModel): Scorer {
  const F = model.featureCount;
  if (model.kind === 'linear' && model.weights.length !== F) {
    throw new ModelFormatError(`linear model has ${model.weights.length} weights for ${F} features`);
  }
  const margin =
    model.kind === 'tree-ensemble'
      ? (x: Float32Array, offset: number) => ensembleMargin(model, x, offset)
      : (x: Float32Array, offset: number) => linearMargin(model, x, offset);
  return {
    kind: 'js',
    featureCount: F,
    async scoreBatch(x, rows) {
      checkBatchShape(x, rows, F);
      const out = new Float64Array(rows);
      for (let r = 0; r < rows; r++) out[r] = sigmoid(margin(x, r * F));
      return out;
    },
    async scoreOne(x) {
      checkBatchShape(x, 1, F);
      return sigmoid(margin(x, 0));
    },
    async release() {},
  };
}

/** The probabilities of `rows` (one row each) in one call of `scorer`: `scoreOne` for a single row. */
export async function scoreRows(scorer: Scorer, rows: readonly Float32Array[]): Promise<ArrayLike<number>> {
  if (rows.length === 0) return [];
  if (rows.length === 1) return [await scorer.scoreOne(rows[0]!)];
  const F = scorer.featureCount;
  const x = new Float32Array(rows.length * F);
  rows.forEach((row, i) => {
    x.set(row, i * F);
  });
  return scorer.scoreBatch(x, rows.length);
}

interface QueuedRow {
  readonly x: Float32Array;
  readonly resolve: (probability: number) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * `scorer` for a server: the one-row calls made in one turn of the event loop (the requests that one
 * coalesced store read answered) go to the model as one batch. A model call costs about the same for
 * one row as for a few (onnxruntime with Keel's 100-tree model: 15 µs of CPU for one row, 17 for four,
 * 25 for eight: measured), so requests that share a call pay for about one. A row of the wrong shape
 * fails alone; a failed batch fails every row that shared it, as one call of its own would have.
 */
export function coalescingScorer<S extends Scorer>(scorer: S): S {
  let queue: QueuedRow[] = [];
  const flush = () => {
    const rows = queue;
    queue = [];
    scoreRows(
      scorer,
      rows.map((row) => row.x),
    ).then(
      (probabilities) => {
        rows.forEach((row, i) => {
          row.resolve(probabilities[i]!);
        });
      },
      (error: unknown) => {
        for (const row of rows) row.reject(error);
      },
    );
  };
  return {
    ...scorer,
    scoreBatch: (x, rows) => scorer.scoreBatch(x, rows),
    scoreOne: (x) =>
      new Promise<number>((resolve, reject) => {
        checkBatchShape(x, 1, scorer.featureCount);
        if (queue.push({ x, resolve, reject }) === 1) setImmediate(flush);
      }),
    release: () => scorer.release(),
  };
}
