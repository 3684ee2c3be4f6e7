import { FEATURE_SET, type FeatureSet } from '#shared/features/index.ts';
import { type Dataset, takeRows } from '#shared/model/dataset.ts';
import { type GbdtParams, type GbdtResult, trainGbdt, trainGbdtBinned } from '#shared/model/gbdt.ts';
import { trainLogistic } from '#shared/model/logistic.ts';
import {
  type BinaryEvaluation,
  calibration,
  evaluateBinary,
  stratifiedSplit,
} from '#shared/model/metrics.ts';
import type { ChurnModel } from '#shared/model/model-types.ts';
import { exportOnnx, PARITY_TOLERANCE } from '#shared/model/onnx-export.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { createJsScorer } from '#shared/model/scorer.ts';
import type { FeatureDataset } from '#shared/offline/features-dataset.ts';
import { fitCalibrationMap } from '#shared/quality/calibrator.ts';
import { type Baseline, buildBaseline } from '#shared/registry/baseline.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';
import type { NewModelMetadata } from '#shared/registry/metadata.ts';
import type { SampleInfo, TrainingSample } from './sample.ts';

/**
 * Training as a plain function: a feature matrix in, a candidate version out (ONNX bytes, metadata with
 * the feature definition, drift baseline, held-out evaluation). Registration and promotion are the
 * caller's decision.
 */
export type Algorithm = 'gbdt' | 'logistic';

export interface TrainOptions {
  readonly algorithm?: Algorithm;
  /**
   * Tree parameters (gbdt only); the defaults are those of the reference FastAPI service's XGBoost model:
   * 100 trees, depth 6, learning rate 0.1.
   */
  readonly params?: Partial<GbdtParams>;
  readonly seed?: number;
  /** Share of rows held out for the final evaluation (stratified). */
  readonly testShare?: number;
  /** Decision threshold recorded with the model. */
  readonly threshold?: number;
  readonly datasetUri: string;
  /** The current champion, recorded as the candidate's parent. */
  readonly parent: string | null;
  readonly clock?: () => number;
  /**
   * Called after each boosting round (gbdt) with rounds done and the most there can be, then once with
   * done = total when training ends.
   */
  readonly onProgress?: TrainingProgress;
}

export type TrainingProgress = (done: number, total: number) => void;

/**
 * Listeners in this process for trainings that do not take a callback: the local platform runs the
 * retrain step in the CLI's own process, and `keel train` draws its progress bar from here. Lambda has
 * none. Returns the function that removes the listener.
 */
const progressListeners = new Set<TrainingProgress>();
export function onTrainingProgress(listener: TrainingProgress): () => void {
  progressListeners.add(listener);
  return () => progressListeners.delete(listener);
}

export interface Candidate {
  readonly model: ChurnModel;
  readonly onnx: Uint8Array;
  readonly metadata: NewModelMetadata;
  readonly baseline: Baseline;
  readonly evaluation: BinaryEvaluation;
  /** The held-out rows, kept so a champion can be scored on exactly the same data. */
  readonly test: Dataset;
  /** Which rows of the training data `test` holds, ascending (what a champion of another feature set reads). */
  readonly testRows: Uint32Array;
  /** Largest |onnxruntime − trainer| probability over the held-out rows. */
  readonly onnxParityMaxDiff: number;
}

/** Share of rows held out for the final evaluation when the options name none. */
export const DEFAULT_TEST_SHARE = 0.2;

/**
 * The rows to train on; `featureSet` is the one the matrix was computed with (default: this code's
 * definition, what new models train on), and the one the candidate records.
 */
export type TrainingData = Omit<FeatureDataset, 'featureSet'> & { readonly featureSet?: FeatureSet };

/**
 * A candidate's held-out evaluation as its metadata records it, from its ONNX scores; `parityMaxDiff`
 * is the largest |ONNX − reference| probability over those rows.
 */
export function heldOutMetrics(
  y: Uint8Array,
  scores: Float64Array,
  threshold: number,
  parityMaxDiff: number,
): { evaluation: BinaryEvaluation; metrics: NewModelMetadata['metrics'] } {
  const evaluation = evaluateBinary(y, scores, threshold);
  const calibrationSummary = calibration(y, scores, 10);
  return {
    evaluation,
    metrics: {
      auc: evaluation.auc,
      logloss: evaluation.logloss,
      accuracy: evaluation.accuracy,
      precision: evaluation.precision,
      recall: evaluation.recall,
      brier: calibrationSummary.brier,
      expected_calibration_error: calibrationSummary.expectedCalibrationError,
      calibration: calibrationSummary.bins,
      // What the quality job turns scores into probabilities with, to estimate quality before outcomes.
      calibration_map: fitCalibrationMap(scores, y),
      test_rows: y.length,
      onnx_parity_max_abs_diff: parityMaxDiff,
    },
  };
}

export async function trainCandidate(data: TrainingData, options: TrainOptions): Promise<Candidate> {
  const featureSet = data.featureSet ?? FEATURE_SET;
  const all: Dataset = { x: data.x, y: data.y, featureCount: featureSet.count };
  const split = stratifiedSplit(data.y, {
    test: options.testShare ?? DEFAULT_TEST_SHARE,
    seed: seedOf(options),
  });
  const train = takeRows(all, split.train);
  return finishCandidate(
    featureSet,
    options,
    {
      rows: train.y.length,
      gbdt: (params, gbdtOptions) => trainGbdt(train, params, gbdtOptions),
      logistic: () => trainLogistic(train),
    },
    { test: takeRows(all, split.test), testRows: split.test },
    // Feature distributions over every row the model learned from; scores over the held-out rows.
    { x: data.x, rows: data.rows, datasetRows: data.rows },
  );
}

/**
 * {@link trainCandidate} on a bounded sample of a dataset read as a stream (shared/training/sample.ts):
 * trees fitted on its binned rows, evaluated on its held-out rows; the metadata records the sampling
 * (`training.sample`).
 */
export async function trainCandidateOnSample(
  sample: TrainingSample,
  featureSet: FeatureSet,
  options: TrainOptions,
): Promise<Candidate> {
  const { train, trainX } = sample;
  return finishCandidate(
    featureSet,
    options,
    {
      rows: train.rows,
      gbdt: (params, gbdtOptions) => trainGbdtBinned(train, params, gbdtOptions),
      logistic: () => {
        if (!trainX) throw new Error('the sample holds no float training rows: read it with trainFeatures');
        return trainLogistic({ x: trainX, y: train.y, featureCount: featureSet.count });
      },
    },
    sample,
    // The drift baseline from pass 1's uniform sample of the dataset, not every row (bounded memory).
    { ...sample.reference, datasetRows: sample.info.rows_seen, sample: sample.info },
  );
}

const seedOf = (options: TrainOptions) => options.seed ?? 42;

/** How one kind of training data is fitted: the tree trainer or the logistic baseline. */
interface Fitting {
  /** Rows fitted on (early-stopping validation rows included). */
  readonly rows: number;
  readonly gbdt: (params: Partial<GbdtParams>, options: { onRound: TrainingProgress }) => GbdtResult;
  readonly logistic: () => ReturnType<typeof trainLogistic>;
}

async function finishCandidate(
  featureSet: FeatureSet,
  options: TrainOptions,
  fitting: Fitting,
  heldOut: { readonly test: Dataset; readonly testRows: Uint32Array },
  reference: { readonly x: Float32Array; readonly rows: number; datasetRows: number; sample?: SampleInfo },
): Promise<Candidate> {
  const clock = options.clock ?? (() => performance.now());
  const algorithm = options.algorithm ?? 'gbdt';
  const seed = seedOf(options);
  const threshold = options.threshold ?? 0.5;
  const { test, testRows } = heldOut;

  const started = clock();
  let model: ChurnModel;
  let params: Record<string, unknown>;
  if (algorithm === 'gbdt') {
    let rounds = 0;
    const onRound = (done: number, total: number) => {
      rounds = done;
      options.onProgress?.(done, total);
      for (const listener of progressListeners) listener(done, total);
    };
    const result = fitting.gbdt({ earlyStoppingRounds: 10, seed, ...options.params }, { onRound });
    // Early stopping ends before nTrees: the last report says done = total, the rounds actually run.
    if (rounds > 0) onRound(rounds, rounds);
    model = result.model;
    params = { ...result.params, bestIteration: result.bestIteration, stoppedEarly: result.stoppedEarly };
  } else {
    const result = fitting.logistic();
    model = result.model;
    params = { ...result.params, iterations: result.iterations, converged: result.converged };
  }
  const durationMs = clock() - started;

  const trainerScores = await createJsScorer(model).scoreBatch(test.x, test.y.length);
  const onnx = exportOnnx(model, { featureNames: featureSet.names, producer: { name: 'keel' } });
  const onnxScorer = await loadOnnxScorer(onnx, {
    featureCount: featureSet.count,
    featureNames: featureSet.names,
  });
  const onnxScores = await onnxScorer.scoreBatch(test.x, test.y.length);
  await onnxScorer.release();
  let onnxParityMaxDiff = 0;
  for (let i = 0; i < onnxScores.length; i++) {
    onnxParityMaxDiff = Math.max(onnxParityMaxDiff, Math.abs(onnxScores[i]! - trainerScores[i]!));
  }
  if (!(onnxParityMaxDiff <= PARITY_TOLERANCE)) {
    throw new Error(`ONNX export disagrees with the trainer by ${onnxParityMaxDiff} (> ${PARITY_TOLERANCE})`);
  }

  const { evaluation, metrics } = heldOutMetrics(test.y, onnxScores, threshold, onnxParityMaxDiff);
  const metadata: NewModelMetadata = {
    algorithm: algorithm === 'gbdt' ? 'gbdt-hist-logistic' : 'logistic-regression',
    dataset: { uri: options.datasetUri, rows: reference.datasetRows },
    feature_set: featureSetMetadata(featureSet),
    metrics,
    threshold,
    training: {
      rows: fitting.rows,
      params,
      duration_ms: Math.round(durationMs),
      ...(reference.sample ? { sample: reference.sample } : {}),
    },
    parent: options.parent,
  };
  return {
    model,
    onnx,
    metadata,
    baseline: buildBaseline(featureSet, reference.x, reference.rows, onnxScores, threshold),
    evaluation,
    test,
    testRows,
    onnxParityMaxDiff,
  };
}
