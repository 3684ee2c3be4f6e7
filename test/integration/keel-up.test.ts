import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import { runKeel, startKeelUp } from '../support/cli.ts';
import { processTree, untilGone } from '../support/processes.ts';

const home = await mkdtemp(join(tmpdir(), 'keel-up-'));
// Port 0: the servers pick free ports and publish them in runtime.json for the other commands.
const env = { KEEL_HOME: home, KEEL_S3_PORT: '0', KEEL_DYNAMODB_PORT: '0', KEEL_BOOTSTRAP_ROWS: '2000' };

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('keel up and commands from another terminal', () => {
  it('says clearly when nothing is running', async () => {
    const result = await runKeel(['data', 'generate', '--rows', '10'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('nothing is running');
    expect(result.stderr).toContain('npm start');
  });

  it('generates data into the running platform, stops cleanly and keeps the state across a restart', async () => {
    const first = await startKeelUp(env);
    expect(first.output()).toContain('127.0.0.1');
    expect(existsSync(join(home, 'runtime.json'))).toBe(true);

    const second = await runKeel(['up'], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('already running');

    const generated = await runKeel(['--json', 'data', 'generate', '--rows', '5000', '--seed', '9'], env);
    expect(generated.stderr).toBe('');
    expect(generated.code).toBe(0);
    const summary = JSON.parse(generated.stdout) as { key: string; rows: number; churnRate: number };
    expect(summary.rows).toBe(5000);
    expect(summary.churnRate).toBeGreaterThan(0.15);

    // Ctrl-C stops every process of the platform (storage, the Lambda-like environments), not only keel up.
    const tree = processTree(first.child.pid!);
    expect(tree.length).toBeGreaterThanOrEqual(3);
    expect(await first.stop()).toBe(0);
    expect(await untilGone(tree)).toEqual([]);
    expect(first.output()).toContain('state kept');
    expect(existsSync(join(home, 'runtime.json'))).toBe(false);

    const restarted = await startKeelUp(env);
    try {
      expect(restarted.output()).toContain('resources: already present');
      const again = await runKeel(
        ['--json', 'data', 'generate', '--rows', '10', '--drift', 'income=1.9'],
        env,
      );
      expect(again.code).toBe(0);
      const driftKey = (JSON.parse(again.stdout) as { key: string }).key;
      expect(driftKey).toContain('drift-income-1.9');
      // The object written before the restart is still served (via S3, not the file system).
      const runtime = (await readRuntime(home))!;
      const s3 = createS3Client(runtimeTarget(runtime));
      const head = await s3.send(new HeadObjectCommand({ Bucket: runtime.names.raw!, Key: summary.key }));
      expect(head.ContentLength).toBeGreaterThan(5000 * 50);
      s3.destroy();
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
    // Two starts, each initializing Lambda-like environments (a cold start apiece): minutes on a busy CI machine.
  }, 180_000);

  it('takes the local stage configuration from KEEL_CONFIG, refusing a bad one before starting anything', async () => {
    const file = join(home, 'stage.json');
    await writeFile(file, JSON.stringify({ retrain: { rollout: { mode: 'canary', percent: 70 } } }));
    const result = await runKeel(['up'], { ...env, KEEL_CONFIG: file });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: retrain.rollout.percent: must be from 1 to 50 (got 70)`);
    const missing = await runKeel(['up'], { ...env, KEEL_CONFIG: join(home, 'none.json') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('none.json: file not found');
    expect(existsSync(join(home, 'runtime.json'))).toBe(false);
  });

  it('rejects bad flags with a message naming the flag', async () => {
    const result = await runKeel(['data', 'generate', '--rows', 'ten'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--rows must be an integer');
    const drift = await runKeel(['data', 'generate', '--rows', '1', '--drift', 'plan=2'], env);
    expect(drift.code).not.toBe(0);
    expect(drift.stderr).toContain('"plan" is not a numeric field');
  });
});
