import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REPO_ROOT } from '#lib/paths.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import type { DeploymentEnvironment, ResourceNames } from '#shared/resources.ts';
import { loadLocalDeployment } from './deployment/deployment.ts';
import type { Denial } from './rules/proxy.ts';
import { type LocalServersOptions, startLocalServers } from './servers.ts';

/**
 * The embedded storage (S3, DynamoDB and the rules proxies in front of them, local/servers.ts) in a
 * process of its own: a pipeline's writes and the API's reads are served on a core of their own, not
 * on the event loop of the process that runs the API front, the schedules and the alarms. The
 * supervisor watches it: when it dies it is started again on the same ports over the same state, and
 * clients, which see refused connections meanwhile (the API answers 503 Unavailable), carry on.
 *
 * The process is in a process group of its own, so Ctrl-C in the terminal reaches only the supervisor,
 * which stops the storage last (the API's last capture lines are written to S3 first). It also stops
 * when its stdin closes: the supervisor is gone, however it ended.
 */

export interface StorageProcessOptions {
  readonly home: string;
  /** Port of the S3 server; 0 picks a free one (kept across restarts). */
  readonly s3Port: number;
  /** Port of the DynamoDB server; 0 picks a free one (kept across restarts). */
  readonly dynamoPort: number;
  readonly environment: DeploymentEnvironment;
  /** Told of every call the rules proxies refuse. */
  readonly onDenied?: (denial: Denial) => void;
  /** Told when the process dies and when it serves again. */
  readonly log?: (message: string) => void;
  /** Called with the new pid each time it serves again after dying. */
  readonly onRestarted?: (pid: number) => void;
  /** How long a start may take (tsx transpiles the sources the first time). @default - 120 s */
  readonly readyTimeoutMs?: number;
}

export interface StorageProcess {
  /** The endpoints clients use; the same after a restart. */
  readonly target: AwsTarget;
  /** The emulators themselves, behind the rules proxies (what the benchmarks measure the proxies against). */
  readonly emulators: AwsTarget;
  readonly names: ResourceNames;
  /** Buckets and tables the first start created. */
  readonly created: string[];
  /** The storage process's pid now (a restart changes it); undefined while it is down. */
  pid(): number | undefined;
  /** Stops it (its servers close, DynamoDB's files are flushed) and does not start it again. */
  close(): Promise<void>;
}

/** What the child reports once it serves (one `READY` line of JSON on stdout). */
interface StorageReady {
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly created: string[];
  readonly emulators: AwsTarget;
}

type ChildOptions = Pick<
  LocalServersOptions,
  'home' | 's3Port' | 'dynamoPort' | 'environment' | 'proxyPorts'
>;

const SELF = fileURLToPath(import.meta.url);
const READY = 'READY ';
const DENIED = 'DENIED ';
const RESTART_DELAYS_MS = [200, 500, 1_000, 2_000, 5_000];

export async function startStorageProcess(options: StorageProcessOptions): Promise<StorageProcess> {
  const log = options.log ?? (() => undefined);
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  let child: ChildProcess | undefined;
  let closing = false;
  let failedStarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;

  const launch = (childOptions: ChildOptions) =>
    new Promise<StorageReady>((resolve, reject) => {
      const process_ = spawn(process.execPath, ['--import', 'tsx', SELF, JSON.stringify(childOptions)], {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child = process_;
      let settled = false;
      let served = false;
      const stderr: string[] = [];
      const timer = setTimeout(() => {
        process_.kill('SIGKILL');
        fail(new Error(`the storage process did not start within ${readyTimeoutMs / 1000} s`));
      }, readyTimeoutMs);
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      createInterface({ input: process_.stdout! }).on('line', (line) => {
        if (line.startsWith(READY) && !settled) {
          settled = true;
          served = true;
          clearTimeout(timer);
          resolve(JSON.parse(line.slice(READY.length)) as StorageReady);
        } else if (line.startsWith(DENIED)) {
          options.onDenied?.(JSON.parse(line.slice(DENIED.length)) as Denial);
        } else if (line !== '') log(`storage: ${line}`);
      });
      createInterface({ input: process_.stderr! }).on('line', (line) => {
        if (settled) log(`storage: ${line}`);
        else stderr.push(line);
      });
      process_.once('exit', (code, signal) => {
        fail(
          new Error(
            `the storage process exited (${signal ?? `code ${code}`}) before it served:\n${stderr.slice(-20).join('\n')}`,
          ),
        );
        // Down means no pid, whether it had served or a restart failed.
        const current = child === process_;
        if (current) child = undefined;
        if (!served || closing || !current) return;
        log(`storage process ${process_.pid} died (${signal ?? `exit code ${code}`}): starting it again`);
        scheduleRestart();
      });
    });

  // Synthesis (on a cache miss) happens here, not in the child: the CDK app imports the handlers'
  // modules, which the process serving every store call has no use for.
  await loadLocalDeployment();
  const first = await launch({
    home: options.home,
    s3Port: options.s3Port,
    dynamoPort: options.dynamoPort,
    environment: options.environment,
  });
  // Every later start listens where the first one did, so the endpoints clients hold stay valid.
  const portOf = (endpoint: string) => Number(new URL(endpoint).port);
  const restartOptions: ChildOptions = {
    home: options.home,
    s3Port: portOf(first.emulators.endpoints!.s3),
    dynamoPort: portOf(first.emulators.endpoints!.dynamodb),
    environment: options.environment,
    proxyPorts: {
      s3: portOf(first.target.endpoints!.s3),
      dynamodb: portOf(first.target.endpoints!.dynamodb),
    },
  };

  const scheduleRestart = () => {
    const delay = RESTART_DELAYS_MS[Math.min(failedStarts, RESTART_DELAYS_MS.length - 1)]!;
    restartTimer = setTimeout(() => {
      if (closing) return;
      launch(restartOptions).then(
        () => {
          failedStarts = 0;
          log(`storage process ${child?.pid} serves again on the same ports`);
          if (child?.pid) options.onRestarted?.(child.pid);
        },
        (error: Error) => {
          failedStarts += 1;
          log(`storage process did not start again: ${error.message}`);
          if (!closing) scheduleRestart();
        },
      );
    }, delay);
  };

  return {
    target: first.target,
    emulators: first.emulators,
    names: first.names,
    created: first.created,
    pid: () => child?.pid,
    async close() {
      closing = true;
      clearTimeout(restartTimer);
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        current.once('exit', () => resolve());
        current.kill('SIGTERM');
      });
    },
  };
}

/** The child: serves until SIGTERM, SIGINT or the end of its stdin, then closes its servers and exits. */
async function serve(childOptions: ChildOptions): Promise<void> {
  const servers = await startLocalServers({
    ...childOptions,
    onDenied: (denial) => process.stdout.write(`${DENIED}${JSON.stringify(denial)}\n`),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    servers.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`closing the storage servers failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop).on('error', stop).resume();
  const ready: StorageReady = {
    target: servers.target,
    names: servers.names,
    created: servers.created,
    emulators: servers.emulators,
  };
  process.stdout.write(`${READY}${JSON.stringify(ready)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await serve(JSON.parse(process.argv[2] ?? '{}') as ChildOptions);
}
