import type { S3Client } from '@aws-sdk/client-s3';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { evaluateBinary } from '#shared/model/metrics.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { readFeatureDataset } from '#shared/offline/features-dataset.ts';
import type { ModelMetadata } from '#shared/registry/metadata.ts';
import {
  type Deployment,
  getChampion,
  loadVerifiedModel,
  promote,
  type RegistryDeps,
  registerModel,
} from '#shared/registry/registry.ts';
import { type Algorithm, trainCandidate } from './train.ts';

export interface RetrainDeps {
  readonly registry: RegistryDeps;
  readonly s3: S3Client;
  readonly featuresBucket: string;
}

export interface RetrainOptions {
  readonly name: string;
  /** Prefix of the offline feature dataset to train on. */
  readonly datasetPrefix: string;
  readonly algorithm?: Algorithm;
  readonly seed?: number;
  /** `always`: promote the new version; `if-better`: only if its AUC beats the champion's by `margin`; `never`. */
  readonly promotion: 'always' | 'if-better' | 'never';
  /** Minimum AUC gain over the champion, on the same held-out rows (default 0). */
  readonly margin?: number;
  readonly actor: string;
}

export interface RetrainResult {
  readonly metadata: ModelMetadata;
  /** The champion's AUC on the candidate's held-out rows (null when there was no champion). */
  readonly championAuc: number | null;
  readonly champion: string | null;
  readonly promoted: Deployment | null;
  /** Why the new version was or was not promoted. */
  readonly decision: string;
}

/** Train → evaluate against the champion on the same held-out data → register → promote if it should. */
export async function retrain(deps: RetrainDeps, options: RetrainOptions): Promise<RetrainResult> {
  const data = await readFeatureDataset(deps.s3, deps.featuresBucket, options.datasetPrefix);
  const champion = (await getChampion(deps.registry, options.name)) ?? null;
  const candidate = await trainCandidate(data, {
    algorithm: options.algorithm,
    seed: options.seed,
    datasetUri: `s3://${deps.featuresBucket}/${options.datasetPrefix}`,
    parent: champion,
  });

  let championAuc: number | null = null;
  if (champion) {
    const live = await loadVerifiedModel(deps.registry, {
      name: options.name,
      version: champion,
      featureFingerprint: FEATURE_SET.fingerprint,
    });
    const scorer = await loadOnnxScorer(live.onnx, {
      featureCount: FEATURE_COUNT,
      featureNames: FEATURE_SET.names,
    });
    const scores = await scorer.scoreBatch(candidate.test.x, candidate.test.y.length);
    await scorer.release();
    championAuc = evaluateBinary(candidate.test.y, scores, live.metadata.threshold).auc;
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

  const margin = options.margin ?? 0;
  const auc = candidate.evaluation.auc;
  let decision: string;
  let shouldPromote: boolean;
  if (options.promotion === 'never') {
    [shouldPromote, decision] = [false, 'registered only (promotion not requested)'];
  } else if (options.promotion === 'always' || championAuc === null) {
    [shouldPromote, decision] = [
      true,
      championAuc === null
        ? 'no champion yet'
        : `promotion forced (AUC ${auc.toFixed(4)} vs ${championAuc.toFixed(4)})`,
    ];
  } else {
    shouldPromote = auc >= championAuc + margin;
    decision = shouldPromote
      ? `AUC ${auc.toFixed(4)} beats champion ${champion} (${championAuc.toFixed(4)}) by ≥ ${margin}`
      : `AUC ${auc.toFixed(4)} does not beat champion ${champion} (${championAuc.toFixed(4)}) by ${margin}; kept registered`;
  }
  const promoted = shouldPromote
    ? await promote(deps.registry, {
        name: options.name,
        version: metadata.version,
        expected: champion,
        featureFingerprint: FEATURE_SET.fingerprint,
        reason: `retrain: ${decision}`,
        actor: options.actor,
      })
    : null;
  return { metadata, championAuc, champion, promoted, decision };
}
