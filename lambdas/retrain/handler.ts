import { z } from 'zod';
import { KEEL_ENV, requireEnv } from '#shared/env.ts';
import { ValidationError } from '#shared/errors.ts';
import { newestFeatureDataset } from '#shared/offline/features-dataset.ts';
import { readStoreFields } from '#shared/online-store/fields.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';
import { versionSchema } from '#shared/registry/metadata.ts';
import { promote as promoteVersion, startRollout } from '#shared/registry/registry.ts';
import { retrainRolloutSchema, rolloutDecisionStart } from '#shared/registry/rollout.ts';
import { DEFAULT_MAX_TRAINING_ROWS, maxTrainingRowsSchema } from '#shared/training/limits.ts';
import { promotionDecision, type TrainRegisterResult, trainAndRegister } from '#shared/training/retrain.ts';
import {
  importTrainedModel,
  prepareTraining as prepareRun,
  trainingJobSchema,
  trainingRunSchema,
  writeChannels as writeRunChannels,
} from '#shared/training/sagemaker-retrain.ts';

const ctx = pipelineContext();
const deps = { registry: ctx.registry, s3: ctx.clients.s3, featuresBucket: ctx.names.features };

/** What the execution input says about the decision, read by `train` and `importTrained` alike. */
const decisionInput = z.object({
  margin: z.number().min(0).max(1).default(0),
  promotion: z.enum(['always', 'if-better', 'never']).default('if-better'),
  requireApproval: z.boolean().default(false),
  rollout: retrainRolloutSchema.default({ mode: 'promote' }),
});

/** The `$.candidate` both engines hand to the decide, approval and promote states. */
function candidateOutput(
  result: TrainRegisterResult,
  input: z.infer<typeof decisionInput>,
  datasetPrefix: string,
) {
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
}

/**
 * Train on the offline features (default: the newest dataset), evaluate against the champion on the
 * same held-out rows, register. The result carries the decision the Choice state acts on.
 */
export const train = step(
  decisionInput.extend({
    datasetPrefix: z.string().min(1).optional(),
    algorithm: z.enum(['gbdt', 'logistic']).optional(),
    seed: z.number().int().min(0).optional(),
    /** Stage config `retrain.maxTrainingRows` (the retrain schedule's input); else the default. */
    maxTrainingRows: maxTrainingRowsSchema.default(DEFAULT_MAX_TRAINING_ROWS),
  }),
  async (input) => {
    const datasetPrefix = input.datasetPrefix ?? (await newestFeatureDataset(deps.s3, deps.featuresBucket));
    if (!datasetPrefix) {
      throw new ValidationError('no offline features to train on: run the ETL first', [
        { path: 'datasetPrefix', message: 'none found' },
      ]);
    }
    const result = await trainAndRegister(deps, { ...input, name: ctx.modelName, datasetPrefix });
    return candidateOutput(result, input, datasetPrefix);
  },
);

/**
 * Engine `sagemaker`, first task: plans the run (its job name and prefixes, the dataset's parts) for the
 * Map that writes the channels and the training job. The job trains XGBoost: `algorithm` can only be gbdt.
 */
export const prepareTraining = step(
  z.object({
    datasetPrefix: z.string().min(1).optional(),
    algorithm: z
      .literal('gbdt', { error: 'the sagemaker engine trains XGBoost trees: gbdt or none' })
      .optional(),
  }),
  async (input) => {
    const stage = requireEnv(KEEL_ENV.stage);
    return prepareRun(deps, {
      stage,
      ...(input.datasetPrefix ? { datasetPrefix: input.datasetPrefix } : {}),
    });
  },
);

/** Engine `sagemaker`, one Map item: one offline part into the training channels. */
export const writeChannels = step(
  z.object({ run: trainingRunSchema, index: z.number().int().min(0) }),
  (input) => writeRunChannels(deps, input.run, input.index),
);

/**
 * Engine `sagemaker`, after the training job: converts its model, checks parity, and runs the same
 * gate and registration as `train`, with the same output.
 */
export const importTrained = step(
  decisionInput.extend({
    training: z.object({ run: trainingRunSchema }),
    trainingJob: trainingJobSchema,
  }),
  async (input) => {
    const { run } = input.training;
    const result = await importTrainedModel(deps, { name: ctx.modelName, run, job: input.trainingJob });
    return candidateOutput(result, input, run.datasetPrefix);
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
