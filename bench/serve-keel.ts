/**
 * Keel's local API in its own process, for the HTTP benchmark: the real predict code behind
 * `startPlatformApi` (what `keel up` serves) on 127.0.0.1, over the embedded S3 and DynamoDB.
 *
 *   npx tsx bench/serve-keel.ts --home DIR [--port P]     serve an existing state (a KEEL_HOME with a
 *                                                         champion), its storage in a process of its own
 *                                                         (startStorageProcess, as `keel up` runs it)
 *   npx tsx bench/serve-keel.ts --home DIR --storage JSON serve over a storage another process runs on
 *                                                         that home ({target, names, pid}): two APIs, one
 *                                                         storage (DynamoDB's files take one opener)
 *   npx tsx bench/serve-keel.ts --rows 100000 [--port P]  build a state first in a temp home, its servers
 *                                                         in this process (bench/keel-fixture.ts)
 *   options: --compute lambda|ecs (default lambda, as KEEL_API_COMPUTE)  --workers N (ecs; default: cores)
 *
 * Prints one line `READY {"url", "pid", "compute", …}` when it serves, and stops cleanly (servers closed,
 * temp home removed) on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 *
 * `startKeelServer` launches it from the bench and waits for READY.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { API_COMPUTES, type ApiCompute, isApiCompute, startPlatformApi } from '#local/api.ts';
import { startStorageProcess } from '#local/storage-process.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import { LOCAL_ENVIRONMENT, type ResourceNames } from '#shared/resources.ts';
import { servingEnvironment } from './events.ts';
import { type KeelFixtureInfo, startKeelFixture } from './keel-fixture.ts';
import { onLines, round, stopChild, trackChild } from './util.ts';

/** An embedded storage serving a home, as another process runs it. */
export interface KeelStorage {
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly pid: number;
}

export interface KeelServerReady {
  url: string;
  pid: number;
  /** Servers started and handler imported (model loaded at init), in ms since the process started. */
  readyAtMs: number;
  /** Where its embedded S3 and DynamoDB listen (the soak promotes a model there). */
  target: AwsTarget;
  compute: ApiCompute;
  /** With `ecs`: the container processes sharing the port. */
  workers?: number;
  workerPids: number[];
  /** The process serving S3 and DynamoDB (this one when it built its own state). */
  storagePid: number;
  /** Present when this process built its own state. */
  fixture?: KeelFixtureInfo;
}

export interface KeelServer extends KeelServerReady {
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Spawns this file as a child (node + tsx) and resolves once it serves. */
export async function startKeelServer(options: {
  home?: string;
  /** With `home`: serve over this storage instead of starting one. */
  storage?: KeelStorage;
  rows?: number;
  port?: number;
  /** @default 'lambda' */
  compute?: ApiCompute;
  workers?: number;
  timeoutMs?: number;
}): Promise<KeelServer> {
  const args = ['--import', 'tsx', SELF];
  if (options.home) args.push('--home', options.home);
  if (options.storage) args.push('--storage', JSON.stringify(options.storage));
  if (options.rows) args.push('--rows', String(options.rows));
  if (options.compute) args.push('--compute', options.compute);
  if (options.workers) args.push('--workers', String(options.workers));
  args.push('--port', String(options.port ?? 0));
  const child = trackChild(
    spawn(process.execPath, args, {
      env: { ...process.env, ...servingEnvironment() },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  try {
    const ready = await waitForReady(child, options.timeoutMs ?? 300_000);
    return { ...ready, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

function waitForReady(child: ChildProcess, timeoutMs: number): Promise<KeelServerReady> {
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    let done = false;
    const finish = (error?: Error, ready?: KeelServerReady) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(ready!);
    };
    const remember = (text: string) => {
      tail.push(...text.split('\n').filter(Boolean));
      tail.splice(0, Math.max(0, tail.length - 20));
    };
    // Keep reading both pipes for the child's whole life: a full pipe would block its writes.
    onLines(child.stdout!, (line) => {
      if (line.startsWith('READY ')) finish(undefined, JSON.parse(line.slice(6)) as KeelServerReady);
      else remember(line);
    });
    child.stderr!.on('data', (chunk: Buffer) => remember(chunk.toString()));
    child.once('exit', (code, signal) =>
      finish(new Error(`serve-keel exited (${code ?? signal}) before serving:\n${tail.join('\n')}`)),
    );
    const timer = setTimeout(
      () => finish(new Error(`serve-keel not ready after ${timeoutMs} ms:\n${tail.join('\n')}`)),
      timeoutMs,
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      home: { type: 'string' },
      storage: { type: 'string' },
      rows: { type: 'string' },
      port: { type: 'string' },
      compute: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const compute = values.compute ?? 'lambda';
  if (!isApiCompute(compute))
    throw new Error(`--compute must be ${API_COMPUTES.join(' or ')}, got "${compute}"`);
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (values.storage && !values.home) throw new Error('--storage needs the --home it serves');
  for (const [name, value] of Object.entries(servingEnvironment())) process.env[name] ??= value;
  let storage: KeelStorage;
  let home: string;
  let closeState: () => Promise<void>;
  let fixture: KeelFixtureInfo | undefined;
  if (values.home && values.storage) {
    home = values.home;
    storage = JSON.parse(values.storage) as KeelStorage;
    closeState = async () => undefined;
  } else if (values.home) {
    home = values.home;
    const started = await startStorageProcess({
      home,
      s3Port: 0,
      dynamoPort: 0,
      environment: LOCAL_ENVIRONMENT,
      log: (message) => process.stderr.write(`${message}\n`),
    });
    storage = { target: started.target, names: started.names, pid: started.pid() ?? 0 };
    closeState = () => started.close();
  } else {
    const built = await startKeelFixture({ rows: Number(values.rows ?? 100_000) });
    home = built.home;
    storage = { target: built.servers.target, names: built.servers.names, pid: process.pid };
    fixture = built.info;
    closeState = () => built.close();
  }
  const api = await startPlatformApi({
    home,
    target: storage.target,
    names: storage.names,
    port: Number(values.port ?? 0),
    compute,
    ...(workers === undefined ? {} : { workers }),
    log: (message) => process.stderr.write(`${message}\n`),
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await api.close().catch(() => undefined);
    await closeState().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  const ready: KeelServerReady = {
    url: api.url,
    pid: process.pid,
    readyAtMs: round(performance.now()),
    target: storage.target,
    compute,
    ...(compute === 'ecs' ? { workers: api.pids().length } : {}),
    workerPids: api.pids(),
    storagePid: storage.pid,
    ...(fixture ? { fixture } : {}),
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
