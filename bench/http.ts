/**
 * HTTP load against a server on 127.0.0.1 with a standard load generator: wrk (like the bench.sh of the
 * reference FastAPI service, one thread, its own process, µs latency) when installed, else autocannon
 * (a dev dependency; runs in this process and its latency histogram has 1 ms resolution). One POST body
 * per run, or one customer drawn at random per request ({@link RandomCustomers}); a warm-up, then each
 * concurrency level for a fixed duration.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSnapshot, otherCpuShare, removeDirectory, round, trackChild, trackDirectory } from './util.ts';

export type LoadToolName = 'wrk' | 'autocannon';

export interface LoadTool {
  name: LoadToolName;
  version: string;
  /** How the numbers were taken, for the report. */
  notes: string;
}

export interface LoadLevel {
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Responses with a status other than 2xx (wrk: status >= 400). */
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Share of the machine's CPU (all cores) that processes outside this bench used meanwhile. */
  otherCpuShare: number | null;
}

export interface LoadRun {
  method: string;
  url: string;
  body: string | null;
  /** Present when each request named a random stored customer instead of sending `body`. */
  randomCustomers?: RandomCustomers;
  warmupS: number;
  /** The warm-up's own figures (16 connections), not one of the levels. */
  warmup?: LoadLevel;
  levels: LoadLevel[];
}

const WRK_SCRIPT = fileURLToPath(new URL('./wrk.lua', import.meta.url));

function wrkVersion(): string | undefined {
  const run = spawnSync('wrk', ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (run.error) return undefined;
  const text = `${run.stdout}${run.stderr}`;
  return /wrk (\S+)/.exec(text)?.[1] ?? 'unknown';
}

/** wrk when it is on PATH (or asked for), else autocannon. */
export function detectLoadTool(preferred?: LoadToolName): LoadTool {
  const wrk = wrkVersion();
  if (preferred === 'wrk' && !wrk) throw new Error('--tool wrk: wrk is not installed (apt-get install wrk)');
  if (wrk && preferred !== 'autocannon') {
    return {
      name: 'wrk',
      version: wrk,
      notes: 'wrk -t1 (one thread, own process) on the same cores as the server; non2xx = status >= 400',
    };
  }
  return {
    name: 'autocannon',
    version: autocannonVersion(),
    notes: 'autocannon in the bench process (server in another process); latency resolution 1 ms',
  };
}

function autocannonVersion(): string {
  const run = spawnSync(process.execPath, ['-p', "require('autocannon/package.json').version"], {
    encoding: 'utf8',
  });
  return run.stdout.trim() || 'unknown';
}

/**
 * Stored customers to spread the requests over: each request's body is `{"customerId":"c-…"}` with a row
 * drawn at random in 1..count, zero-padded to `idWidth` digits as generateRecords names them, so that no
 * cache along the way answers one customer over and over.
 */
export interface RandomCustomers {
  readonly count: number;
  readonly idWidth: number;
}

/** One request's body for {@link RandomCustomers}. */
export function randomCustomerBody({ count, idWidth }: RandomCustomers): string {
  const row = 1 + Math.floor(Math.random() * count);
  return `{"customerId":"c-${String(row).padStart(idWidth, '0')}"}`;
}

export interface LoadOptions {
  readonly tool: LoadTool;
  /** Full URL, e.g. http://127.0.0.1:8123/predict. */
  readonly url: string;
  /** Default POST. */
  readonly method?: 'GET' | 'POST';
  /** JSON body; null sends none. */
  readonly body: string | null;
  /** Replaces `body` with a random stored customer per request. */
  readonly randomCustomers?: RandomCustomers;
  readonly connections: number;
  readonly durationS: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadLevel> {
  const host = new URL(options.url).hostname;
  if (host !== '127.0.0.1') throw new Error(`load is only generated against 127.0.0.1, not ${host}`);
  const before = cpuSnapshot();
  const level = await (options.tool.name === 'wrk' ? runWrk(options) : runAutocannon(options));
  return { ...level, otherCpuShare: otherCpuShare(before, cpuSnapshot()) };
}

async function runWrk(options: LoadOptions): Promise<Omit<LoadLevel, 'otherCpuShare'>> {
  const directory = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-wrk-')));
  try {
    const bodyFile = options.body === null ? '' : join(directory, 'body.json');
    if (options.body !== null) await writeFile(bodyFile, options.body);
    const args = [
      '-t1',
      `-c${options.connections}`,
      `-d${options.durationS}s`,
      '--timeout',
      '10s',
      '-s',
      WRK_SCRIPT,
      options.url,
    ];
    const child = trackChild(
      spawn('wrk', args, {
        env: {
          ...process.env,
          WRK_BODY_FILE: bodyFile,
          WRK_METHOD: options.method ?? 'POST',
          WRK_CUSTOMERS: options.randomCustomers
            ? `${options.randomCustomers.count}:${options.randomCustomers.idWidth}`
            : '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (options.durationS + 30) * 1000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    }).finally(() => clearTimeout(killer));
    const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
    if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${err.trim() || out.trim()}`);
    const r = JSON.parse(line.slice('WRK_JSON '.length)) as Record<string, number>;
    const seconds = r.durationUs! / 1e6;
    return {
      connections: options.connections,
      durationS: round(seconds, 2),
      requests: r.requests!,
      rps: round(r.requests! / seconds),
      p50Ms: round(r.p50Us! / 1000, 3),
      p90Ms: round(r.p90Us! / 1000, 3),
      p99Ms: round(r.p99Us! / 1000, 3),
      maxMs: round(r.maxUs! / 1000, 3),
      non2xx: r.status!,
      errors: r.connect! + r.read! + r.write! + r.timeout!,
    };
  } finally {
    removeDirectory(directory);
  }
}

async function runAutocannon(options: LoadOptions): Promise<Omit<LoadLevel, 'otherCpuShare'>> {
  const { default: autocannon } = await import('autocannon');
  const customers = options.randomCustomers;
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'POST',
    ...(options.body === null && !customers
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: options.body ?? '' }),
    ...(customers
      ? { requests: [{ setupRequest: (request) => ({ ...request, body: randomCustomerBody(customers) }) }] }
      : {}),
    connections: options.connections,
    duration: options.durationS,
    timeout: 10,
  });
  const seconds = result.duration;
  return {
    connections: options.connections,
    durationS: round(seconds, 2),
    requests: result.requests.total,
    rps: round(result.requests.total / seconds),
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export interface LevelsOptions {
  readonly tool: LoadTool;
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body: string | null;
  readonly randomCustomers?: RandomCustomers;
  readonly concurrency: readonly number[];
  readonly durationS: number;
  /** Seconds of untimed load at 16 connections before the levels. */
  readonly warmupS: number;
}

/** A warm-up, then every concurrency level in turn. */
export async function runLevels(options: LevelsOptions): Promise<LoadRun> {
  if (options.warmupS > 0) {
    await runLoad({ ...options, connections: 16, durationS: options.warmupS });
  }
  const levels: LoadLevel[] = [];
  for (const connections of options.concurrency) {
    levels.push(await runLoad({ ...options, connections, durationS: options.durationS }));
  }
  return {
    method: options.method ?? 'POST',
    url: options.url,
    body: options.body,
    ...(options.randomCustomers ? { randomCustomers: options.randomCustomers } : {}),
    warmupS: options.warmupS,
    levels,
  };
}

export interface LoadTarget {
  readonly name: string;
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body: string | null;
  readonly randomCustomers?: RandomCustomers;
}

/**
 * Several targets compared level by level: each is warmed up, then at every concurrency level every
 * target runs in turn, so that load from anything else on the machine hits them alike and the ratios
 * compare neighbouring measurements. A target that fails keeps its error and runs no further levels.
 */
export async function runInterleaved(options: {
  readonly tool: LoadTool;
  readonly targets: readonly LoadTarget[];
  readonly concurrency: readonly number[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly log?: (message: string) => void;
}): Promise<Map<string, LoadRun | { error: string }>> {
  const results = new Map<string, LoadRun | { error: string }>();
  const attempt = async (target: LoadTarget, run: () => Promise<void>) => {
    if (results.get(target.name) && 'error' in results.get(target.name)!) return;
    try {
      await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      options.log?.(`${target.name}: FAILED ${message}`);
      results.set(target.name, { error: message });
    }
  };
  for (const target of options.targets) {
    results.set(target.name, {
      method: target.method ?? 'POST',
      url: target.url,
      body: target.body,
      ...(target.randomCustomers ? { randomCustomers: target.randomCustomers } : {}),
      warmupS: options.warmupS,
      levels: [],
    });
    if (options.warmupS > 0) {
      await attempt(target, async () => {
        const warmup = await runLoad({
          ...target,
          tool: options.tool,
          connections: 16,
          durationS: options.warmupS,
        });
        (results.get(target.name) as LoadRun).warmup = warmup;
      });
    }
  }
  for (const connections of options.concurrency) {
    for (const target of options.targets) {
      await attempt(target, async () => {
        const level = await runLoad({
          ...target,
          tool: options.tool,
          connections,
          durationS: options.durationS,
        });
        (results.get(target.name) as LoadRun).levels.push(level);
        options.log?.(
          `${target.name} c=${connections}: ${level.rps} req/s, p50 ${level.p50Ms} ms, p99 ${level.p99Ms} ms` +
            (level.otherCpuShare
              ? `, other processes used ${Math.round(level.otherCpuShare * 100)}% of the CPU`
              : '') +
            (level.non2xx + level.errors > 0 ? `, ${level.non2xx} non-2xx, ${level.errors} errors` : ''),
        );
      });
    }
  }
  return results;
}
