/**
 * The API while the ETL runs: `{customerId}` load (random stored customers) at one concurrency against a
 * served API, first for a baseline window, then for the ETL state machine's whole run over a generated
 * raw file, which a child process (this file) runs against the same storage, as `keel etl run` does from
 * another terminal. The load runs in slices until the ETL ends or a cap is reached.
 *
 * The child: `node --import tsx bench/api-under-etl.ts '{"home","target","names","rows"}'` writes the raw
 * file and builds the pipeline runner, prints `READY {…}`, waits for a line on stdin, prints `STARTED`,
 * runs the ETL and prints `DONE {…}`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createPipelineRunner } from '#local/pipelines.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import { writeRawData } from '#shared/data/raw-data.ts';
import type { EtlRunSummary } from '#shared/etl/etl.ts';
import { servingEnvironment } from './events.ts';
import { type LoadLevel, type LoadTool, type RandomCustomers, runLoad } from './http.ts';
import type { KeelStorage } from './serve-keel.ts';
import { onLines, round, stopChild, trackChild } from './util.ts';

export interface ApiUnderEtlOptions {
  readonly tool: LoadTool;
  /** The API's base URL. */
  readonly url: string;
  readonly home: string;
  readonly storage: KeelStorage;
  /** Rows of the raw file the ETL processes. */
  readonly etlRows: number;
  readonly randomCustomers: RandomCustomers;
  readonly connections: number;
  readonly baselineS: number;
  /** Length of one load slice while the ETL runs (the last one may run this long past the ETL's end). */
  readonly sliceS: number;
  /** Load stops after this long even if the ETL still runs (its run then counts as unfinished). */
  readonly maxS: number;
  readonly log?: (message: string) => void;
}

/** Load over several slices, added up. */
export interface LoadWindow {
  seconds: number;
  requests: number;
  rps: number;
  /** Median of the slices' p50, weighted by their requests. */
  p50Ms: number;
  /** The worst slice's p99 (a bound on the window's own p99: the tools report percentiles, not samples). */
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  slices: LoadLevel[];
}

export interface ApiUnderEtlResult {
  connections: number;
  sliceS: number;
  /** Writing the raw file (before the baseline, not under load). */
  raw: { key: string; rows: number; bytes: number; seconds: number };
  baseline: LoadLevel;
  duringEtl: LoadWindow;
  etl: {
    status: string;
    /** False when the load's cap ended the measurement first. */
    finished: boolean;
    rows: number;
    seconds: number;
    rowsPerSecond: number;
    error?: string;
  };
}

interface ChildReady {
  key: string;
  rows: number;
  bytes: number;
  seconds: number;
}

interface ChildDone {
  status: string;
  rows: number;
  seconds: number;
  error?: string;
}

const SELF = fileURLToPath(import.meta.url);

export async function runApiUnderEtl(options: ApiUnderEtlOptions): Promise<ApiUnderEtlResult> {
  const log = options.log ?? (() => undefined);
  const child = trackChild(
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        SELF,
        JSON.stringify({
          home: options.home,
          target: options.storage.target,
          names: options.storage.names,
          rows: options.etlRows,
        }),
      ],
      { env: { ...process.env, ...servingEnvironment() }, stdio: ['pipe', 'pipe', 'pipe'] },
    ),
  );
  try {
    const lines = childLines(child, log);
    log(`writing a raw file of ${options.etlRows.toLocaleString('en-US')} rows …`);
    const raw = JSON.parse(await lines.next('READY ')) as ChildReady;
    log(`raw file written in ${raw.seconds} s; baseline ${options.baselineS} s at c=${options.connections}`);
    const load = (durationS: number) =>
      runLoad({
        tool: options.tool,
        url: `${options.url}/predict`,
        body: null,
        randomCustomers: options.randomCustomers,
        connections: options.connections,
        durationS,
      });
    const baseline = await load(options.baselineS);
    log(`baseline: ${describe(baseline)}`);
    child.stdin!.write('go\n');
    await lines.next('STARTED');
    const started = performance.now();
    let done: ChildDone | undefined;
    const finished = lines.next('DONE ').then((text) => {
      done = JSON.parse(text) as ChildDone;
    });
    finished.catch(() => undefined);
    const slices: LoadLevel[] = [];
    while (!done && (performance.now() - started) / 1000 < options.maxS) {
      const slice = await load(options.sliceS);
      slices.push(slice);
      log(`ETL running ${round((performance.now() - started) / 1000)} s: ${describe(slice)}`);
    }
    if (!done) {
      await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
    const etl = done
      ? {
          status: done.status,
          finished: true,
          rows: done.rows,
          seconds: done.seconds,
          rowsPerSecond: done.seconds > 0 ? Math.round(done.rows / done.seconds) : 0,
          ...(done.error ? { error: done.error } : {}),
        }
      : {
          status: 'RUNNING',
          finished: false,
          rows: 0,
          seconds: round((performance.now() - started) / 1000),
          rowsPerSecond: 0,
          error: `still running after the ${options.maxS} s cap`,
        };
    return {
      connections: options.connections,
      sliceS: options.sliceS,
      raw,
      baseline,
      duringEtl: addUp(slices),
      etl,
    };
  } finally {
    await stopChild(child);
  }
}

const describe = (l: LoadLevel) =>
  `${l.rps} req/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${l.non2xx} non-2xx, ${l.errors} errors`;

function addUp(slices: readonly LoadLevel[]): LoadWindow {
  const seconds = slices.reduce((sum, s) => sum + s.durationS, 0);
  const requests = slices.reduce((sum, s) => sum + s.requests, 0);
  const byP50 = [...slices].sort((a, b) => a.p50Ms - b.p50Ms);
  let p50Ms = 0;
  let seen = 0;
  for (const slice of byP50) {
    seen += slice.requests;
    p50Ms = slice.p50Ms;
    if (seen >= requests / 2) break;
  }
  return {
    seconds: round(seconds, 2),
    requests,
    rps: seconds > 0 ? round(requests / seconds) : 0,
    p50Ms,
    p99Ms: Math.max(0, ...slices.map((s) => s.p99Ms)),
    maxMs: Math.max(0, ...slices.map((s) => s.maxMs)),
    non2xx: slices.reduce((sum, s) => sum + s.non2xx, 0),
    errors: slices.reduce((sum, s) => sum + s.errors, 0),
    slices: [...slices],
  };
}

/** The child's protocol lines, awaited in order; other lines go to `log`, a failed exit rejects. */
function childLines(child: ChildProcess, log: (message: string) => void) {
  const waiting: { prefix: string; resolve: (rest: string) => void; reject: (e: Error) => void }[] = [];
  const tail: string[] = [];
  let ended: Error | undefined;
  onLines(child.stdout!, (line) => {
    const next = waiting[0];
    if (next && line.startsWith(next.prefix)) {
      waiting.shift();
      next.resolve(line.slice(next.prefix.length));
    } else if (line.trim()) log(`  etl: ${line}`);
  });
  onLines(child.stderr!, (line) => {
    tail.push(line);
    tail.splice(0, Math.max(0, tail.length - 20));
  });
  child.once('exit', (code, signal) => {
    ended = new Error(`the ETL process exited (${signal ?? `code ${code}`}):\n${tail.join('\n')}`);
    for (const w of waiting.splice(0)) w.reject(ended);
  });
  return {
    next: (prefix: string) =>
      new Promise<string>((resolve, reject) => {
        if (ended) reject(ended);
        else waiting.push({ prefix, resolve, reject });
      }),
  };
}

/** The child: raw file, runner, then the ETL when told. */
async function main(): Promise<void> {
  const { home, target, names, rows } = JSON.parse(process.argv[2] ?? '{}') as {
    home: string;
    target: KeelStorage['target'];
    names: KeelStorage['names'];
    rows: number;
  };
  const clients = createAwsClients(target);
  const t0 = performance.now();
  const raw = await writeRawData(clients.s3, names.raw, { rows, seed: 7, asOf: new Date() });
  const seconds = round((performance.now() - t0) / 1000, 2);
  const runner = await createPipelineRunner({ home, target, names });
  const ready: ChildReady = { key: raw.key, rows: raw.rows, bytes: raw.bytes, seconds };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
  // Its stdin closes when the bench goes away: stop then, whatever runs.
  const input = createInterface({ input: process.stdin }).once('close', () => process.exit(1));
  await new Promise<void>((resolve) => input.once('line', () => resolve()));
  process.stdout.write('STARTED\n');
  const started = performance.now();
  const run = await runner.run<EtlRunSummary>('etl', { inputKey: raw.key });
  const done: ChildDone = {
    status: run.status,
    rows: run.output?.rowsRead ?? 0,
    seconds: round((performance.now() - started) / 1000, 2),
    ...(run.error ? { error: `${run.error.name}: ${run.error.message}` } : {}),
  };
  process.stdout.write(`DONE ${JSON.stringify(done)}\n`);
  await runner.close();
  clients.s3.destroy();
  clients.dynamo.destroy();
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
