/**
 * The reference FastAPI + XGBoost service (/work/shared/peers/seed-fastapi, read-only), run as its README
 * says, beside Keel in the same bench run: data from its gen_data.py and a model from its train.py, both
 * written to a temp directory (MODEL_PATH points the app at it), then
 *   /usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port P --workers 1 --loop asyncio --http h11 --no-access-log
 * Nothing is installed here: when its folder or its Python packages are missing, `seedAvailability` says
 * why and the bench skips it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SEED_DIR } from './bodies.ts';
import {
  freePort,
  type LatencySummary,
  removeDirectory,
  round,
  stopChild,
  trackChild,
  trackDirectory,
  waitForHttp,
} from './util.ts';

export const SEED_PYTHON = '/usr/bin/python3';

export type SeedAvailability =
  | { available: true; versions: Record<string, string> }
  | { available: false; reason: string };

export function seedAvailability(python = SEED_PYTHON): SeedAvailability {
  for (const file of ['app.py', 'train.py', 'gen_data.py', 'features.py', 'body.json']) {
    if (!existsSync(join(SEED_DIR, file)))
      return { available: false, reason: `${SEED_DIR}/${file} is missing` };
  }
  const probe = spawnSync(
    python,
    [
      '-c',
      'import json, fastapi, uvicorn, xgboost, sklearn, numpy, joblib, pydantic; print(json.dumps({m.__name__: m.__version__ for m in (fastapi, uvicorn, xgboost, sklearn, numpy, pydantic)}))',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (probe.error) return { available: false, reason: `${python} cannot run: ${probe.error.message}` };
  if (probe.status !== 0) {
    const last = probe.stderr.trim().split('\n').at(-1) ?? `exit ${probe.status}`;
    return {
      available: false,
      reason:
        `the reference service's Python packages are missing (${last}); install them with ` +
        '`apt-get install -y python3-fastapi python3-uvicorn python3-sklearn python3-xgboost`',
    };
  }
  return { available: true, versions: JSON.parse(probe.stdout.trim()) as Record<string, string> };
}

export interface SeedModel {
  directory: string;
  modelPath: string;
  rows: number;
  /** Whole gen_data.py and train.py processes (ms). */
  generateMs: number;
  trainProcessMs: number;
  /** train.py's own figures: fit seconds and held-out AUC (HistGB with OMP_NUM_THREADS=1). */
  xgboost: { fitS: number; auc: number };
  histgb: { fitS: number; auc: number };
}

function runPython(
  python: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): { stdout: string; ms: number } {
  const start = performance.now();
  const run = spawnSync(python, args, {
    cwd,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env },
  });
  const ms = performance.now() - start;
  if (run.error) throw run.error;
  if (run.status !== 0)
    throw new Error(`${args.join(' ')} failed (exit ${run.status}): ${run.stderr.trim()}`);
  return { stdout: run.stdout, ms };
}

/** Generates the reference service's CSV and trains its model with its own scripts, into a new temp dir. */
export async function prepareSeedModel(options: { rows: number; python?: string }): Promise<SeedModel> {
  const python = options.python ?? SEED_PYTHON;
  const directory = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-seed-')));
  try {
    const csv = join(directory, `churn_${options.rows}.csv`);
    const modelPath = join(directory, 'model.joblib');
    const generated = runPython(
      python,
      [join(SEED_DIR, 'gen_data.py'), '--rows', String(options.rows), '--seed', '42', '--out', csv],
      directory,
    );
    // One OpenMP thread for HistGB (measured by train.py, not served): on a busy 2-core machine its
    // spinning OpenMP threads took 19 s instead of 0.4 s for 10k rows. XGBoost is nthread=1 anyway.
    const trained = runPython(
      python,
      [join(SEED_DIR, 'train.py'), '--csv', csv, '--model-out', modelPath],
      directory,
      { OMP_NUM_THREADS: '1' },
    );
    const figures = (model: string) => {
      const line = trained.stdout.split('\n').find((l) => l.startsWith(`RESULT\t${model}\t`)) ?? '';
      const field = (name: string) => Number(new RegExp(`${name}=([0-9.]+)`).exec(line)?.[1] ?? Number.NaN);
      return { fitS: field('fit_s'), auc: field('auc') };
    };
    return {
      directory,
      modelPath,
      rows: options.rows,
      generateMs: round(generated.ms),
      trainProcessMs: round(trained.ms),
      xgboost: figures('xgboost'),
      histgb: figures('histgb'),
    };
  } catch (error) {
    removeDirectory(directory);
    throw error;
  }
}

export interface SeedServer {
  url: string;
  pid: number;
  /** Spawn to the first 200 on /health. */
  readyMs: number;
  /** The probability the reference service answers for its body.json. */
  probability: number;
  stop(): Promise<void>;
}

export async function startSeedServer(options: { modelPath: string; python?: string }): Promise<SeedServer> {
  const python = options.python ?? SEED_PYTHON;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = trackChild(
    spawn(
      python,
      [
        '-m',
        'uvicorn',
        'app:app',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
        '--loop',
        'asyncio',
        '--http',
        'h11',
        '--no-access-log',
        '--log-level',
        'warning',
      ],
      {
        cwd: SEED_DIR,
        env: { ...process.env, MODEL_PATH: options.modelPath, PYTHONDONTWRITEBYTECODE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  const tail: string[] = [];
  const remember = (chunk: Buffer) => {
    tail.push(chunk.toString());
    tail.splice(0, Math.max(0, tail.length - 20));
  };
  child.stdout!.on('data', remember);
  child.stderr!.on('data', remember);
  try {
    await waitForHttp(`${url}/health`, { timeoutMs: 30_000, child });
    const readyMs = performance.now() - started;
    const response = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: await readFile(join(SEED_DIR, 'body.json'), 'utf8'),
    });
    const body = (await response.json()) as { probability?: number };
    if (response.status !== 200 || typeof body.probability !== 'number') {
      throw new Error(`the reference service answered ${response.status} ${JSON.stringify(body)}`);
    }
    return {
      url,
      pid: child.pid!,
      readyMs: round(readyMs),
      probability: round(body.probability, 6),
      stop: () => stopChild(child),
    };
  } catch (error) {
    await stopChild(child);
    throw new Error(`the reference service did not start: ${(error as Error).message}\n${tail.join('')}`);
  }
}

const IN_PROCESS_SCRIPT = `
import json, os, sys, time
import joblib, numpy as np
from features import to_vector
model = joblib.load(os.environ["MODEL_PATH"])
row = json.load(open("body.json"))
n, warm = int(sys.argv[1]), int(sys.argv[2])
def once():
    return float(model.predict_proba(np.asarray([to_vector(row)], dtype=np.float64))[0, 1])
for _ in range(warm):
    once()
ts = np.empty(n)
for i in range(n):
    t0 = time.perf_counter_ns(); once(); ts[i] = time.perf_counter_ns() - t0
ts.sort()
q = lambda p: float(ts[min(n - 1, max(0, int(np.ceil(p * n)) - 1))]) / 1000
print(json.dumps({"calls": n, "p50Us": q(0.5), "p90Us": q(0.9), "p99Us": q(0.99),
                  "meanUs": float(ts.mean()) / 1000, "maxUs": float(ts[-1]) / 1000}))
`;

/** The reference service's in-process cost of one prediction (to_vector + predict_proba), timed as its
 * bench.sh does. */
export function seedInProcess(options: {
  modelPath: string;
  calls: number;
  warmup: number;
  python?: string;
}): LatencySummary {
  const run = spawnSync(
    options.python ?? SEED_PYTHON,
    ['-c', IN_PROCESS_SCRIPT, String(options.calls), String(options.warmup)],
    {
      cwd: SEED_DIR,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, MODEL_PATH: options.modelPath, PYTHONDONTWRITEBYTECODE: '1' },
    },
  );
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`reference service in-process timing failed: ${run.stderr.trim()}`);
  const r = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as LatencySummary;
  return {
    calls: r.calls,
    p50Us: round(r.p50Us),
    p90Us: round(r.p90Us),
    p99Us: round(r.p99Us),
    meanUs: round(r.meanUs),
    maxUs: round(r.maxUs),
  };
}
