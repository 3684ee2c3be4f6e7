import type { S3Client } from '@aws-sdk/client-s3';
import { KeelError } from '#shared/errors.ts';
import { FEATURE_SET, type FeatureSet } from '#shared/features/index.ts';
import { DEFAULT_GBDT_PARAMS } from '#shared/model/gbdt.ts';
import { evaluateBinary } from '#shared/model/metrics.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { MissingRawFieldError, readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { readStoreFields } from '#shared/online-store/fields.ts';
import type { Baseline } from '#shared/registry/baseline.ts';
import type { ModelMetadata, ModelVersion, NewModelMetadata } from '#shared/registry/metadata.ts';
import {
  type Deployment,
  getChampion,
  loadVerifiedModel,
  promote,
  type RegistryDeps,
  registerModel,
} from '#shared/registry/registry.ts';
import { DEFAULT_MAX_TRAINING_ROWS } from './limits.ts';
import { readTrainingSample } from './sample.ts';
import { type Algorithm, type Candidate, DEFAULT_TEST_SHARE, trainCandidateOnSample } from './train.ts';

export interface RetrainDeps {
  readonly registry: RegistryDeps;
  readonly s3: S3Client;
  readonly featuresBucket: string;
}

export interface TrainRegisterOptions {
  readonly name: string;
  /** Prefix of the offline feature dataset to train on. */
  readonly datasetPrefix: string;
  readonly algorithm?: Algorithm;
  readonly seed?: number;
  /**
   * The most rows drawn from the dataset (stage config `retrain.maxTrainingRows`): above it, a stratified
   * sample of this many is trained on and held out from, so memory is bounded by it.
   * @default DEFAULT_MAX_TRAINING_ROWS
   */
  readonly maxTrainingRows?: number;
}

export interface TrainRegisterResult {
  readonly metadata: ModelMetadata;
  readonly version: string;
  readonly auc: number;
  /** The champion when training started, and its AUC on the candidate's held-out rows (null: none). */
  readonly champion: ModelVersion | null;
  readonly championAuc: number | null;
  /** AUC gain over the champion on the same rows (null without a champion). */
  readonly improvement: number | null;
}

/** The champion's features cannot be computed for the held-out customers of the dataset trained on. */
export class ChampionNotComparableError extends KeelError {
  readonly code = 'Conflict';
}

/**
 * The candidate's held-out customers in `featureSet`'s features: the candidate's own rows when it is the
 * candidate's set, else the same rows of the dataset computed again from the raw records.
 */
async function heldOut(
  deps: RetrainDeps,
  datasetPrefix: string,
  data: { readonly featureSet: FeatureSet; readonly testCustomerIds: readonly string[] },
  candidate: Candidate,
  featureSet: FeatureSet,
): Promise<Float32Array> {
  if (featureSet.fingerprint === data.featureSet.fingerprint) return candidate.test.x;
  const rows = await readFeatureDataset(deps.s3, deps.featuresBucket, datasetPrefix, featureSet, {
    rows: candidate.testRows,
  });
  const moved = rows.customerIds.findIndex((id, k) => id !== data.testCustomerIds[k]);
  if (moved >= 0) {
    throw new ChampionNotComparableError(
      `s3://${deps.featuresBucket}/${datasetPrefix} changed while training: held-out row ${candidate.testRows[moved]} ` +
        'is another customer now; train again',
    );
  }
  return rows.x;
}

/** A trained candidate as the champion gate takes it, whatever trained it. */
export interface GateCandidate {
  readonly onnx: Uint8Array;
  readonly metadata: NewModelMetadata;
  readonly baseline: Baseline;
  /** The candidate's AUC on its held-out rows. */
  readonly auc: number;
  /** The held-out rows' labels, in the order `heldOut` returns their features. */
  readonly heldOutLabels: Uint8Array;
}

/**
 * The champion gate and registration, shared by both engines: scores `champion` (the candidate's
 * parent; a move since is a conflict at promotion) on the candidate's held-out customers with its own
 * features (`heldOut` computes them for its feature set), records that AUC and registers the
 * candidate. Never promotes.
 */
export async function gateAndRegister(
  deps: RetrainDeps,
  options: {
    readonly name: string;
    readonly candidate: GateCandidate;
    readonly champion: ModelVersion | null;
    readonly heldOut: (featureSet: FeatureSet) => Promise<Float32Array>;
  },
): Promise<TrainRegisterResult> {
  const { candidate, champion } = options;
  let championAuc: number | null = null;
  if (champion) {
    const live = await loadVerifiedModel(deps.registry, { name: options.name, version: champion });
    let x: Float32Array;
    try {
      x = await options.heldOut(live.featureSet);
    } catch (error) {
      if (!(error instanceof MissingRawFieldError)) throw error;
      throw new ChampionNotComparableError(
        `the champion ${champion} cannot be scored on the candidate's held-out customers: ${error.message}`,
        { cause: error, details: error.details },
      );
    }
    const scorer = await loadOnnxScorer(live.onnx, {
      featureCount: live.featureSet.count,
      featureNames: live.featureSet.names,
    });
    const scores = await scorer.scoreBatch(x, candidate.heldOutLabels.length);
    await scorer.release();
    championAuc = evaluateBinary(candidate.heldOutLabels, scores, live.metadata.threshold).auc;
  }

  const metadata = await registerModel(deps.registry, {
    name: options.name,
    onnx: candidate.onnx,
    metadata: {
      ...candidate.metadata,
      metrics: { ...candidate.metadata.metrics, champion_auc_same_test: championAuc },
    },
    baseline: candidate.baseline,
  });
  return {
    metadata,
    version: metadata.version,
    auc: candidate.auc,
    champion,
    championAuc,
    improvement: championAuc === null ? null : candidate.auc - championAuc,
  };
}

/**
 * Train on this code's feature definition → evaluate against the champion on the same held-out
 * customers, each model scored with its own features → register. Never promotes.
 */
export async function trainAndRegister(
  deps: RetrainDeps,
  options: TrainRegisterOptions,
): Promise<TrainRegisterResult> {
  const seed = options.seed ?? 42;
  // A stream in two passes into binned rows and a bounded sample: never the whole dataset in memory.
  const sample = await readTrainingSample(deps.s3, deps.featuresBucket, options.datasetPrefix, FEATURE_SET, {
    cap: options.maxTrainingRows ?? DEFAULT_MAX_TRAINING_ROWS,
    seed,
    testShare: DEFAULT_TEST_SHARE,
    maxBins: DEFAULT_GBDT_PARAMS.maxBins,
    trainFeatures: options.algorithm === 'logistic',
  });
  const champion = (await getChampion(deps.registry, options.name)) ?? null;
  const candidate = await trainCandidateOnSample(sample, FEATURE_SET, {
    algorithm: options.algorithm,
    seed,
    datasetUri: `s3://${deps.featuresBucket}/${options.datasetPrefix}`,
    parent: champion,
  });
  const data = { featureSet: FEATURE_SET, testCustomerIds: sample.testCustomerIds };
  return gateAndRegister(deps, {
    name: options.name,
    candidate: {
      onnx: candidate.onnx,
      metadata: candidate.metadata,
      baseline: candidate.baseline,
      auc: candidate.evaluation.auc,
      heldOutLabels: candidate.test.y,
    },
    champion,
    heldOut: (featureSet) => heldOut(deps, options.datasetPrefix, data, candidate, featureSet),
  });
}

export type PromotionPolicy = 'always' | 'if-better' | 'never';

/**
 * Whether a newly registered version should become the champion, and why (for the log and the report).
 * The reason always compares the two AUCs on the same held-out rows, whatever the policy, so a worse
 * candidate is named as such even when promotion was not requested, or forced.
 */
export function promotionDecision(
  result: Pick<TrainRegisterResult, 'auc' | 'champion' | 'championAuc'>,
  policy: PromotionPolicy,
  margin = 0,
): { promote: boolean; reason: string } {
  const { auc, champion, championAuc } = result;
  if (championAuc === null) {
    return policy === 'never'
      ? { promote: false, reason: 'registered only (promotion not requested); no champion to compare with' }
      : { promote: true, reason: 'no champion yet' };
  }
  // Strictly better: retraining on the same data must not churn the champion.
  const better = auc > championAuc + margin;
  const by = margin > 0 ? ` by more than ${margin}` : '';
  const comparison = `AUC ${auc.toFixed(4)} ${better ? 'beats' : 'does not beat'} champion ${champion} (${championAuc.toFixed(4)})${by}`;
  if (policy === 'never') {
    const ifBetter = better ? 'promote it' : `keep ${champion}`;
    return {
      promote: false,
      reason: `registered only (promotion not requested); ${comparison}: if-better would ${ifBetter}`,
    };
  }
  if (policy === 'always') return { promote: true, reason: `promotion forced; ${comparison}` };
  return better
    ? { promote: true, reason: comparison }
    : { promote: false, reason: `${comparison}; kept registered` };
}

export interface RetrainOptions extends TrainRegisterOptions {
  readonly promotion: PromotionPolicy;
  /** Minimum AUC gain over the champion, on the same held-out rows (default 0). */
  readonly margin?: number;
  readonly actor: string;
}

export interface RetrainResult extends TrainRegisterResult {
  readonly promoted: Deployment | null;
  /** Why the new version was or was not promoted. */
  readonly decision: string;
}

/** The whole retrain in this process: {@link trainAndRegister}, then promote if the policy says so. */
export async function retrain(deps: RetrainDeps, options: RetrainOptions): Promise<RetrainResult> {
  const result = await trainAndRegister(deps, options);
  const decision = promotionDecision(result, options.promotion, options.margin);
  const promoted = decision.promote
    ? await promote(deps.registry, {
        name: options.name,
        version: result.version,
        expected: result.champion,
        storeFields: await readStoreFields(deps.s3, deps.featuresBucket),
        reason: `retrain: ${decision.reason}`,
        actor: options.actor,
      })
    : null;
  return { ...result, promoted, decision: decision.reason };
}
