import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAlarmsSnapshot } from '#local/alarms.ts';
import { readNotifications } from '#local/notifications.ts';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT, FEATURE_FIELD_NAMES, FEATURE_SET } from '#shared/features/index.ts';
import { exportOnnx } from '#shared/model/onnx-export.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { modelKeys } from '#shared/registry/metadata.ts';
import {
  getAliases,
  getChampion,
  history,
  loadVerifiedModel,
  type RegistryDeps,
  readMetadata,
  registerModel,
} from '#shared/registry/registry.ts';
import { variantFor } from '#shared/registry/rollout.ts';
import { TEST_EMULATOR } from '../support/aws.ts';
import { keelUpEnv, type RunningKeel, runKeel, startKeelUp } from '../support/cli.ts';

/**
 * Rollouts end to end on `keel up`, as a user runs them: `keel models shadow|canary` start a rollout
 * and its decision; the API serves it; the alarm loop evaluates the guardrails over the API's metrics;
 * the guard ends a bad challenger during its bake and pages; the decision promotes a good one at the
 * end of its bake. The stage's guardrails are made fast for the test (10 s periods, 1 of 1, 20 samples:
 * KEEL_CONFIG), not different.
 */
const home = await mkdtemp(join(tmpdir(), 'keel-rollout-'));
const configFile = join(home, 'stage.json');
const env = keelUpEnv(home, {
  KEEL_BOOTSTRAP_ROWS: '3000',
  KEEL_CONFIG: configFile,
  KEEL_ALARM_INTERVAL_SECONDS: '2',
  // The suite turns metrics off (vitest.config.ts): the guardrails need the API's.
  POWERTOOLS_METRICS_DISABLED: 'false',
});
let keel: RunningKeel;
let api: string;
let registry: RegistryDeps;
let closeClients: () => void;

beforeAll(async () => {
  await writeFile(
    configFile,
    JSON.stringify({
      alarms: {
        rollout: {
          periodSeconds: 10,
          evaluationPeriods: 1,
          datapointsToAlarm: 1,
          minSamples: 20,
          minRequests: 5,
        },
      },
    }),
  );
  keel = await startKeelUp(env);
  const runtime = (await readRuntime(home))!;
  if (!runtime.endpoints.api) throw new Error(`keel up published no API endpoint:\n${keel.output()}`);
  api = runtime.endpoints.api;
  const clients = createAwsClients(runtimeTarget(runtime));
  closeClients = () => {
    clients.s3.destroy();
    clients.dynamo.destroy();
  };
  registry = {
    s3: clients.s3,
    dynamo: clients.dynamo,
    bucket: runtime.names.models!,
    table: runtime.names.modelRegistry!,
  };
}, 240_000);

afterAll(async () => {
  closeClients?.();
  if (keel) expect(await keel.stop()).toBe(0);
  await rm(home, { recursive: true, force: true });
});

async function json<T>(...args: string[]): Promise<T> {
  const result = await runKeel(['--json', ...args], env);
  if (result.code !== 0) throw new Error(`keel ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Registers the champion's artifact again: a challenger that decides exactly as the champion does. */
async function registerCopyOfChampion(): Promise<string> {
  const champion = (await getChampion(registry, 'churn'))!;
  const { onnx, metadata } = await loadVerifiedModel(registry, {
    name: 'churn',
    version: champion,
  });
  const { name: _n, version: _v, artifact: _a, created_at: _c, ...rest } = metadata;
  return (await registerModel(registry, { name: 'churn', onnx, metadata: { ...rest, parent: champion } }))
    .version;
}

/** A model whose every score is ~1 (a logistic with a huge intercept): it calls every customer a churner. */
async function registerAlwaysChurns(): Promise<string> {
  const champion = await readMetadata(registry, 'churn', (await getChampion(registry, 'churn'))!);
  const { name: _n, version: _v, artifact: _a, created_at: _c, ...rest } = champion;
  const onnx = exportOnnx(
    { kind: 'linear', featureCount: FEATURE_COUNT, weights: new Array(FEATURE_COUNT).fill(0), intercept: 12 },
    { featureNames: FEATURE_SET.names },
  );
  return (
    await registerModel(registry, { name: 'churn', onnx, metadata: { ...rest, algorithm: 'always-churns' } })
  ).version;
}

interface Answer {
  customerId: string;
  prediction: number;
  model: { version: string; variant: string };
}

async function batch(items: unknown[]): Promise<Answer[]> {
  const response = await fetch(`${api}/predict/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items }),
  });
  expect(response.status).toBe(200);
  const { results } = (await response.json()) as { results: (Answer | { error: { code: string } })[] };
  for (const result of results) expect(result, JSON.stringify(result)).not.toHaveProperty('error');
  return results as Answer[];
}

/** Stored customers (the bootstrap's c-000001 … c-003000), 100 per request. */
const storedBatch = (round: number) =>
  Array.from({ length: 100 }, (_, i) => ({
    customerId: `c-${String(((round * 100 + i) % 3000) + 1).padStart(6, '0')}`,
  }));

/** Until the API serves the rollout (the predict environments follow the aliases every 2 s). */
const servedRollout = (id: string | undefined) =>
  expect
    .poll(
      async () => ((await (await fetch(`${api}/health`)).json()) as { rollout?: { id: string } }).rollout?.id,
      {
        timeout: 20_000,
        interval: 250,
      },
    )
    .toBe(id);

/** Until no guardrail is in ALARM: a new rollout starts from quiet alarms, as in AWS after their periods. */
const guardrailsQuiet = () =>
  expect
    .poll(
      async () =>
        (await readAlarmsSnapshot(home))?.alarms.filter(
          (a) => ROLLOUT_GUARDRAIL_IDS.includes(a.id) && a.state === 'ALARM',
        ).length,
      { timeout: 60_000, interval: 500 },
    )
    .toBe(0);

type Started = { rollout: { id: string; version: string; bake_ends_at: string } };

// `keel up` runs its own embedded servers whatever KEEL_TEST_EMULATOR says.
describe.skipIf(TEST_EMULATOR === 'moto')('rollouts end to end through keel up', { timeout: 240_000 }, () => {
  it('serves a 20% canary to 20 ± 2% of 10,000 distinct customers, the same variant to a customer every time', async () => {
    const challenger = await registerCopyOfChampion();
    const { rollout } = await json<Started>(
      'models',
      'canary',
      challenger,
      '--percent',
      '20',
      '--bake',
      '30m',
    );
    await servedRollout(rollout.id);
    const customers = [...generateRecords({ rows: 10_000, seed: 9, asOf: new Date() })].map(
      ({ churned: _, ...r }, i) => ({
        customerId: `c-${String(100_001 + i).padStart(6, '0')}`,
        attributes: Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, r[name]])),
      }),
    );
    const answers: Answer[] = [];
    for (let i = 0; i < customers.length; i += 100)
      answers.push(...(await batch(customers.slice(i, i + 100))));
    const canary = answers.filter((a) => a.model.variant === 'canary');
    expect(canary.length / answers.length).toBeGreaterThanOrEqual(0.18);
    expect(canary.length / answers.length).toBeLessThanOrEqual(0.22);
    expect(canary.every((a) => a.model.version === challenger)).toBe(true);
    for (const a of answers)
      expect(a.model.variant).toBe(variantFor({ ...rollout, mode: 'canary', percent: 20 }, a.customerId));
    // Again, one by one: the same customers, the same variants.
    const again = await batch(customers.slice(0, 100));
    expect(again.map((a) => a.model.variant)).toEqual(answers.slice(0, 100).map((a) => a.model.variant));
    await json('models', 'rollout', 'abort', '--reason', 'test: share measured');
    await servedRollout(undefined);
  });

  it('promotes a good shadow at the end of its bake; meanwhile only the champion answers', async () => {
    await guardrailsQuiet();
    const champion = (await getChampion(registry, 'churn'))!;
    const challenger = await registerCopyOfChampion();
    const { rollout } = await json<Started>('models', 'shadow', challenger, '--bake', '15s');
    await servedRollout(rollout.id);
    for (let round = 0; Date.now() < Date.parse(rollout.bake_ends_at) - 1000; round++) {
      for (const answer of await batch(storedBatch(round))) {
        expect(answer.model).toEqual({ name: 'churn', version: champion, variant: 'champion' });
      }
    }
    await expect
      .poll(() => getChampion(registry, 'churn'), { timeout: 30_000, interval: 500 })
      .toBe(challenger);
    expect((await getAliases(registry, 'churn')).rollout).toBeUndefined();
    expect((await history(registry, 'churn')).at(-1)).toMatchObject({
      kind: 'promote',
      from: champion,
      to: challenger,
      actor: 'rollout-decision',
      rollout: { id: rollout.id, mode: 'shadow' },
    });
  });

  it('ends a bad canary during its bake and pages naming it, while no request fails', async () => {
    await guardrailsQuiet();
    const champion = (await getChampion(registry, 'churn'))!;
    const bad = await registerAlwaysChurns();
    const { rollout } = await json<Started>('models', 'canary', bad, '--percent', '50', '--bake', '10m');
    await servedRollout(rollout.id);
    // Traffic until the guard ends it (every response checked: none may fail).
    const until = Date.now() + 90_000;
    let ended = false;
    for (let round = 0; !ended && Date.now() < until; round++) {
      await batch(storedBatch(round));
      ended = (await getAliases(registry, 'churn')).rollout === undefined;
    }
    expect(ended).toBe(true);
    expect(Date.now()).toBeLessThan(Date.parse(rollout.bake_ends_at));
    expect(await getChampion(registry, 'churn')).toBe(champion);
    const end = (await history(registry, 'churn')).at(-1)!;
    expect(end).toMatchObject({ kind: 'rollout-end', from: bad, to: champion, rollout: { id: rollout.id } });
    expect(end.reason).toMatch(/rollout-(positive-rate-delta|score-shift)/);
    await expect
      .poll(async () => (await readNotifications(home, 50)).map((n) => n.subject).join('\n'), {
        timeout: 10_000,
      })
      .toMatch(new RegExp(`rollout of ${bad} ended by .*rollout-(positive-rate-delta|score-shift)`));
    await servedRollout(undefined);
  });

  it('ends a rollout whose challenger does not verify, the champion answering every request', async () => {
    await guardrailsQuiet();
    const champion = (await getChampion(registry, 'churn'))!;
    const tampered = await registerCopyOfChampion();
    // After registration: S3 no longer holds the bytes the registry vouches for.
    await registry.s3.send(
      new PutObjectCommand({
        Bucket: registry.bucket,
        Key: modelKeys('churn', tampered).model,
        Body: 'not a model',
      }),
    );
    const { rollout } = await json<Started>('models', 'shadow', tampered, '--bake', '10m');
    const until = Date.now() + 60_000;
    let ended = false;
    for (let round = 0; !ended && Date.now() < until; round++) {
      for (const answer of await batch(storedBatch(round))) expect(answer.model.version).toBe(champion);
      ended = (await getAliases(registry, 'churn')).rollout === undefined;
    }
    expect(ended).toBe(true);
    expect((await history(registry, 'churn')).at(-1)).toMatchObject({
      kind: 'rollout-end',
      rollout: { id: rollout.id },
      reason: expect.stringContaining('rollout-challenger-refused'),
    });
    await expect
      .poll(async () => (await readNotifications(home, 50)).map((n) => n.subject).join('\n'), {
        timeout: 10_000,
      })
      .toMatch(new RegExp(`rollout of ${tampered} ended by .*rollout-challenger-refused`));
  });
});
