/**
 * The newcomer's path, as the README's quick start runs it: a fresh `git clone` of this repository (its
 * committed HEAD) → `npm ci` → `npm start` (keel up) → the first `npx keel predict` answered. Timed from
 * the clone; the npm cache is whatever this machine has (warm after the bench's own install).
 *
 *   npx tsx bench/newcomer.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '#lib/paths.ts';
import { removeDirectory, round, stopChild, trackChild, trackDirectory } from './util.ts';

export interface NewcomerResult {
  readonly commit: string;
  readonly cloneS: number;
  readonly npmCiS: number;
  /** `npm start` → "Keel is running" (the bootstrap's generate, ETL and retrain included). */
  readonly startReadyS: number;
  /** `npx keel predict c-000042` → its answer. */
  readonly firstPredictionS: number;
  /** Clone → first prediction answered. */
  readonly totalS: number;
}

const READY = /Keel is running/;

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 600_000 });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`,
    );
  }
  return result.stdout;
}

export async function runNewcomerBench(): Promise<NewcomerResult> {
  const directory = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-newcomer-')));
  const clone = join(directory, 'keel');
  // Ports the system picks (the README's answer to a taken port), so a running keel up does not collide.
  const env = {
    ...process.env,
    KEEL_HOME: join(clone, '.keel'),
    KEEL_PORT: '0',
    KEEL_S3_PORT: '0',
    KEEL_DYNAMODB_PORT: '0',
  };
  try {
    const t0 = performance.now();
    const since = () => (performance.now() - t0) / 1000;
    run('git', ['clone', '-q', REPO_ROOT, clone], directory);
    const cloneS = since();
    run('npm', ['ci', '--no-audit', '--no-fund'], clone);
    const npmCiS = since();
    const keel = trackChild(spawn('npm', ['start'], { cwd: clone, env, detached: true }));
    try {
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(
          () => reject(new Error(`npm start not ready after 10 min:\n${output}`)),
          600_000,
        );
        const onData = (chunk: Buffer) => {
          output += chunk;
          if (READY.test(output)) {
            clearTimeout(timer);
            resolve();
          }
        };
        keel.stdout!.on('data', onData);
        keel.stderr!.on('data', onData);
        keel.once('exit', (code) =>
          reject(new Error(`npm start exited (${code}) before it was ready:\n${output}`)),
        );
      });
      const readyS = since();
      const answer = run('npx', ['keel', 'predict', 'c-000042'], clone, env);
      if (!/c-000042: will (stay|churn)/.test(answer)) throw new Error(`unexpected answer: ${answer}`);
      const totalS = since();
      return {
        commit: run('git', ['rev-parse', '--short', 'HEAD'], clone).trim(),
        cloneS: round(cloneS),
        npmCiS: round(npmCiS - cloneS),
        startReadyS: round(readyS - npmCiS),
        firstPredictionS: round(totalS - readyS),
        totalS: round(totalS),
      };
    } finally {
      // npm start's process group: npm, keel up and what keel up started.
      if (keel.pid !== undefined && keel.exitCode === null) process.kill(-keel.pid, 'SIGINT');
      await stopChild(keel);
    }
  } finally {
    removeDirectory(directory);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await runNewcomerBench(), null, 2));
  process.exit(0);
}
