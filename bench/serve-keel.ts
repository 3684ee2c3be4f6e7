/**
 * Keel's local API in its own process, for the HTTP benchmark: the embedded S3 and DynamoDB servers and
 * the real predict handler behind `startLocalApi` (what `keel up` serves), on 127.0.0.1.
 *
 *   npx tsx bench/serve-keel.ts --home DIR [--port P]     serve an existing state (a KEEL_HOME with a champion)
 *   npx tsx bench/serve-keel.ts --rows 100000 [--port P]  build one first in a temp home (bench/keel-fixture.ts)
 *
 * Prints one line `READY {"url", "pid", …}` when it serves, and stops cleanly (servers closed, temp home
 * removed) on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 *
 * `startKeelServer` launches it from the bench and waits for READY.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startLocalApi } from '#local/api.ts';
import { type LocalServers, startLocalServers } from '#local/servers.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { servingEnvironment } from './events.ts';
import { type KeelFixtureInfo, startKeelFixture } from './keel-fixture.ts';
import { onLines, round, stopChild, trackChild } from './util.ts';

export interface KeelServerReady {
  url: string;
  pid: number;
  /** Servers started and handler imported (model loaded at init), in ms since the process started. */
  readyAtMs: number;
  /** Where its embedded S3 and DynamoDB listen (the soak promotes a model there). */
  target: AwsTarget;
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
  rows?: number;
  port?: number;
  timeoutMs?: number;
}): Promise<KeelServer> {
  const args = ['--import', 'tsx', SELF];
  if (options.home) args.push('--home', options.home);
  if (options.rows) args.push('--rows', String(options.rows));
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
    options: { home: { type: 'string' }, rows: { type: 'string' }, port: { type: 'string' } },
  });
  for (const [name, value] of Object.entries(servingEnvironment())) process.env[name] ??= value;
  let servers: LocalServers;
  let home: string;
  let closeState: () => Promise<void>;
  let fixture: KeelFixtureInfo | undefined;
  if (values.home) {
    home = values.home;
    servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
    closeState = () => servers.close();
  } else {
    const built = await startKeelFixture({ rows: Number(values.rows ?? 100_000) });
    ({ home, servers } = built);
    fixture = built.info;
    closeState = () => built.close();
  }
  const api = await startLocalApi({
    home,
    target: servers.target,
    names: servers.names,
    port: Number(values.port ?? 0),
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
    target: servers.target,
    ...(fixture ? { fixture } : {}),
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
