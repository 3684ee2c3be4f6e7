import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readStoreFields } from '#shared/online-store/fields.ts';
import { getAliases, history, type RegistryDeps, startRollout } from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';
import {
  decide,
  type GuardrailState,
  guard,
  guardrailNames,
  type RolloutDecisionDeps,
  RolloutNotBakedError,
  type RolloutPage,
  RolloutPageError,
} from '#shared/rollout/decision.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { registerFixtureVersions, testRegistry } from '../support/model.ts';

/**
 * decide and guard against the registry on the local servers (or moto): what each does to the aliases
 * and the deployment log, what it pages, and that a decision, a guard and an abort end a rollout once.
 * The guardrails' states and the pager are the injected dependencies (the alarms and the topic are the
 * subject of test/integration/rollout-local.test.ts).
 */

let aws: TestAws;
let registry: RegistryDeps;
let clockMs = Date.parse('2026-06-01T08:00:00Z');
const now = () => new Date(clockMs);
const names = guardrailNames('local');
let alarming: string[];
let pages: RolloutPage[];
let pageFails: boolean;

const deps = (): RolloutDecisionDeps => ({
  registry,
  guardrails: async (asked) =>
    asked.map(
      (name): GuardrailState => ({
        name,
        state: alarming.includes(name) ? 'ALARM' : 'OK',
        reason: alarming.includes(name) ? 'Threshold Crossed: 2 out of the last 3 datapoints' : 'fine',
        since: now().toISOString(),
      }),
    ),
  page: async (page) => {
    if (pageFails) throw Object.assign(new Error('KMS key access denied'), { name: 'KMSAccessDenied' });
    pages.push(page);
  },
  stage: 'local',
  storeFields: () => readStoreFields(aws.clients.s3, aws.names.features),
  clock: now,
});

const NAME = 'churn';
const latency = names.get('rollout-challenger-latency-p99')!;

beforeAll(async () => {
  aws = await startTestAws();
  registry = { ...testRegistry(aws), clock: now };
  await registerFixtureVersions(registry, NAME, 4);
});
afterAll(async () => {
  await aws?.close();
});
beforeEach(() => {
  alarming = [];
  pages = [];
  pageFails = false;
  clockMs += 3_600_000;
});

async function rollout(version: string, mode: 'canary' | 'shadow' = 'canary'): Promise<Rollout> {
  const { rollout } = await startRollout(registry, {
    name: NAME,
    version,
    mode,
    ...(mode === 'canary' ? { percent: 20 } : {}),
    bakeSeconds: 600,
    reason: `roll out ${version}`,
    actor: 'test',
  });
  return rollout;
}

const afterBake = (r: Rollout) => {
  clockMs = Date.parse(r.bake_ends_at) + 1_000;
};
const alarmChange = (alarmName: string, value = 'ALARM') => ({
  name: NAME,
  change: {
    alarmName,
    state: {
      value,
      reason: 'Threshold Crossed: 2 out of the last 3 datapoints [1520, 1710]',
      timestamp: now().toISOString(),
    },
  },
});

describe(`rollout decision on the registry (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  it('promotes the challenger once the bake is over and no guardrail fired; a second decision does nothing', async () => {
    const r = await rollout('v2');
    clockMs += 60_000;
    await expect(decide(deps(), { name: NAME, rolloutId: r.id })).rejects.toThrow(RolloutNotBakedError);
    expect((await getAliases(registry, NAME)).rollout?.id).toBe(r.id);

    afterBake(r);
    const outcome = await decide(deps(), { name: NAME, rolloutId: r.id });
    expect(outcome).toMatchObject({ outcome: 'promoted', rolloutId: r.id, version: 'v2', alarms: [] });
    expect(await getAliases(registry, NAME)).toEqual({ champion: 'v2', rollout: undefined });
    const last = (await history(registry, NAME)).at(-1)!;
    expect(last).toMatchObject({
      kind: 'promote',
      from: 'v1',
      to: 'v2',
      actor: 'rollout-decision',
      rollout: { id: r.id, version: 'v2', mode: 'canary', percent: 20 },
      seq: outcome.seq,
    });
    expect(pages).toEqual([]);
    expect(await decide(deps(), { name: NAME, rolloutId: r.id })).toMatchObject({ outcome: 'superseded' });
  });

  it('guard: a guardrail’s ALARM ends the rollout at once and pages with version, mode and alarm; the later decision is a no-op', async () => {
    const r = await rollout('v3', 'shadow');
    clockMs += 120_000;
    // Not a guardrail, or not ALARM: nothing.
    expect(await guard(deps(), alarmChange('keel-local-predict-5xx-rate'))).toMatchObject({
      outcome: 'ignored',
    });
    expect(await guard(deps(), alarmChange(latency, 'OK'))).toMatchObject({ outcome: 'ignored' });
    expect((await getAliases(registry, NAME)).rollout?.id).toBe(r.id);

    const outcome = await guard(deps(), alarmChange(latency));
    expect(outcome).toMatchObject({ outcome: 'ended', rolloutId: r.id, version: 'v3', alarms: [latency] });
    expect(await getAliases(registry, NAME)).toEqual({ champion: 'v2', rollout: undefined });
    const last = (await history(registry, NAME)).at(-1)!;
    expect(last).toMatchObject({ kind: 'rollout-end', from: 'v3', to: 'v2', actor: 'rollout-guard' });
    expect(last.reason).toContain(`guardrail ${latency} in ALARM: Threshold Crossed`);
    expect(Date.parse(last.at)).toBeLessThan(Date.parse(r.bake_ends_at));
    expect(pages).toHaveLength(1);
    expect(pages[0]!.subject).toBe(`Keel churn: rollout of v3 ended by ${latency}`);
    expect(pages[0]!.message).toMatchObject({
      summary: expect.stringContaining('the shadow of v3'),
      rollout: { id: r.id, version: 'v3', mode: 'shadow', percent: null, champion: 'v2' },
      alarms: [{ name: latency, reason: expect.stringContaining('1520') }],
      endedBy: 'guard',
    });

    // The same event again (EventBridge delivers at least once), then the decision at the end of the bake.
    expect(await guard(deps(), alarmChange(latency))).toMatchObject({ outcome: 'ignored' });
    afterBake(r);
    alarming = [latency];
    expect(await decide(deps(), { name: NAME, rolloutId: r.id })).toMatchObject({ outcome: 'superseded' });
    expect(pages).toHaveLength(1);
    expect((await getAliases(registry, NAME)).champion).toBe('v2');
  });

  it('decide: a guardrail still in ALARM at the end of the bake ends the rollout and pages', async () => {
    const r = await rollout('v3');
    afterBake(r);
    alarming = [names.get('rollout-positive-rate-delta')!, names.get('rollout-score-shift')!];
    const outcome = await decide(deps(), { name: NAME, rolloutId: r.id });
    expect(outcome).toMatchObject({ outcome: 'ended', version: 'v3', alarms: alarming });
    expect(await getAliases(registry, NAME)).toEqual({ champion: 'v2', rollout: undefined });
    expect(pages.map((p) => p.message.endedBy)).toEqual(['decision']);
    expect(pages[0]!.message.summary).toContain('at the end of the bake');
    expect((await history(registry, NAME)).at(-1)).toMatchObject({
      kind: 'rollout-end',
      actor: 'rollout-decision',
      reason: `guardrails in ALARM at the end of the bake: ${alarming.join(', ')}`,
    });
  });

  it('a page that fails is raised, after the rollout has ended', async () => {
    const r = await rollout('v4');
    pageFails = true;
    await expect(guard(deps(), alarmChange(latency))).rejects.toThrow(RolloutPageError);
    await expect(guard(deps(), alarmChange(latency))).resolves.toMatchObject({ outcome: 'ignored' });
    expect((await getAliases(registry, NAME)).rollout).toBeUndefined();
    const last = (await history(registry, NAME)).at(-1)!;
    expect(last).toMatchObject({ kind: 'rollout-end', rollout: { id: r.id } });
  });

  it('a guard and a decision racing end the rollout once, with one page', async () => {
    const r = await rollout('v4');
    afterBake(r);
    alarming = [latency];
    const outcomes = await Promise.all([
      guard(deps(), alarmChange(latency)),
      decide(deps(), { name: NAME, rolloutId: r.id }),
    ]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['ended', 'superseded']);
    expect(pages).toHaveLength(1);
    const ends = (await history(registry, NAME)).filter(
      (e) => e.kind === 'rollout-end' && e.rollout?.id === r.id,
    );
    expect(ends).toHaveLength(1);
  });
});
