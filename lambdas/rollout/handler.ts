import { z } from 'zod';
import { awsTargetFromEnv, createCloudWatchClient, createSnsClient } from '#shared/aws/clients.ts';
import { KEEL_ENV, requireEnv } from '#shared/env.ts';
import { ValidationError } from '#shared/errors.ts';
import { logger } from '#shared/observability.ts';
import { readStoreFields } from '#shared/online-store/fields.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';
import { modelNameSchema } from '#shared/registry/metadata.ts';
import { rolloutSchema } from '#shared/registry/rollout.ts';
import { alarmStateChangeEventSchema, cloudWatchGuardrails, snsPager } from '#shared/rollout/aws.ts';
import {
  decide as decideRollout,
  guard as guardRollout,
  type RolloutDecisionDeps,
} from '#shared/rollout/decision.ts';

const ctx = pipelineContext();
const target = awsTargetFromEnv();
const deps: RolloutDecisionDeps = {
  registry: ctx.registry,
  guardrails: cloudWatchGuardrails(createCloudWatchClient(target)),
  page: snsPager(createSnsClient(target), requireEnv(KEEL_ENV.onCallTopicArn)),
  stage: requireEnv(KEEL_ENV.stage),
  storeFields: () => readStoreFields(ctx.clients.s3, ctx.names.features),
};

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time');

/**
 * The rollout state machine's decision, once the bake is over (its Wait state held the execution until
 * `bakeEndsAt`): promote the challenger, or end the rollout and page, or nothing if it already ended.
 */
export const decide = step(
  z.object({ name: modelNameSchema, rolloutId: rolloutSchema.shape.id, bakeEndsAt: isoTime }),
  async (input) => {
    if (input.name !== ctx.modelName) {
      throw new ValidationError(`this deployment decides the rollouts of ${ctx.modelName}`, [
        { path: 'name', message: `must be ${ctx.modelName}, got ${input.name}` },
      ]);
    }
    const outcome = await decideRollout(deps, input);
    logger.info('rollout decided', { ...outcome });
    return outcome;
  },
);

/**
 * A guardrail alarm's state change (EventBridge, invoked asynchronously; locally the alarm loop): ends
 * the running rollout and pages on-call when the alarm went to ALARM.
 */
export const guard = step(alarmStateChangeEventSchema, async (event) => {
  const outcome = await guardRollout(deps, { name: ctx.modelName, change: event.detail });
  logger.info('rollout guard', { alarm: event.detail.alarmName, ...outcome });
  return outcome;
});
