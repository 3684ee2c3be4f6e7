import { describe, expect, it } from 'vitest';
import type { Aliases } from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';
import {
  decideAction,
  type GuardrailState,
  GuardrailsMissingError,
  guardAction,
  guardrailNames,
  parseCloudWatchTime,
  RolloutNotBakedError,
  rolloutPage,
} from '#shared/rollout/decision.ts';

/**
 * Golden cases of the rollout decision's two choices, made from what the registry and CloudWatch say:
 * at the end of the bake (decideAction) and on a guardrail's state change (guardAction).
 */

const names = guardrailNames('dev');
const ROLLOUT: Rollout = {
  id: 'r-0123456789ab',
  version: 'v3',
  champion: 'v2',
  mode: 'canary',
  percent: 20,
  bake_seconds: 3600,
  started_at: '2026-05-04T09:00:00.000Z',
  bake_ends_at: '2026-05-04T10:00:00.000Z',
  reason: 'try v3',
  actor: 'ana@cli',
};
const running: Aliases = { champion: 'v2', rollout: ROLLOUT };
const BAKED = new Date('2026-05-04T10:00:00.500Z');

const states = (alarming: readonly string[] = []): GuardrailState[] =>
  [...names.values()].map((name) => ({
    name,
    state: alarming.includes(name) ? 'ALARM' : 'OK',
    reason: alarming.includes(name) ? 'Threshold Crossed: 2 out of the last 3 datapoints [12.5, 9.1]' : 'ok',
    since: '2026-05-04T09:30:00.000Z',
  }));

describe('decideAction: at the end of the bake', () => {
  const decide = (aliases: Aliases, guardrails: GuardrailState[], now = BAKED) =>
    decideAction({ name: 'churn', rolloutId: ROLLOUT.id }, aliases, guardrails, names, now);

  it('promotes when no guardrail is in ALARM (INSUFFICIENT_DATA is not a breach)', () => {
    expect(decide(running, states())).toEqual({ kind: 'promote', rollout: ROLLOUT });
    const fresh = states().map((g) => ({ ...g, state: 'INSUFFICIENT_DATA' as const }));
    expect(decide(running, fresh).kind).toBe('promote');
  });

  it('ends with every guardrail in ALARM', () => {
    const firing = [names.get('rollout-score-shift')!, names.get('rollout-challenger-5xx-rate')!];
    const action = decide(running, states(firing));
    expect(action.kind).toBe('end');
    expect(action.kind === 'end' && action.alarms.map((a) => a.name)).toEqual([
      'keel-dev-rollout-challenger-5xx-rate',
      'keel-dev-rollout-score-shift',
    ]);
  });

  it('does nothing for a rollout that is no longer the current one, whatever the alarms say', () => {
    expect(decide({ champion: 'v2', rollout: undefined }, states([...names.values()]))).toEqual({
      kind: 'superseded',
      current: undefined,
    });
    const other = { ...ROLLOUT, id: 'r-bbbbbbbbbbbb', version: 'v4' as const };
    expect(decide({ champion: 'v3', rollout: other }, states())).toEqual({
      kind: 'superseded',
      current: other,
    });
  });

  it('refuses to act before the bake is over, and without every guardrail', () => {
    expect(() => decide(running, states(), new Date('2026-05-04T09:59:58Z'))).toThrow(RolloutNotBakedError);
    expect(() => decide(running, states(), new Date('2026-05-04T09:59:58Z'))).toThrow(
      /ends at 2026-05-04T10:00:00.000Z; the decision ran at 2026-05-04T09:59:58.000Z/,
    );
    // A second of clock skew between Step Functions and Lambda is not early.
    expect(decide(running, states(), new Date('2026-05-04T09:59:59.500Z')).kind).toBe('promote');
    const missing = states().filter((g) => g.name !== 'keel-dev-rollout-shadow-agreement');
    expect(() => decide(running, missing)).toThrow(GuardrailsMissingError);
    expect(() => decide(running, missing)).toThrow(/keel-dev-rollout-shadow-agreement.*left running/);
  });
});

describe('guardAction: a guardrail’s state change', () => {
  const change = (alarmName: string, value = 'ALARM', timestamp = '2026-05-04T09:12:00.123+0000') => ({
    name: 'churn',
    change: { alarmName, state: { value, reason: 'Threshold Crossed: …', timestamp } },
  });
  const latency = 'keel-dev-rollout-challenger-latency-p99';

  it('ends the running rollout when a guardrail of this stage goes to ALARM', () => {
    expect(guardAction(change(latency), running, names)).toEqual({
      kind: 'end',
      rollout: ROLLOUT,
      alarm: {
        name: latency,
        state: 'ALARM',
        reason: 'Threshold Crossed: …',
        since: '2026-05-04T09:12:00.123Z',
      },
    });
  });

  it('ignores other alarms, other stages, other states, no rollout, and alarms older than the rollout', () => {
    const why = (input: ReturnType<typeof change>, aliases: Aliases = running) => {
      const action = guardAction(input, aliases, names);
      return action.kind === 'ignored' ? action.why : action.kind;
    };
    expect(why(change('keel-dev-predict-5xx-rate'))).toMatch(/not a rollout guardrail/);
    expect(why(change('keel-prod-rollout-challenger-latency-p99'))).toMatch(/not a rollout guardrail/);
    expect(why(change(latency, 'OK'))).toBe(`${latency} went to OK, not ALARM`);
    expect(why(change(latency), { champion: 'v2', rollout: undefined })).toBe(
      'no rollout of churn is running',
    );
    expect(why(change(latency, 'ALARM', '2026-05-04T08:59:00.000+0000'))).toMatch(
      /before rollout r-0123456789ab started/,
    );
  });

  it('reads CloudWatch’s times (+0000)', () => {
    expect(parseCloudWatchTime('2019-10-02T17:04:40.985+0000')).toBe(Date.parse('2019-10-02T17:04:40.985Z'));
    expect(parseCloudWatchTime('2019-10-02T17:04:40.985Z')).toBe(Date.parse('2019-10-02T17:04:40.985Z'));
  });
});

describe('the page', () => {
  it('names the model, the version, the mode, the alarm and who serves now, in an ASCII subject', () => {
    const page = rolloutPage(
      'churn',
      ROLLOUT,
      [{ name: 'keel-dev-rollout-challenger-5xx-rate', reason: 'Threshold Crossed', since: 'x' }],
      'guard',
      '2026-05-04T09:12:01.000Z',
    );
    expect(page.subject).toBe('Keel churn: rollout of v3 ended by keel-dev-rollout-challenger-5xx-rate');
    expect(page.message.summary).toBe(
      'the canary of v3 (20%) of churn (rollout r-0123456789ab) ended the moment it fired: guardrail ' +
        'keel-dev-rollout-challenger-5xx-rate in ALARM; the champion v2 answers every customer',
    );
    expect(page.message).toMatchObject({
      kind: 'rollout',
      status: 'ended',
      endedBy: 'guard',
      rollout: { id: ROLLOUT.id, version: 'v3', champion: 'v2', mode: 'canary', percent: 20 },
    });
    const many = rolloutPage('churn', ROLLOUT, states([...names.values()]), 'decision', 'now');
    expect(many.subject.length).toBeLessThan(100);
    expect(many.subject).toMatch(/\.\.\.$/);
    expect(many.subject).toMatch(/^[\x20-\x7e]+$/);
  });
});
