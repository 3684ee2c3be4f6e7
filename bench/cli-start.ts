/**
 * The command line's start, as users run it: `node bin/keel.mjs` on the build `npm ci` makes (built
 * afresh here), spawn → exit, each command run several times in a row:
 * - `keel --help`;
 * - `keel --json models list` with nothing running (it stops at once) and against a running platform
 *   (the bench's Keel fixture, found through a runtime.json as `keel up` writes one);
 * - beside them Node's own start (`node -e 0`), `npx keel --help` (npm's own start comes on top) and
 *   `keel --help` from the sources through tsx, as `keel` starts once a source is newer than the build.
 *
 *   npx tsx bench/cli-start.ts      (no platform: the models list against one is left out)
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '#lib/paths.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { buildCli } from '../scripts/build-cli.ts';
import { publishRuntime } from '../test/support/aws.ts';
import { removeDirectory, round, trackDirectory } from './util.ts';

/** Wall time of a command's runs (ms, spawn → exit). */
export interface StartTiming {
  readonly medianMs: number;
  readonly minMs: number;
}

export interface CliStartResult {
  readonly runs: number;
  /** `node -e 0`: what any Node.js command line costs here. */
  readonly node: StartTiming;
  readonly help: StartTiming;
  readonly modelsListNothingRunning: StartTiming;
  /** Against a running platform; null when none was given. */
  readonly modelsList: StartTiming | null;
  readonly npxHelp: StartTiming;
  /** `node --import tsx bin/keel.ts --help`: the sources transpiled at the start. */
  readonly helpFromSources: StartTiming;
}

/** A running platform for `keel models list` to find: its storage, and the model in its registry. */
export interface CliStartPlatform {
  readonly target: AwsTarget;
  readonly names: ResourceNames;
}

const KEEL = join(REPO_ROOT, 'bin', 'keel.mjs');

/** Runs a command to its end; its wall time (ms). A run that does not end with `expectCode` throws. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv, expectCode: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      if (code === expectCode) resolve(ms);
      else
        reject(new Error(`${command} ${args.join(' ')} exited ${code} (expected ${expectCode}): ${stderr}`));
    });
  });
}

async function timing(runs: number, run: () => Promise<number>): Promise<StartTiming> {
  const times: number[] = [];
  // One run first that is not counted: the file cache warm, as a user's second command finds it.
  await run();
  for (let i = 0; i < runs; i++) times.push(await run());
  times.sort((a, b) => a - b);
  return { medianMs: round(times[Math.floor(times.length / 2)]!, 0), minMs: round(times[0]!, 0) };
}

export async function runCliStartBench(options: {
  runs: number;
  platform?: CliStartPlatform;
}): Promise<CliStartResult> {
  await buildCli();
  const directory = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-cli-')));
  try {
    const idle = { ...process.env, KEEL_HOME: join(directory, 'idle') };
    const node =
      (args: string[], env = idle, code = 0) =>
      () =>
        timed(process.execPath, args, env, code);
    let modelsList: StartTiming | null = null;
    if (options.platform) {
      const home = join(directory, 'running');
      await mkdir(home);
      // With this process's pid: it serves the platform.
      await publishRuntime({ ...options.platform, home });
      modelsList = await timing(
        options.runs,
        node([KEEL, '--json', 'models', 'list'], { ...process.env, KEEL_HOME: home }),
      );
    }
    return {
      runs: options.runs,
      node: await timing(options.runs, node(['-e', '0'])),
      help: await timing(options.runs, node([KEEL, '--help'])),
      modelsListNothingRunning: await timing(options.runs, node([KEEL, '--json', 'models', 'list'], idle, 1)),
      modelsList,
      npxHelp: await timing(options.runs, () => timed('npx', ['keel', '--help'], idle, 0)),
      helpFromSources: await timing(
        options.runs,
        node(['--import', 'tsx', join(REPO_ROOT, 'bin', 'keel.ts'), '--help']),
      ),
    };
  } finally {
    removeDirectory(directory);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await runCliStartBench({ runs: 5 }), null, 2));
}
