import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { platformContext } from '#local/platform-context.ts';
import { readRuntime } from '#local/running-platform.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { CSV_HEADER, FEATURE_COUNT, toCsvLine } from '#shared/features/index.ts';
import { registerModel } from '#shared/registry/registry.ts';
import { keelUpEnv, type RunningKeel, runKeel, startKeelUp } from '../support/cli.ts';
import { externalMetadata, externalOnnx } from '../support/external-model.ts';

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
    const v3 = await json<Retrain>('train', '--promote');
    expect(v3.deployment).toMatchObject({ from: 'v1', to: 'v3' });

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

  it('explains unknown versions, already-champion and mismatched feature sets', async () => {
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
    const refused = await runKeel(['models', 'promote', foreign.version], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/trained on feature set sha256:a+ but this deployment computes/);
    const noReason = await runKeel(['models', 'promote', foreign.version, '--force'], env);
    expect(noReason.stderr).toContain('needs a reason');
    const forced = await json('models', 'promote', foreign.version, '--force', '--reason', 'audit test');
    expect(forced).toMatchObject({ to: foreign.version, reason: 'audit test' });
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
      metadata: { version: string; parent: string; external: { changes: string[] } };
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
    expect(registered.metadata.external.changes).toEqual([
      "ZipMap output 'output_probability' replaced by its probability tensor",
    ]);
    let served: { model: { version: string }; probability: number } | undefined;
    for (let attempt = 0; attempt < 20 && served?.model.version !== version; attempt++) {
      served = await json('predict', 'c-000042');
    }
    expect(served?.model.version).toBe(version);
    expect(served!.probability).toBeGreaterThan(0);
    expect(served!.probability).toBeLessThan(1);
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
});
