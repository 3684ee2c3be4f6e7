import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CreateStateMachineCommand, DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Output } from '#cli/output.ts';
import { startRolloutDecision } from '#cli/rollout-decision.ts';
import { startStageExecution } from '#cli/stage/executions.ts';
import { type AlarmLoop, createAlarmLoop, localAlarmCatalog } from '#local/alarms.ts';
import { alarmStateChangeEvent } from '#local/alarms-message.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { fileNotifier, type Notification, readNotifications } from '#local/notifications.ts';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import {
  type RolloutDecisionRecord,
  type RolloutDecisions,
  readRolloutDecision,
  requestRolloutDecision,
  startRolloutDecisions,
} from '#local/rollout-decisions.ts';
import { removeRuntime } from '#local/running-platform.ts';
import { GUARDRAIL_ALARM_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { toEmf } from '#shared/monitoring/emf.ts';
import { KEEL_NAMESPACE, ROLLOUT_METRICS, VARIANT_DIMENSION } from '#shared/monitoring/metrics.ts';
import {
  endRollout,
  getAliases,
  history,
  type RegistryDeps,
  startRollout,
} from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { publishRuntime, startMoto, startTestAws, type TestAws } from '../support/aws.ts';
import { registerFixtureVersions, testRegistry } from '../support/model.ts';

/**
 * The rollout decision on the local platform, as `keel up` runs it: the synthesized rollout state
 * machine on the local runner (its Decide task in the decide function's Lambda-like environment, its
 * calls checked against the function's role: the registry, the guardrails through the local
 * CloudWatch, the on-call topic through the local SNS), the requests of `keel models rollout`, and the
 * local alarm loop handing a guardrail's move to ALARM to the guard function. Bakes of seconds.
 */

let aws: TestAws;
let runner: PipelineRunner;
let alarms: AlarmLoop;
let decisions: RolloutDecisions;
let registry: RegistryDeps;
const NAME = 'churn';
const latencyAlarm = alarmName(LOCAL_ENVIRONMENT.stage, GUARDRAIL_ALARM_IDS.latency);
const savedHome = process.env.KEEL_HOME;

beforeAll(async () => {
  aws = await startTestAws();
  registry = testRegistry(aws);
  runner = await createPipelineRunner({ home: aws.home, target: aws.target, names: aws.names });
  alarms = await createAlarmLoop({
    home: aws.home,
    environment: LOCAL_ENVIRONMENT,
    catalog: localAlarmCatalog({}, LOCAL_ENVIRONMENT.stage),
    notify: fileNotifier(aws.home),
    // What `keel up` does with a guardrail's move to ALARM (cli/commands/up.ts).
    onGuardrailAlarm: async (_definition, transition) => {
      await runner.guard(alarmStateChangeEvent(transition, LOCAL_ENVIRONMENT));
    },
  });
  await alarms.evaluate();
  decisions = startRolloutDecisions({ home: aws.home, runner, pollMs: 100 });
  await registerFixtureVersions(registry, NAME, 3);
}, 120_000);

afterAll(async () => {
  await decisions?.stop();
  await alarms?.stop();
  await runner?.close();
  await aws?.close();
  if (savedHome === undefined) delete process.env.KEEL_HOME;
  else process.env.KEEL_HOME = savedHome;
});

// A test that failed midway leaves no rollout running for the next.
afterEach(async () => {
  const { rollout } = await getAliases(registry, NAME);
  if (rollout)
    await endRollout(registry, { name: NAME, rolloutId: rollout.id, reason: 'test', actor: 'test' });
});

async function rollout(version: string, mode: 'canary' | 'shadow', bakeSeconds: number): Promise<Rollout> {
  const started = await startRollout(registry, {
    name: NAME,
    version,
    mode,
    ...(mode === 'canary' ? { percent: 10 } : {}),
    bakeSeconds,
    reason: `roll out ${version}`,
    actor: 'test',
  });
  return started.rollout;
}

/** The decision's record once it has ended (the execution's outcome). */
async function ended(rolloutId: string, timeoutMs = 60_000): Promise<RolloutDecisionRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const record = await readRolloutDecision(aws.home, rolloutId);
    if (record?.execution?.endedAt) return record;
    if (Date.now() > until)
      throw new Error(`the decision of ${rolloutId} did not end: ${JSON.stringify(record)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const decisionOf = (record: RolloutDecisionRecord) =>
  (record.execution!.output as { decision: { outcome: string; summary: string } }).decision;
const notes = async (since: number): Promise<Notification[]> =>
  (await readNotifications(aws.home, 200)).filter((n) => Date.parse(n.at) >= since);

/** The challenger's latency at `ms` in the period in progress and the one before: 2 of 3 breaching. */
async function slowChallenger(ms: number) {
  const now = Date.now();
  const lines = [now - 60_000, now].map((timestamp) =>
    JSON.stringify(
      toEmf(
        [
          {
            metricName: ROLLOUT_METRICS.latency,
            value: ms,
            unit: 'Milliseconds',
            dimensions: { service: 'keel', [VARIANT_DIMENSION]: 'challenger' },
          },
        ],
        { namespace: KEEL_NAMESPACE, timestamp },
      )[0],
    ),
  );
  await mkdir(dirname(metricsFile(aws.home)), { recursive: true });
  await appendFile(metricsFile(aws.home), `${lines.join('\n')}\n`);
}

describe(`the rollout decision on the local platform (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  it('promotes the challenger at the end of a quiet bake, through the state machine keel up runs', async () => {
    const since = Date.now();
    const r = await rollout('v2', 'canary', 3);
    // What `keel models rollout` calls right after startRollout, locally: the running keel up takes it.
    process.env.KEEL_HOME = aws.home;
    await publishRuntime(aws);
    try {
      const started = await startRolloutDecision(new Output(() => true), NAME, r);
      expect(started).toEqual({ where: 'local', execution: `${aws.home}/rollout-decisions/${r.id}.json` });
    } finally {
      await removeRuntime(aws.home);
    }
    const taken = (await readRolloutDecision(aws.home, r.id))!;
    expect(taken.execution?.status).toBe('running');
    // The bake end rounded up to its second, which a Step Functions Wait keeps.
    expect(taken.input.bakeEndsAt).toMatch(/:\d\d\.000Z$/);
    expect(Date.parse(taken.input.bakeEndsAt) - Date.parse(r.bake_ends_at)).toBeGreaterThanOrEqual(0);
    expect(Date.parse(taken.input.bakeEndsAt) - Date.parse(r.bake_ends_at)).toBeLessThan(1_000);
    // Asked again: the same decision, not a second one.
    await expect(requestRolloutDecision(aws.home, taken.input)).resolves.toMatchObject({
      input: { rolloutId: r.id },
    });

    const record = await ended(r.id);
    expect(record.execution).toMatchObject({ status: 'SUCCEEDED' });
    expect(decisionOf(record)).toMatchObject({ outcome: 'promoted', version: 'v2' });
    expect(Date.parse(record.execution!.endedAt!)).toBeGreaterThanOrEqual(Date.parse(r.bake_ends_at));
    expect(await getAliases(registry, NAME)).toEqual({ champion: 'v2', rollout: undefined });
    expect((await history(registry, NAME)).at(-1)).toMatchObject({
      kind: 'promote',
      to: 'v2',
      actor: 'rollout-decision',
      rollout: { id: r.id },
    });
    const published = await notes(since);
    expect(published.map((n) => [n.source, n.subject])).toEqual([
      ['pipeline:rollout', 'Keel local: rollout promoted'],
    ]);
    expect(published[0]!.message).toMatchObject({ status: 'promoted', rolloutId: r.id });
  }, 90_000);

  it('ends the rollout the moment a guardrail fires, pages naming version and alarm; the decision at the bake end does nothing', async () => {
    const since = Date.now();
    const r = await rollout('v3', 'shadow', 8);
    await requestRolloutDecision(aws.home, { name: NAME, rolloutId: r.id, bakeEndsAt: r.bake_ends_at });

    await slowChallenger(2_500);
    const snapshot = await alarms.evaluate();
    expect(snapshot.alarms.find((a) => a.name === latencyAlarm)?.state).toBe('ALARM');
    // The guard has run (the loop awaits it): ended before the bake end, the champion keeps 100%.
    expect(Date.now()).toBeLessThan(Date.parse(r.bake_ends_at));
    expect(await getAliases(registry, NAME)).toEqual({ champion: 'v2', rollout: undefined });
    const end = (await history(registry, NAME)).at(-1)!;
    expect(end).toMatchObject({ kind: 'rollout-end', from: 'v3', to: 'v2', actor: 'rollout-guard' });
    expect(end.reason).toContain(`guardrail ${latencyAlarm} in ALARM`);

    // Paged on the on-call topic (the guard function's own publish, through the local SNS and its key
    // policy), not by the alarm itself.
    const pages = (await notes(since)).filter((n) => n.source.startsWith('topic:'));
    expect(pages.map((n) => n.subject)).toEqual([`Keel churn: rollout of v3 ended by ${latencyAlarm}`]);
    expect(pages[0]!.message).toMatchObject({
      kind: 'rollout',
      rollout: { id: r.id, version: 'v3', mode: 'shadow', champion: 'v2' },
      alarms: [{ name: latencyAlarm, reason: expect.stringMatching(/^Threshold Crossed/) }],
      endedBy: 'guard',
    });
    expect((await notes(since)).filter((n) => n.source.startsWith('alarm:'))).toEqual([]);

    const record = await ended(r.id);
    expect(record.execution?.status).toBe('SUCCEEDED');
    expect(decisionOf(record).outcome).toBe('superseded');
    const after = await notes(since);
    expect(after.filter((n) => n.source.startsWith('topic:'))).toHaveLength(1);
    expect(after.filter((n) => n.source === 'pipeline:rollout').map((n) => n.subject)).toEqual([
      'Keel local: rollout superseded',
    ]);
    expect((await getAliases(registry, NAME)).champion).toBe('v2');
  }, 90_000);

  it('a decision that finds a guardrail still in ALARM at the bake end ends the rollout and pages', async () => {
    // The latency guardrail is still in ALARM from the last test: no new transition, so no guard.
    const since = Date.now();
    const r = await rollout('v3', 'canary', 2);
    await requestRolloutDecision(aws.home, { name: NAME, rolloutId: r.id, bakeEndsAt: r.bake_ends_at });
    const record = await ended(r.id);
    expect(decisionOf(record)).toMatchObject({ outcome: 'ended', version: 'v3', alarms: [latencyAlarm] });
    expect((await getAliases(registry, NAME)).rollout).toBeUndefined();
    const pages = (await notes(since)).filter((n) => n.source.startsWith('topic:'));
    expect(pages).toHaveLength(1);
    expect(pages[0]!.message).toMatchObject({ endedBy: 'decision', rollout: { id: r.id, mode: 'canary' } });
  }, 90_000);
});

describe('the local runner and the rollout state machine’s wait', () => {
  it('stops a waiting execution (ABORTED), and refuses a wait no timer holds rather than ending it at once', async () => {
    const input = (inMs: number) => ({
      name: NAME,
      rolloutId: 'r-00000000beef',
      bakeEndsAt: new Date(Date.now() + inMs).toISOString(),
    });
    const stop = new AbortController();
    const waiting = runner.run('rollout', input(3_600_000), undefined, undefined, stop.signal);
    setTimeout(() => stop.abort(), 200);
    await expect(waiting).resolves.toMatchObject({ status: 'ABORTED' });
    await expect(runner.run('rollout', input(30 * 86_400_000))).rejects.toThrow(
      /would wait until .* longer than the local runner can wait at once/,
    );
  });
});

describe('the decision of a rollout on a deployed stage', () => {
  it('starts the stage’s rollout state machine named after the rollout, with its input (moto)', async () => {
    const moto = await startMoto();
    const sfn = new SFNClient({
      region: 'us-east-1',
      endpoint: moto.target.endpoints!.s3,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    });
    try {
      const { stateMachineArn } = await sfn.send(
        new CreateStateMachineCommand({
          name: 'keel-it-rollout',
          definition: JSON.stringify({ StartAt: 'Bake', States: { Bake: { Type: 'Pass', End: true } } }),
          roleArn: 'arn:aws:iam::123456789012:role/keel-it-states',
        }),
      );
      const input = { name: NAME, rolloutId: 'r-0123456789ab', bakeEndsAt: '2026-06-01T10:00:00.000Z' };
      const arn = await startStageExecution(sfn, stateMachineArn!, input, input.rolloutId);
      expect(arn).toMatch(/:execution:keel-it-rollout:r-0123456789ab$/);
      const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
      expect(JSON.parse(execution.input!)).toEqual(input);
    } finally {
      sfn.destroy();
      moto.process.kill('SIGTERM');
    }
  }, 60_000);
});
