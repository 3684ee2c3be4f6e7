import { SFNClient } from '@aws-sdk/client-sfn';
import { startStageExecution } from '#cli/stage/executions.ts';
import { requestRolloutDecision } from '#local/rollout-decisions.ts';
import { keelHome, requireRuntime } from '#local/running-platform.ts';
import { type Rollout, rolloutDecisionStart } from '#shared/registry/rollout.ts';
import { type Output, UserError } from './output.ts';

/** Where the decision of a rollout runs, once started. */
export interface StartedRolloutDecision {
  /** A deployed stage's execution ARN, or the local request file the running `keel up` took. */
  readonly execution: string;
  readonly where: 'stage' | 'local';
}

/**
 * Starts the decision of a rollout just started with `startRollout`: the rollout state machine waits
 * for the bake end, then promotes the challenger unless a guardrail fired (a guardrail that fires during
 * the bake ends the rollout at once, without it). With `--stage`, StartExecution on the stage's rollout
 * state machine, named after the rollout so that asking twice starts one; locally, the running
 * `keel up` runs it (local/rollout-decisions.ts). Returns once the execution is started, not decided.
 */
export async function startRolloutDecision(
  output: Output,
  name: string,
  rollout: Pick<Rollout, 'id' | 'bake_ends_at'>,
): Promise<StartedRolloutDecision> {
  const input = rolloutDecisionStart(name, rollout);
  const stage = await output.stage();
  if (stage) {
    const arn = stage.stateMachines.rollout;
    if (!arn) {
      throw new UserError(
        `stack Keel-${stage.stage}-Pipelines has no rollout state machine: deploy this version of Keel ` +
          `(the rollout ${rollout.id} runs undecided: end it with \`keel --stage ${stage.stage} models rollout abort\`)`,
      );
    }
    const sfn = new SFNClient({ region: stage.target.region });
    try {
      return { execution: await startStageExecution(sfn, arn, input, rollout.id), where: 'stage' };
    } finally {
      sfn.destroy();
    }
  }
  const home = keelHome();
  await requireRuntime(home);
  await requestRolloutDecision(home, input);
  return { execution: `${home}/rollout-decisions/${rollout.id}.json`, where: 'local' };
}
