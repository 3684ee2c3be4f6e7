import { ConflictError, KeelError } from '#shared/errors.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import {
  type Aliases,
  type Deployment,
  describeRollout,
  endRollout,
  getAliases,
  promote,
  type RegistryDeps,
} from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';

/**
 * The decision of a rollout, as plain functions over their dependencies. `decide` runs once the bake
 * period is over (the rollout state machine's task): the challenger is promoted unless a guardrail alarm
 * is in ALARM. `guard` runs the moment a guardrail alarm goes to ALARM (EventBridge in AWS, the local
 * alarm loop on the laptop): the running rollout ends at once, the champion keeps 100%, and on-call is
 * paged with the version and the alarm. Both act through the registry's conditional writes, so a
 * decision, a guard and an abort racing each other end a rollout once; whoever comes second finds it
 * superseded and does nothing.
 */

/** A guardrail alarm's state as CloudWatch describes it. */
export interface GuardrailState {
  /** The CloudWatch name, `alarmName(stage, id)` of an id of `ROLLOUT_GUARDRAIL_IDS`. */
  readonly name: string;
  readonly state: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';
  /** CloudWatch's reason for the state (the datapoints it judged). */
  readonly reason: string;
  /** When the alarm entered the state (ISO 8601). */
  readonly since: string;
}

/** The current states of the named alarms (CloudWatch DescribeAlarms); an alarm not found is left out. */
export type GuardrailReader = (names: readonly string[]) => Promise<readonly GuardrailState[]>;

/** What the rollout functions page on-call with (the on-call SNS topic). */
export interface RolloutPage {
  /** ASCII, under 100 characters, as SNS requires of a subject. */
  readonly subject: string;
  readonly message: RolloutPageMessage;
}

export interface RolloutPageMessage {
  readonly kind: 'rollout';
  readonly status: 'ended';
  /** One sentence for a phone screen: which version, which alarm, who serves now. */
  readonly summary: string;
  readonly model: { readonly name: string };
  readonly rollout: Pick<
    Rollout,
    'id' | 'version' | 'champion' | 'mode' | 'percent' | 'started_at' | 'bake_ends_at'
  >;
  /** The guardrails in ALARM that ended it. */
  readonly alarms: readonly Pick<GuardrailState, 'name' | 'reason' | 'since'>[];
  /** `guard`: the moment an alarm fired; `decision`: at the end of the bake. */
  readonly endedBy: 'guard' | 'decision';
  readonly endedAt: string;
  readonly next: string;
}

export type Pager = (page: RolloutPage) => Promise<void>;

export interface RolloutDecisionDeps {
  readonly registry: RegistryDeps;
  /** Reads the guardrail alarms' states. */
  readonly guardrails: GuardrailReader;
  /** Pages on-call. */
  readonly page: Pager;
  /** The deployment stage: the guardrail alarms are named `alarmName(stage, id)`. */
  readonly stage: string;
  /** The raw fields the online store holds (`readStoreFields`): a promotion is checked against them. */
  readonly storeFields: () => Promise<ReadonlySet<string> | undefined>;
  /** @default - the registry's clock, else the system clock */
  readonly clock?: () => Date;
}

/** Who the deployment log names for the moves of each path. */
export const ROLLOUT_ACTORS = { decision: 'rollout-decision', guard: 'rollout-guard' } as const;

/** The decision ran before the rollout's bake period was over: nothing was promoted or ended. */
export class RolloutNotBakedError extends KeelError {
  readonly code = 'Conflict';
}

/** A guardrail alarm does not exist: without its state the challenger cannot be judged, nor promoted. */
export class GuardrailsMissingError extends KeelError {
  readonly code = 'Internal';
}

/**
 * The rollout was ended but on-call could not be paged. Not retried (a retry would find the rollout
 * ended and stay silent): the failure itself must reach someone (the execution fails; the guard's
 * event goes to its failure queue).
 */
export class RolloutPageError extends KeelError {
  readonly code = 'Internal';
}

/** The names of the guardrail alarms of a stage, by catalog id. */
export const guardrailNames = (stage: string): ReadonlyMap<string, string> =>
  new Map(ROLLOUT_GUARDRAIL_IDS.map((id) => [id, alarmName(stage, id)]));

/** Step Functions may end a Wait a little before a clock elsewhere agrees: this much is not "early". */
const CLOCK_TOLERANCE_MS = 1_000;

export interface DecideInput {
  /** The registry name of the model. */
  readonly name: string;
  readonly rolloutId: string;
}

/** What {@link decide} chose, before acting on it. */
export type DecideAction =
  | { readonly kind: 'superseded'; readonly current: Rollout | undefined }
  | { readonly kind: 'end'; readonly rollout: Rollout; readonly alarms: readonly GuardrailState[] }
  | { readonly kind: 'promote'; readonly rollout: Rollout };

/**
 * The decision at the end of the bake, from the aliases and the guardrails' states: the rollout is no
 * longer the current one (a guard or an abort ended it, or another replaced it) → superseded; a
 * guardrail in ALARM → end; else promote. A guardrail that does not exist, or a bake not over yet, is
 * refused: neither may ever promote.
 */
export function decideAction(
  input: DecideInput,
  aliases: Aliases,
  guardrails: readonly GuardrailState[],
  expected: ReadonlyMap<string, string>,
  now: Date,
): DecideAction {
  const { rollout } = aliases;
  if (rollout?.id !== input.rolloutId) return { kind: 'superseded', current: rollout };
  if (now.getTime() + CLOCK_TOLERANCE_MS < Date.parse(rollout.bake_ends_at)) {
    throw new RolloutNotBakedError(
      `the bake of rollout ${rollout.id} (${describeRollout(rollout)}) ends at ${rollout.bake_ends_at}; ` +
        `the decision ran at ${now.toISOString()} and did nothing: start it with that rollout's bakeEndsAt`,
    );
  }
  const found = new Set(guardrails.map((g) => g.name));
  const missing = [...expected.values()].filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new GuardrailsMissingError(
      `guardrail alarms not found: ${missing.join(', ')}; rollout ${rollout.id} (${describeRollout(rollout)}) ` +
        'is left running, neither promoted nor ended: deploy the monitoring stack, then decide by hand ' +
        '(`keel models rollout abort`, or `keel models promote`)',
    );
  }
  const firing = guardrails.filter((g) => g.state === 'ALARM');
  return firing.length > 0 ? { kind: 'end', rollout, alarms: firing } : { kind: 'promote', rollout };
}

/** The outcome of a decision or a guard, as the state machine's result notice carries it. */
export interface RolloutOutcome {
  readonly outcome: 'promoted' | 'ended' | 'superseded' | 'ignored';
  /** One sentence. */
  readonly summary: string;
  readonly rolloutId: string | null;
  readonly version: string | null;
  /** The guardrails in ALARM that ended it (names). */
  readonly alarms: readonly string[];
  /** The deployment log entry of the move made, if any. */
  readonly seq: number | null;
}

const clockOf = (deps: RolloutDecisionDeps) => deps.clock ?? deps.registry.clock ?? (() => new Date());

/**
 * Decides a rollout whose bake is over (the state machine's task): promotes the challenger with the
 * rollout in the same conditional write, or ends it and pages on-call, or, when the rollout already
 * ended, does nothing.
 */
export async function decide(deps: RolloutDecisionDeps, input: DecideInput): Promise<RolloutOutcome> {
  const expected = guardrailNames(deps.stage);
  const [aliases, guardrails] = await Promise.all([
    getAliases(deps.registry, input.name),
    deps.guardrails([...expected.values()]),
  ]);
  const action = decideAction(input, aliases, guardrails, expected, clockOf(deps)());
  if (action.kind === 'superseded') return superseded(input.rolloutId, action.current);
  const { rollout } = action;
  if (action.kind === 'end') {
    const names = action.alarms.map((a) => a.name);
    return endAndPage(deps, input.name, rollout, action.alarms, {
      endedBy: 'decision',
      reason: `guardrail${names.length > 1 ? 's' : ''} in ALARM at the end of the bake: ${names.join(', ')}`,
    });
  }
  let deployment: Deployment;
  try {
    deployment = await promote(deps.registry, {
      name: input.name,
      version: rollout.version,
      expected: rollout.champion,
      storeFields: await deps.storeFields(),
      reason: `${describeRollout(rollout)} baked ${rollout.bake_seconds} s with no guardrail in ALARM`,
      actor: ROLLOUT_ACTORS.decision,
      rollout,
    });
  } catch (error) {
    // Ended between the read and the write (an abort, a guard): theirs is the outcome.
    if (error instanceof ConflictError) {
      const now = await getAliases(deps.registry, input.name);
      if (now.rollout?.id !== rollout.id) return superseded(input.rolloutId, now.rollout);
    }
    throw error;
  }
  return {
    outcome: 'promoted',
    summary: `${rollout.version} of ${input.name} is the champion (was ${rollout.champion}): ${describeRollout(rollout)} baked with no guardrail in ALARM`,
    rolloutId: rollout.id,
    version: rollout.version,
    alarms: [],
    seq: deployment.seq,
  };
}

/** The EventBridge "CloudWatch Alarm State Change" event, the part the guard reads. */
export interface AlarmStateChange {
  readonly alarmName: string;
  readonly state: { readonly value: string; readonly reason: string; readonly timestamp: string };
}

export interface GuardInput {
  /** The registry name of the model. */
  readonly name: string;
  readonly change: AlarmStateChange;
}

export type GuardAction =
  | { readonly kind: 'ignored'; readonly why: string }
  | { readonly kind: 'end'; readonly rollout: Rollout; readonly alarm: GuardrailState };

/** CloudWatch writes its times as `…T17:04:40.985+0000`; Date.parse wants `+00:00`. */
export const parseCloudWatchTime = (text: string) => Date.parse(text.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));

/**
 * What a guardrail's state change asks for: a guardrail of this stage gone to ALARM while a rollout runs
 * that started before it fired → end that rollout; anything else is ignored (another alarm, a return
 * to OK, no rollout, or an alarm about an earlier rollout delivered late).
 */
export function guardAction(
  input: GuardInput,
  aliases: Aliases,
  expected: ReadonlyMap<string, string>,
): GuardAction {
  const { change } = input;
  if (![...expected.values()].includes(change.alarmName)) {
    return { kind: 'ignored', why: `${change.alarmName} is not a rollout guardrail of this stage` };
  }
  if (change.state.value !== 'ALARM') {
    return { kind: 'ignored', why: `${change.alarmName} went to ${change.state.value}, not ALARM` };
  }
  const { rollout } = aliases;
  if (!rollout) return { kind: 'ignored', why: `no rollout of ${input.name} is running` };
  const firedAt = parseCloudWatchTime(change.state.timestamp);
  if (firedAt < Date.parse(rollout.started_at)) {
    return {
      kind: 'ignored',
      why: `${change.alarmName} fired at ${change.state.timestamp}, before rollout ${rollout.id} started (${rollout.started_at})`,
    };
  }
  return {
    kind: 'end',
    rollout,
    alarm: {
      name: change.alarmName,
      state: 'ALARM',
      reason: change.state.reason,
      since: new Date(firedAt).toISOString(),
    },
  };
}

/** Ends the running rollout the moment one of its guardrails fires, and pages on-call. */
export async function guard(deps: RolloutDecisionDeps, input: GuardInput): Promise<RolloutOutcome> {
  const aliases = await getAliases(deps.registry, input.name);
  const action = guardAction(input, aliases, guardrailNames(deps.stage));
  if (action.kind === 'ignored') {
    return {
      outcome: 'ignored',
      summary: action.why,
      rolloutId: aliases.rollout?.id ?? null,
      version: null,
      alarms: [],
      seq: null,
    };
  }
  return endAndPage(deps, input.name, action.rollout, [action.alarm], {
    endedBy: 'guard',
    reason: `guardrail ${action.alarm.name} in ALARM: ${action.alarm.reason}`,
  });
}

function superseded(rolloutId: string, current: Rollout | undefined): RolloutOutcome {
  return {
    outcome: 'superseded',
    summary:
      `rollout ${rolloutId} is no longer running (ended by a guard or an abort, or replaced)` +
      (current ? `; ${describeRollout(current)} runs as ${current.id}` : ''),
    rolloutId,
    version: null,
    alarms: [],
    seq: null,
  };
}

/**
 * Ends the rollout (the champion keeps 100%), then pages. The end comes first: a bad challenger must
 * stop answering even if paging fails, and that failure is raised, never retried into silence.
 */
async function endAndPage(
  deps: RolloutDecisionDeps,
  name: string,
  rollout: Rollout,
  alarms: readonly GuardrailState[],
  how: { readonly endedBy: RolloutPageMessage['endedBy']; readonly reason: string },
): Promise<RolloutOutcome> {
  let deployment: Deployment;
  try {
    deployment = await endRollout(deps.registry, {
      name,
      rolloutId: rollout.id,
      reason: how.reason,
      actor: ROLLOUT_ACTORS[how.endedBy],
    });
  } catch (error) {
    // Ended meanwhile by someone else (an abort, the other path), who has said so.
    if (error instanceof ConflictError)
      return superseded(rollout.id, (await getAliases(deps.registry, name)).rollout);
    throw error;
  }
  const page = rolloutPage(name, rollout, alarms, how.endedBy, deployment.at);
  try {
    await deps.page(page);
  } catch (error) {
    throw new RolloutPageError(
      `${page.message.summary}; but paging on-call failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    outcome: 'ended',
    summary: page.message.summary,
    rolloutId: rollout.id,
    version: rollout.version,
    alarms: alarms.map((a) => a.name),
    seq: deployment.seq,
  };
}

const SNS_SUBJECT_LIMIT = 100;

/** The page of a rollout ended by its guardrails: version, mode, the alarms and what to do. */
export function rolloutPage(
  name: string,
  rollout: Rollout,
  alarms: readonly Pick<GuardrailState, 'name' | 'reason' | 'since'>[],
  endedBy: RolloutPageMessage['endedBy'],
  endedAt: string,
): RolloutPage {
  const names = alarms.map((a) => a.name).join(', ');
  const when = endedBy === 'guard' ? 'the moment it fired' : 'at the end of the bake';
  const summary =
    `${describeRollout(rollout)} of ${name} (rollout ${rollout.id}) ended ${when}: guardrail ${names} in ALARM; ` +
    `the champion ${rollout.champion} answers every customer`;
  const subject = `Keel ${name}: rollout of ${rollout.version} ended by ${names}`;
  return {
    subject: subject.length < SNS_SUBJECT_LIMIT ? subject : `${subject.slice(0, SNS_SUBJECT_LIMIT - 4)}...`,
    message: {
      kind: 'rollout',
      status: 'ended',
      summary,
      model: { name },
      rollout: {
        id: rollout.id,
        version: rollout.version,
        champion: rollout.champion,
        mode: rollout.mode,
        percent: rollout.percent,
        started_at: rollout.started_at,
        bake_ends_at: rollout.bake_ends_at,
      },
      alarms: alarms.map(({ name: alarm, reason, since }) => ({ name: alarm, reason, since })),
      endedBy,
      endedAt,
      next:
        '`keel models rollout` shows the rollout and how it ended; compare the variants (the Variant ' +
        'dimension of the Keel metrics), fix the challenger, then start a new rollout',
    },
  };
}
