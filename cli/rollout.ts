import { type Output, UserError } from '#cli/output.ts';
import type { StartedRolloutDecision } from '#cli/rollout-decision.ts';
import type { PlatformContext } from '#local/platform-context.ts';
import { ConflictError, type FieldIssue, type KeelError, ValidationError } from '#shared/errors.ts';
import { readStoreFields } from '#shared/online-store/fields.ts';
import {
  checkPromotable,
  type Deployment,
  describeRollout,
  endRollout,
  FieldNotInStoreError,
  FingerprintMismatchError,
  getVersion,
  type RolloutRef,
  startRollout,
} from '#shared/registry/registry.ts';
import { formatDuration, type Rollout, type RolloutMode } from '#shared/registry/rollout.ts';

/** What `keel models shadow` and `keel models canary` ask for. */
export interface RolloutInput {
  readonly version: string;
  readonly mode: RolloutMode;
  /** Canary only. */
  readonly percent?: number;
  readonly bakeSeconds: number;
  readonly reason: string;
}

/** The raw fields the platform's online store holds, as the ETL recorded them: what promotions check. */
export const storeFieldsOf = (ctx: PlatformContext) => readStoreFields(ctx.clients.s3, ctx.names.features);

/** The command-line flag of each field of a rollout request, so a refusal names what to change. */
const FLAGS: Readonly<Record<string, string>> = { percent: '--percent', bake: '--bake' };

/**
 * Starts a rollout of `input.version` beside the champion, then its decision (the rollout state
 * machine: locally in the running `keel up`, with `--stage` on the stage): the single entry point of
 * `keel models shadow` and `keel models canary`. A rollout whose decision cannot start is ended again
 * at once, so that none runs undecided.
 */
export async function beginRollout(
  ctx: PlatformContext,
  output: Output,
  input: RolloutInput,
): Promise<{ rollout: Rollout; deployment: Deployment; decision: StartedRolloutDecision }> {
  let started: { rollout: Rollout; deployment: Deployment };
  try {
    started = await startRollout(ctx.registry, {
      name: ctx.modelName,
      ...input,
      storeFields: await storeFieldsOf(ctx),
      actor: ctx.actor,
    });
  } catch (error) {
    const issues = error instanceof ValidationError ? (error.details as FieldIssue[]) : [];
    if (issues.some((issue) => issue.path in FLAGS)) {
      throw new UserError(issues.map((i) => `${FLAGS[i.path] ?? i.path}: ${i.message}`).join('; '));
    }
    throw error;
  }
  try {
    // The decision's modules (Step Functions, the local state-machine runner) load only to start one.
    const { startRolloutDecision } = await import('#cli/rollout-decision.ts');
    const decision = await startRolloutDecision(output, ctx.modelName, started.rollout);
    return { ...started, decision };
  } catch (error) {
    await endRollout(ctx.registry, {
      name: ctx.modelName,
      rolloutId: started.rollout.id,
      reason: `its decision could not be started: ${(error as Error).message}`,
      actor: ctx.actor,
    });
    throw error;
  }
}

/**
 * Ends `rollout` so that `version` can be promoted (or rolled back to): the registry moves no champion
 * while a rollout runs. The refusals that promotion would meet are checked first, so that a promotion
 * that cannot happen leaves the rollout running.
 */
export async function endRolloutFor(
  ctx: PlatformContext,
  rollout: Rollout,
  input: { version: string; force?: boolean; reason: string; storeFields: ReadonlySet<string> | undefined },
): Promise<Deployment> {
  const target = await getVersion(ctx.registry, ctx.modelName, input.version);
  const keeps = `${describeRollout(rollout)} keeps running`;
  if (target.version === rollout.champion) {
    throw new ConflictError(`${target.version} is already the champion of ${ctx.modelName}; ${keeps}`);
  }
  try {
    await checkPromotable(ctx.registry, { name: ctx.modelName, ...input, version: target.version });
  } catch (error) {
    if (!(error instanceof FingerprintMismatchError || error instanceof FieldNotInStoreError)) throw error;
    // The same refusal, saying what became of the rollout.
    const Refusal = error.constructor as new (message: string, options: object) => KeelError;
    throw new Refusal(`${error.message}; ${keeps}`, { cause: error, details: error.details });
  }
  return endRollout(ctx.registry, {
    name: ctx.modelName,
    rolloutId: rollout.id,
    reason: input.reason,
    actor: ctx.actor,
  });
}

/** `canary 20%` or `shadow`: the mode column of a rollout. */
export const rolloutLabel = (rollout: Pick<RolloutRef, 'mode' | 'percent'>) =>
  rollout.mode === 'canary' ? `canary ${rollout.percent}%` : 'shadow';

/** `the canary of v3 (20%) (r-…)`: a rollout named with its id. */
export const rolloutName = (rollout: RolloutRef) => `${describeRollout(rollout)} (${rollout.id})`;

/** Who answers whom while the rollout runs. */
export const rolloutServing = (rollout: Rollout) =>
  rollout.mode === 'canary'
    ? `${rollout.version} answers ${rollout.percent}% of customers (the same ones throughout), ${rollout.champion} the rest`
    : `${rollout.version} scores every request beside ${rollout.champion}, which alone answers`;

/** When the decision is due: the bake end, and the time left (or how long ago it passed). */
export function decisionDue(rollout: Rollout, now: Date): string {
  const left = Math.ceil((Date.parse(rollout.bake_ends_at) - now.getTime()) / 1000);
  return left > 0
    ? `${rollout.bake_ends_at} (${formatDuration(left)} left)`
    : `${rollout.bake_ends_at} (the bake ended ${formatDuration(-left)} ago)`;
}

/**
 * The log entry that ended the most recent rollout (its promotion, or its end), or null while that
 * rollout still runs or before the first one.
 */
export function lastRolloutEnd(log: readonly Deployment[]): Deployment | null {
  const last = log.findLast((entry) => entry.rollout !== undefined);
  return last && last.kind !== 'rollout-start' ? last : null;
}

/** How a rollout ended, from its last log entry. */
export function rolloutDecision(end: Deployment): string {
  const rollout = rolloutName(end.rollout!);
  return end.kind === 'rollout-end'
    ? `${rollout} ended at ${end.at} by ${end.actor}: ${end.reason} (${end.to} kept 100%)`
    : `${rollout} promoted ${end.to} at ${end.at} by ${end.actor}: ${end.reason}`;
}
