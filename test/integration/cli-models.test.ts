import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { platformContext } from '#local/platform-context.ts';
import { readRuntime } from '#local/running-platform.ts';
import { generateRecords } from '#shared/data/generate.ts';
import {
  CSV_HEADER,
  FEATURE_COUNT,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  featureSetOf,
  toCsvLine,
} from '#shared/features/index.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { STORE_FIELDS_KEY, storeFieldsSchema } from '#shared/online-store/fields.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';
import { registerModel } from '#shared/registry/registry.ts';
import { keelUpEnv, type RunningKeel, runKeel, startKeelUp } from '../support/cli.ts';
import { externalMetadata, externalOnnx } from '../support/external-model.ts';
import { LATER_FIELD, laterFieldDefinition } from '../support/feature-definitions.ts';

const home = await mkdtemp(join(tmpdir(), 'keel-models-'));
const env = keelUpEnv(home, { KEEL_BOOTSTRAP_ROWS: '3000' });
let keel: RunningKeel;

beforeAll(async () => {
  keel = await startKeelUp(env);
});
afterAll(async () => {
  await keel?.stop();
  await rm(home, { recursive: true, force: true });
});

async function json<T>(...args: string[]): Promise<T> {
  const result = await runKeel(['--json', ...args], env);
  if (result.code !== 0) throw new Error(`keel ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** The API answers with `version` (once its instances have followed the promotion), a probability. */
async function expectServed(version: string): Promise<void> {
  let served: { model: { version: string }; probability: number } | undefined;
  for (let attempt = 0; attempt < 20 && served?.model.version !== version; attempt++) {
    served = await json('predict', 'c-000042');
  }
  expect(served?.model.version).toBe(version);
  expect(served!.probability).toBeGreaterThan(0);
  expect(served!.probability).toBeLessThan(1);
}

// Each pipeline command synthesizes the stack and runs a state machine: minutes on a loaded machine.
describe('keel train and keel models against a running platform', { timeout: 240_000 }, () => {
  it('bootstrapped v1 as champion on the empty state', async () => {
    expect(keel.output()).toMatch(/bootstrap: empty registry/);
    const list = await json<{ champion: string; versions: { version: string }[] }>('models', 'list');
    expect(list.champion).toBe('v1');
    expect(list.versions.map((v) => v.version)).toEqual(['v1']);
  });

  it('trains, registers, promotes, rolls back and keeps the history', async () => {
    await json('data', 'generate', '--rows', '3000', '--seed', '5');
    await json('etl', 'run');
    type Retrain = {
      candidate: { version: string; championAuc: number; promote: boolean };
      deployment?: unknown;
    };
    const v2 = await json<Retrain>('train');
    expect(v2.candidate).toMatchObject({ version: 'v2', promote: false });
    expect(v2.candidate.championAuc).toBeGreaterThan(0.6);
    expect(v2.deployment).toBeUndefined();
    // The row cap: a stratified sample of 2,000 of the 3,000 customers, recorded with the version.
    const v3 = await json<Retrain>('train', '--promote', '--max-rows', '2000');
    expect(v3.deployment).toMatchObject({ from: 'v1', to: 'v3' });
    const sampled = await json<{ training: { sample: unknown } }>('models', 'show', 'v3');
    expect(sampled.training.sample).toEqual({ rows_seen: 3000, rows_used: 2000, seed: 42, cap: 2000 });

    expect(await json('models', 'promote', 'v2', '--reason', 'canary')).toMatchObject({
      from: 'v3',
      to: 'v2',
    });
    // The running API follows the alias by itself (refresh every 2 s locally).
    let served = '';
    for (let attempt = 0; attempt < 20 && served !== 'v2'; attempt++) {
      served = (await json<{ model: { version: string } }>('predict', 'c-000042')).model.version;
    }
    expect(served).toBe('v2');
    expect(await json('models', 'rollback', '--reason', 'canary failed')).toMatchObject({
      from: 'v2',
      to: 'v3',
    });
    expect(await json('models', 'rollback')).toMatchObject({ from: 'v3', to: 'v1', kind: 'rollback' });

    const noMore = await runKeel(['models', 'rollback'], env);
    expect(noMore.code).toBe(1);
    expect(noMore.stderr).toMatch(/no earlier champion to roll back to/);

    const { history } = await json<{ history: { from: string | null; to: string; reason: string }[] }>(
      'models',
      'history',
    );
    expect(history.map((d) => `${d.from ?? '-'}>${d.to}`)).toEqual([
      '->v1',
      'v1>v3',
      'v3>v2',
      'v2>v3',
      'v3>v1',
    ]);
    expect(history[2]!.reason).toBe('canary');

    const shown = await json<{ version: string; metrics: { auc: number }; parent: string }>(
      'models',
      'show',
      'v3',
    );
    expect(shown).toMatchObject({ version: 'v3', parent: 'v1' });
  });

  it('explains unknown versions, already-champion and versions whose features nothing can compute', async () => {
    const unknown = await runKeel(['models', 'show', 'v99'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('has no version v99');
    const same = await runKeel(['models', 'promote', 'v1'], env);
    expect(same.stderr).toContain('already the champion');

    const ctx = platformContext((await readRuntime(home))!);
    const foreign = await registerModel(ctx.registry, {
      name: 'churn',
      onnx: new Uint8Array([1, 2, 3]),
      metadata: {
        algorithm: 'external',
        dataset: { uri: 's3://elsewhere', rows: 1 },
        feature_set: { version: '0.1.0', fingerprint: `sha256:${'a'.repeat(64)}`, names: ['x'] },
        metrics: { auc: 0.9, logloss: 0.3, accuracy: 0.9 },
        threshold: 0.5,
        training: { rows: 1, params: {}, duration_ms: 1 },
        parent: null,
      },
    });
    ctx.close();
    // Registered without its definition, of a feature set this code does not compute: nothing can
    // serve it, forced or not.
    for (const force of [[], ['--force', '--reason', 'audit test']]) {
      const refused = await runKeel(['models', 'promote', foreign.version, ...force], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(
          `churn ${foreign.version} was registered without its feature definition, and its feature set sha256:a+ is not`,
        ),
      );
    }
    expect((await json<{ champion: string }>('models', 'list')).champion).toBe('v1');
  });

  it('registers an externally trained ONNX model, refusing bad ones, and serves it once promoted', async () => {
    const file = (name: string, content: Uint8Array | string) => {
      const path = join(home, name);
      return writeFile(path, content).then(() => path);
    };
    const metadata = await file('logreg.json', JSON.stringify(externalMetadata()));
    const narrow = await runKeel(
      [
        'models',
        'register',
        '--onnx',
        await file('narrow.onnx', externalOnnx({ featureCount: FEATURE_COUNT - 3 })),
        '--metadata',
        metadata,
      ],
      env,
    );
    expect(narrow.code).toBe(1);
    expect(narrow.stderr).toContain(`takes ${FEATURE_COUNT - 3} features, expected ${FEATURE_COUNT}`);
    const onnx = await file('logreg.onnx', externalOnnx());
    const bad = await runKeel(
      [
        'models',
        'register',
        '--onnx',
        onnx,
        '--metadata',
        await file('bad.json', JSON.stringify(externalMetadata({ threshold: 'half' }))),
      ],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/metadata file is invalid: threshold: /);

    type Registered = {
      metadata: {
        version: string;
        parent: string;
        external: { changes: string[] };
        feature_set: { fingerprint: string; definition: unknown };
      };
      checks: { scoredRows: number; auc: number };
      deployment: { to: string };
    };
    const registered = await json<Registered>(
      'models',
      'register',
      '--onnx',
      onnx,
      '--metadata',
      metadata,
      '--promote',
    );
    const version = registered.metadata.version;
    expect(registered.deployment.to).toBe(version);
    expect(registered.checks.scoredRows).toBeGreaterThan(1000);
    expect(registered.checks.auc).toBeGreaterThan(0.6);
    // Stored with the definition it was checked against: served with it whatever later code defines.
    expect(registered.metadata.feature_set).toMatchObject({
      fingerprint: FEATURE_SET.fingerprint,
      definition: JSON.parse(JSON.stringify(FEATURE_SET.definition)),
    });
    expect(registered.metadata.external.changes).toEqual([
      "ZipMap output 'output_probability' replaced by its probability tensor",
    ]);
    await expectServed(version);
  });

  it('rolls versions out (canary, shadow), shows, aborts and promotes them, and logs every step', async () => {
    // Champion v5 (the external model above); v1–v3 were trained on the current feature set. Bad
    // requests are refused before anything is read, so they run beside the good one.
    type Rollout = { id: string; version: string; bake_ends_at: string };
    const [zero, none, badBake, longBake, started] = await Promise.all([
      runKeel(['models', 'canary', 'v3', '--percent', '0'], env),
      runKeel(['models', 'canary', 'v3'], env),
      runKeel(['models', 'canary', 'v3', '--percent', '20', '--bake', '5x'], env),
      runKeel(['models', 'shadow', 'v3', '--bake', '31d'], env),
      runKeel(['--json', 'models', 'canary', 'v3', '--percent', '20', '--reason', 'try v3'], env),
    ]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain(
      '--percent: a canary serves 1–50 percent of customers (a whole number), got 0',
    );
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("required option '--percent <n>' not specified");
    expect(badBake.code).toBe(1);
    expect(badBake.stderr).toContain('--bake "5x" is not a duration: write it as 90s, 30m, 1h, 7d or 1h30m');
    expect(longBake.stderr).toContain('--bake: the bake period must be from 1 s to 30 days, got 2678400 s');

    expect(started.stderr).toBe('');
    const canary = JSON.parse(started.stdout) as { rollout: Rollout; deployment: unknown };
    const { id } = canary.rollout;
    expect(canary.rollout).toMatchObject({
      version: 'v3',
      champion: 'v5',
      mode: 'canary',
      percent: 20,
      bake_seconds: 1800,
      reason: 'try v3',
    });
    expect(canary.deployment).toMatchObject({ kind: 'rollout-start', from: 'v5', to: 'v3', rollout: { id } });

    const [status, statusJson, second, sameChampion, list, listJson] = await Promise.all([
      runKeel(['models', 'rollout'], env),
      json('models', 'rollout'),
      runKeel(['models', 'shadow', 'v2'], env),
      runKeel(['models', 'promote', 'v5'], env),
      runKeel(['models', 'list'], env),
      json<{ rollout: unknown }>('models', 'list'),
    ]);
    expect(status.stdout).toContain(`churn: the canary of v3 (20%) (${id}) against champion v5`);
    expect(status.stdout).toMatch(/\n {2}percent {4}20%\n/);
    expect(status.stdout).toContain(`bake ends  ${canary.rollout.bake_ends_at} (`);
    expect(status.stdout).toMatch(/ \((29m\d+s|30m) left\)\n/);
    expect(status.stdout).toMatch(/\n {2}reason {5}try v3\n {2}actor {6}\S+@cli\n {2}rollout {4}r-/);
    expect(statusJson).toEqual({
      name: 'churn',
      rollout: canary.rollout,
      last: null,
      // Nothing asked the API yet: no requests; every guardrail listed with its state.
      figures: {
        requests: { champion: 0, challenger: 0 },
        guardrails: ROLLOUT_GUARDRAIL_IDS.map((id) => expect.objectContaining({ id })),
        source: expect.any(String),
      },
    });
    expect(status.stdout).toContain('  requests   champion 0, challenger 0 (since the start)');
    expect(status.stdout).toMatch(/\n {4}rollout-challenger-5xx-rate +\S+/);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('the canary of v3 (20%) is already running: one rollout at a time');
    // A promotion that cannot happen leaves the rollout running.
    expect(sameChampion.stderr).toContain(
      'v5 is already the champion of churn; the canary of v3 (20%) keeps running',
    );
    const [header, ...rows] = list.stdout.split('\n');
    const row = (version: string) => rows.find((line) => line.startsWith(`${version} `))!;
    expect(row('v3').indexOf('canary 20% ')).toBe(header!.indexOf('rollout'));
    expect(row('v5').indexOf('*')).toBe(header!.indexOf('champion'));
    expect(listJson.rollout).toEqual(canary.rollout);

    const abort = await runKeel(['models', 'rollout', 'abort'], env);
    expect(abort.stdout).toContain(
      `ended the canary of v3 (20%) (${id}) without promoting it: v5 answers every customer`,
    );
    const [again, after, afterJson] = await Promise.all([
      runKeel(['models', 'rollout', 'abort'], env),
      runKeel(['models', 'rollout'], env),
      json<{ rollout: unknown; last: unknown }>('models', 'rollout'),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no rollout of churn is running, so there is nothing to abort');
    expect(after.stdout).toContain('churn: no rollout running (champion v5)');
    expect(after.stdout).toMatch(
      new RegExp(
        `last: the canary of v3 \\(20%\\) \\(${id}\\) ended at \\S+ by \\S+@cli: aborted by hand \\(v5 kept 100%\\)`,
      ),
    );
    expect(afterJson).toMatchObject({
      rollout: null,
      last: { kind: 'rollout-end', from: 'v3', to: 'v5', reason: 'aborted by hand', rollout: { id } },
    });

    // Promoting another version ends the running rollout first, and says so.
    const shadow = await runKeel(['models', 'shadow', 'v2', '--bake', '90s'], env);
    const shadowId = /started the shadow of v2 \((r-[0-9a-f]{12})\) beside champion v5\n/.exec(
      shadow.stdout,
    )?.[1];
    expect(shadow.stdout, shadow.stderr).toContain(
      '  now: v2 scores every request beside v5, which alone answers',
    );
    expect(shadow.stdout).toMatch(/ {2}decision due \S+ \((1m30s|1m2\ds|1m1\ds) left\)/);
    const promoted = await runKeel(['models', 'promote', 'v3', '--reason', 'v3 after all'], env);
    expect(promoted.stdout).toBe(
      `champion of churn: v5 → v3\n  ended the shadow of v2 (${shadowId}) first: ended by the promotion of v3\n`,
    );

    // Promoting the challenger itself ends its rollout in the same move.
    const challenger = await json<{ rollout: Rollout }>('models', 'canary', 'v2', '--percent', '10');
    const decided = await json('models', 'promote', 'v2', '--reason', 'canary held');
    expect(decided).toMatchObject({
      kind: 'promote',
      from: 'v3',
      to: 'v2',
      rollout: { id: challenger.rollout.id, mode: 'canary', percent: 10 },
      endedRollout: null,
    });
    expect(await json('models', 'rollout')).toMatchObject({
      rollout: null,
      last: { kind: 'promote', to: 'v2' },
    });

    // A rollback likewise ends a running rollout first.
    const lastShadow = await json<{ rollout: Rollout }>('models', 'shadow', 'v5');
    const rolledBack = await json('models', 'rollback', '--reason', 'v2 is slow');
    expect(rolledBack).toMatchObject({
      kind: 'rollback',
      from: 'v2',
      to: 'v3',
      endedRollout: {
        kind: 'rollout-end',
        reason: 'ended by the rollback to v3',
        rollout: { id: lastShadow.rollout.id },
      },
    });

    const [historyText, { history }] = await Promise.all([
      runKeel(['models', 'history'], env),
      json<{ history: { kind: string; from: string; to: string; rollout?: { id: string } }[] }>(
        'models',
        'history',
      ),
    ]);
    expect(history.slice(-10).map((d) => `${d.kind} ${d.from}>${d.to} ${d.rollout?.id ?? '-'}`)).toEqual([
      `rollout-start v5>v3 ${id}`,
      `rollout-end v3>v5 ${id}`,
      `rollout-start v5>v2 ${shadowId}`,
      `rollout-end v2>v5 ${shadowId}`,
      'promote v5>v3 -',
      `rollout-start v3>v2 ${challenger.rollout.id}`,
      `promote v3>v2 ${challenger.rollout.id}`,
      `rollout-start v2>v5 ${lastShadow.rollout.id}`,
      `rollout-end v5>v2 ${lastShadow.rollout.id}`,
      'rollback v2>v3 -',
    ]);
    const lines = historyText.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(history.length);
    // One column for each field, whatever the kind.
    expect(new Set(lines.map((line) => line.indexOf(' by ')))).toHaveProperty('size', 1);
    expect(historyText.stdout).toMatch(
      new RegExp(`rollout-start +v5 → v3 +canary 20% ${id} +by \\S+: try v3\n`),
    );
    expect(historyText.stdout).toMatch(
      new RegExp(`rollout-end +v3 → v5 +canary 20% ${id} +by \\S+: aborted by hand\n`),
    );
    expect(historyText.stdout).toMatch(
      new RegExp(`promote +v3 → v2 +canary 10% ${challenger.rollout.id} +by \\S+: canary held\n`),
    );
    expect(historyText.stdout).toMatch(/promote +v5 → v3 {2,}by \S+: v3 after all\n/);
  });

  it('refuses to promote a version reading a raw field the store lacks, naming it, until the store has it', async () => {
    const ctx = platformContext((await readRuntime(home))!);
    const later = featureSetOf(laterFieldDefinition({ kind: 'required' }));
    const { version } = await registerModel(ctx.registry, {
      name: 'churn',
      onnx: new Uint8Array([1, 2, 3]),
      metadata: {
        algorithm: 'later',
        dataset: { uri: 's3://later', rows: 1 },
        feature_set: featureSetMetadata(later),
        metrics: { auc: 0.9, logloss: 0.3, accuracy: 0.9 },
        threshold: 0.5,
        training: { rows: 1, params: {}, duration_ms: 1 },
        parent: null,
      },
    });
    const champion = (await json<{ champion: string }>('models', 'list')).champion;
    const refused = await runKeel(['models', 'promote', version], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `churn ${version} requires the raw field ${LATER_FIELD}, which the online store does not have yet: ` +
        'load data with it (`keel etl run`) before promoting',
    );
    const noReason = await runKeel(['models', 'promote', version, '--force'], env);
    expect(noReason.stderr).toContain('needs a reason');
    expect((await json<{ champion: string }>('models', 'list')).champion).toBe(champion);

    // Once the store's manifest says a load brought the field, the same promotion goes through.
    const at = new Date().toISOString();
    const manifest = storeFieldsSchema.parse({
      fields: Object.fromEntries(
        [...FEATURE_FIELD_NAMES, LATER_FIELD].map((field) => [field, { firstLoaded: at, lastLoaded: at }]),
      ),
    });
    await ctx.clients.s3.send(
      new PutObjectCommand({
        Bucket: ctx.names.features,
        Key: STORE_FIELDS_KEY,
        Body: JSON.stringify(manifest),
      }),
    );
    ctx.close();
    expect(await json('models', 'promote', version, '--reason', 'logins loaded')).toMatchObject({
      from: champion,
      to: version,
    });
  });

  it('imports a local CSV with its header checked first, and a failed ETL says where, what and why', async () => {
    const rows = [...generateRecords({ rows: 200, seed: 9, asOf: new Date() })].map(toCsvLine);
    const good = join(home, 'november.csv');
    await writeFile(good, `${[CSV_HEADER, ...rows].join('\n')}\n`);
    const imported = await json<{ key: string; rows: number }>('data', 'import', good);
    expect(imported).toMatchObject({
      key: expect.stringMatching(/^raw\/\d{8}T\d{6}Z-november\.csv$/),
      rows: 200,
    });
    expect(await json('etl', 'run', '--input', imported.key)).toMatchObject({ rowsRead: 200, valid: 200 });

    const renamedText = `${[CSV_HEADER.replace('income', 'annual_income'), ...rows].join('\n')}\n`;
    const renamed = join(home, 'renamed.csv');
    await writeFile(renamed, renamedText);
    const refused = await runKeel(['data', 'import', renamed], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'missing column income (renamed to annual_income?); unexpected column annual_income',
    );

    // Dropped in by an upstream system, past the import's check: the ETL stops at the header.
    const ctx = platformContext((await readRuntime(home))!);
    await ctx.clients.s3.send(
      new PutObjectCommand({ Bucket: ctx.names.raw, Key: 'raw/upstream-renamed.csv', Body: renamedText }),
    );
    ctx.close();
    const failed = await runKeel(['etl', 'run', '--input', 'raw/upstream-renamed.csv'], env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /the etl execution failed in state "Plan chunks": SchemaChangeError: s3:\/\/[^ ]+\/raw\/upstream-renamed\.csv: the header does not match the raw customer record: missing column income \(renamed to annual_income\?\)/,
    );
    expect(failed.stderr).toContain('notifications.jsonl');
  });

  it('registers an XGBoost model file directly, refusing one of other features, and serves it once promoted', async () => {
    const fixture = new URL('../fixtures/xgboost/churn.json', import.meta.url);
    const document = JSON.parse(await readFile(fixture, 'utf8'));
    const { algorithm: _, ...metadataFile } = externalMetadata();
    const metadata = join(home, 'xgboost.metadata.json');
    await writeFile(metadata, JSON.stringify(metadataFile));

    const both = await runKeel(
      ['models', 'register', '--onnx', 'a.onnx', '--xgboost', 'b.json', '--metadata', metadata],
      env,
    );
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('give either --onnx FILE or --xgboost FILE, not both');
    document.learner.feature_names[1] = 'salary';
    const renamed = join(home, 'renamed-xgboost.json');
    await writeFile(renamed, JSON.stringify(document));
    const refused = await runKeel(['models', 'register', '--xgboost', renamed, '--metadata', metadata], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /learner\.feature_names differ .* at position 1: the model has 'salary', the feature set 'income'/,
    );

    type Registered = {
      metadata: {
        version: string;
        algorithm: string;
        training: { params: { parity_max_diff: number; source: string } };
        external: { file: string; changes: string[] };
      };
      checks: { inputName: string; scoredRows: number; auc: number };
      deployment: { to: string };
    };
    const path = fileURLToPath(fixture);
    const registered = await json<Registered>(
      'models',
      'register',
      '--xgboost',
      path,
      '--metadata',
      metadata,
      '--promote',
    );
    const { version } = registered.metadata;
    expect(registered.deployment.to).toBe(version);
    expect(registered.metadata).toMatchObject({ algorithm: 'xgboost', external: { file: path } });
    expect(registered.metadata.training.params.source).toBe('xgboost');
    expect(registered.metadata.training.params.parity_max_diff).toBeLessThanOrEqual(1e-6);
    expect(registered.metadata.external.changes).toEqual([
      expect.stringMatching(/^converted from XGBoost 1\.7\.4 \(20 trees/),
    ]);
    expect(registered.checks.auc).toBeGreaterThan(0.6);
    await expectServed(version);
  });
});
