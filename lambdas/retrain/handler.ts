import { z } from 'zod';
import { ValidationError } from '#shared/errors.ts';
import { newestFeatureDataset } from '#shared/offline/features-dataset.ts';
import { readStoreFields } from '#shared/online-store/fields.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';
import { versionSchema } from '#shared/registry/metadata.ts';
import { promote as promoteVersion, startRollout } from '#shared/registry/registry.ts';
import { retrainRolloutSchema, rolloutDecisionStart } from '#shared/registry/rollout.ts';
import { DEFAULT_MAX_TRAINING_ROWS, maxTrainingRowsSchema } from '#shared/training/limits.ts';
import { promotionDecision, trainAndRegister } from '#shared/training/retrain.ts';

const ctx = pipelineContext();
const deps = { registry: ctx.registry, s3: ctx.clients.s3, featuresBucket: ctx.names.features };

/**
 * Train on the offline features (default: the newest dataset), evaluate against the champion on the
 * same held-out rows, register. The result carries the decision the Choice state acts on.
 */
export const train = step(
  z.object({
    datasetPrefix: z.string().min(1).optional(),
    algorithm: z.enum(['gbdt', 'logistic']).optional(),
    seed: z.number().int().min(0).optional(),
    margin: z.number().min(0).max(1).default(0),
    /** Stage config `retrain.maxTrainingRows` (the retrain schedule's input); else the default. */
    maxTrainingRows: maxTrainingRowsSchema.default(DEFAULT_MAX_TRAINING_ROWS),
    promotion: z.enum(['always', 'if-better', 'never']).default('if-better'),
    requireApproval: z.boolean().default(false),
    rollout: retrainRolloutSchema.default({ mode: 'promote' }),
  }),
  async (input) => {
    const datasetPrefix = input.datasetPrefix ?? (await newestFeatureDataset(deps.s3, deps.featuresBucket));
    if (!datasetPrefix) {
      throw new ValidationError('no offline features to train on: run the ETL first', [
        { path: 'datasetPrefix', message: 'none found' },
      ]);
    }
    const result = await trainAndRegister(deps, { ...input, name: ctx.modelName, datasetPrefix });
    const decision = promotionDecision(result, input.promotion, input.margin);
    return {
      version: result.version,
      auc: result.auc,
      champion: result.champion,
      championAuc: result.championAuc,
      datasetPrefix,
      promote: decision.promote,
      reason: decision.reason,
      requireApproval: input.requireApproval,
      rollout: input.rollout,
    };
  },
);

/**
 * Moves the champion from the one the candidate was compared with (a move in between is a conflict),
 * or, with `rollout` (stage config `retrain.rollout`), starts a rollout of the candidate beside it: then
 * the output carries the `decision` input the state machine starts the rollout's decision with.
 */
export const promote = step(
  z.object({
    version: versionSchema,
    champion: versionSchema.nullable(),
    reason: z.string().min(1),
    rollout: retrainRolloutSchema.default({ mode: 'promote' }),
  }),
  async (input) => {
    const common = {
      name: ctx.modelName,
      version: input.version,
      storeFields: await readStoreFields(deps.s3, deps.featuresBucket),
      reason: `retrain: ${input.reason}`,
      actor: 'retrain-state-machine',
    };
    // No champion to compare with: a rollout has nothing to stand beside, so the first one is promoted.
    if (input.rollout.mode === 'promote' || input.champion === null) {
      return promoteVersion(ctx.registry, { ...common, expected: input.champion as `v${number}` | null });
    }
    const { rollout, deployment } = await startRollout(ctx.registry, {
      ...common,
      ...input.rollout,
      expectedChampion: input.champion as `v${number}`,
    });
    return { ...deployment, decision: rolloutDecisionStart(ctx.modelName, rollout) };
  },
);
