import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setPriority } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '#lib/paths.ts';
import type { LocalDeployment, LocalFunction } from '#local/deployment/deployment.ts';
import { roleSessionEnvironment } from '#local/rules/credentials.ts';
import { BOOT_VARIABLES } from './boot-variables.ts';
import type { EnvironmentMessage, Invocation, SerializedError } from './environment.ts';
import { builtModules, ENVIRONMENT_SOURCE } from './function-build.ts';

/**
 * Lambda's execution model on this machine. Each function of the local deployment runs in
 * environments of its own: processes started with the function's synthesized environment variables
 * and its role's session, that import the handler once (init) and then take one invocation at a time.
 * When an invocation returns, its environment is stopped (SIGSTOP) until the next one, so nothing the
 * handler left running makes progress in between, as in Lambda; an environment idle for
 * `idleSeconds` is reaped (killed), and with it whatever it still held. An invocation that outlives
 * the function's timeout kills its environment and fails with `Sandbox.Timedout`.
 *
 * Where it differs from Lambda: at most `maxEnvironments` environments per function (Lambda would
 * scale out; beyond the cap, invocations wait for a free environment instead of being throttled), and
 * the init phase is not held to Lambda's 10 s.
 */

export interface LocalLambdaOptions {
  readonly deployment: LocalDeployment;
  /**
   * Variables every environment gets over the function's own: the local endpoints and the
   * platform's defaults. The role's credentials and Lambda's reserved variables always win.
   */
  readonly environment: Readonly<Record<string, string>>;
  /** @default - 4 (KEEL_LAMBDA_MAX_ENVIRONMENTS) */
  readonly maxEnvironments?: number;
  /** @default - 300 (KEEL_LAMBDA_IDLE_SECONDS) */
  readonly idleSeconds?: number;
  /** Every line an environment writes to stdout or stderr (what Lambda sends to CloudWatch Logs). */
  readonly onLog?: (fn: LocalFunction, line: string) => void;
  /** The Node.js binary environments run on. @default - this process's */
  readonly nodeBinary?: string;
  /**
   * Scheduling priority (nice, -20..19) of the environments: background work yields the cores to
   * serving when both want them. @default - 0, as this process
   */
  readonly priority?: number;
  /**
   * The build a function runs from while it is current (local/lambda/function-build.ts), else from its
   * source through tsx. @default - dist/functions, which `npm ci` builds
   */
  readonly functionsBuild?: string;
}

/** A failed invocation, named as Lambda names it (`errorType`): what Step Functions' Retry and Catch match. */
export class LambdaInvocationError extends Error {
  constructor(
    readonly functionName: string,
    readonly error: SerializedError,
  ) {
    super(error.errorMessage);
    this.name = error.errorType;
  }
}

/** Lambda's limit on a synchronous invocation's request and response payloads. */
export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** How long the init phase may take locally (tsx transpiles the sources on a cold start from them). */
const INIT_LIMIT_MS = 120_000;

const ENTRY = fileURLToPath(new URL('./environment.ts', import.meta.url));

interface Environment {
  readonly id: number;
  readonly process: ChildProcess;
  readonly ready: Promise<void>;
  busy: boolean;
  frozen: boolean;
  idleTimer?: NodeJS.Timeout;
  pending?: {
    readonly id: string;
    readonly resolve: (payload: string) => void;
    readonly reject: (error: Error) => void;
  };
}

interface Pool {
  readonly fn: LocalFunction;
  readonly environments: Set<Environment>;
  readonly waiting: ((env: Environment) => void)[];
}

export interface EnvironmentStats {
  readonly function: string;
  readonly environments: number;
  readonly busy: number;
  readonly started: number;
  readonly reaped: number;
}

export class LocalLambda {
  private readonly pools = new Map<string, Pool>();
  private readonly counters = new Map<string, { started: number; reaped: number }>();
  private nextId = 0;
  private closed = false;
  private readonly maxEnvironments: number;
  private readonly idleMs: number;

  constructor(private readonly options: LocalLambdaOptions) {
    this.maxEnvironments = options.maxEnvironments ?? 4;
    this.idleMs = (options.idleSeconds ?? 300) * 1000;
    if (!Number.isInteger(this.maxEnvironments) || this.maxEnvironments < 1) {
      throw new Error(`maxEnvironments must be a whole number ≥ 1 (got ${this.maxEnvironments})`);
    }
  }

  /** The deployment's function of that name or ARN. */
  function(nameOrArn: string): LocalFunction {
    const name = nameOrArn.startsWith('arn:') ? nameOrArn.slice(nameOrArn.lastIndexOf(':') + 1) : nameOrArn;
    const fn = this.options.deployment.functions.get(name);
    if (!fn) {
      throw Object.assign(new Error(`Function not found: ${nameOrArn}`), {
        name: 'ResourceNotFoundException',
      });
    }
    if (!fn.entry && !fn.artifact) {
      throw new Error(
        `function ${name} has no keel:entry metadata and no built code: the local platform cannot run it`,
      );
    }
    return fn;
  }

  /** Invokes a function synchronously (RequestResponse): its result, or its error as {@link LambdaInvocationError}. */
  async invoke<T = unknown>(nameOrArn: string, event: unknown): Promise<T> {
    if (this.closed) throw new Error('the local Lambda service is closed');
    const fn = this.function(nameOrArn);
    const payload = JSON.stringify(event ?? null);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      throw new LambdaInvocationError(fn.name, {
        errorType: 'RequestTooLargeException',
        errorMessage: `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`,
        trace: [],
      });
    }
    const env = await this.acquire(fn);
    try {
      const result = await this.run(fn, env, payload);
      if (Buffer.byteLength(result) > MAX_PAYLOAD_BYTES) {
        throw new LambdaInvocationError(fn.name, {
          errorType: 'Function.ResponseSizeTooLarge',
          errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_PAYLOAD_BYTES} bytes).`,
          trace: [],
        });
      }
      return JSON.parse(result) as T;
    } finally {
      this.release(fn, env);
    }
  }

  /** Starts one environment of a function ahead of its first invocation (as provisioned concurrency would). */
  async prewarm(nameOrArn: string): Promise<void> {
    const fn = this.function(nameOrArn);
    const env = await this.acquire(fn);
    this.release(fn, env);
  }

  stats(): EnvironmentStats[] {
    return [...this.pools.values()].map((pool) => ({
      function: pool.fn.name,
      environments: pool.environments.size,
      busy: [...pool.environments].filter((e) => e.busy).length,
      ...(this.counters.get(pool.fn.name) ?? { started: 0, reaped: 0 }),
    }));
  }

  /** Reaps every idle environment now (what Lambda does to an environment at a time of its choosing). */
  reapIdle(): void {
    for (const pool of this.pools.values()) {
      for (const env of pool.environments) if (!env.busy) this.reap(pool, env);
    }
  }

  /** Ends every environment; resolves once each has exited and its last output lines were read. */
  async close(): Promise<void> {
    this.closed = true;
    const exits: Promise<unknown>[] = [];
    for (const pool of this.pools.values()) {
      for (const env of pool.environments) {
        if (env.process.exitCode === null && env.process.signalCode === null) {
          exits.push(new Promise((resolve) => env.process.once('close', resolve)));
          // Waiting for an exit must keep this process alive (an idle environment does not).
          holdProcess(env.process, true);
        }
        this.kill(pool, env);
      }
      for (const waiter of pool.waiting.splice(0)) waiter(undefined as never);
    }
    await Promise.all(exits);
  }

  private pool(fn: LocalFunction): Pool {
    let pool = this.pools.get(fn.name);
    if (!pool) {
      pool = { fn, environments: new Set(), waiting: [] };
      this.pools.set(fn.name, pool);
    }
    return pool;
  }

  private async acquire(fn: LocalFunction): Promise<Environment> {
    const pool = this.pool(fn);
    const idle = [...pool.environments].find((e) => !e.busy);
    let env: Environment;
    if (idle) env = idle;
    else if (pool.environments.size < this.maxEnvironments) env = this.start(pool);
    else {
      env = await new Promise<Environment>((resolve) => pool.waiting.push(resolve));
      if (this.closed) throw new Error('the local Lambda service is closed');
    }
    env.busy = true;
    clearTimeout(env.idleTimer);
    try {
      await env.ready;
    } catch (error) {
      this.kill(pool, env);
      throw error;
    }
    return env;
  }

  private release(fn: LocalFunction, env: Environment): void {
    const pool = this.pool(fn);
    if (!pool.environments.has(env)) {
      // It died (timeout, crash): a waiting invocation gets a fresh environment instead.
      const waiter = pool.waiting.shift();
      if (waiter) {
        const fresh = this.start(pool);
        waiter(fresh);
      }
      return;
    }
    const waiter = pool.waiting.shift();
    if (waiter) {
      waiter(env);
      return;
    }
    env.busy = false;
    env.idleTimer = setTimeout(() => this.reap(pool, env), this.idleMs);
    env.idleTimer.unref();
  }

  /** How a function of the repository runs: from the local build while it is current, else through tsx. */
  private sourceCode(entry: string) {
    const built = builtModules([ENVIRONMENT_SOURCE, entry], this.options.functionsBuild);
    return built
      ? { args: [built[0]!], root: REPO_ROOT, entry: relative(REPO_ROOT, built[1]!), nodePath: {} }
      : { args: ['--import', 'tsx', ENTRY], root: REPO_ROOT, entry, nodePath: {} };
  }

  private start(pool: Pool): Environment {
    const { fn } = pool;
    const id = ++this.nextId;
    const counters = this.counters.get(fn.name) ?? { started: 0, reaped: 0 };
    counters.started += 1;
    this.counters.set(fn.name, counters);
    const { deployment } = this.options;
    const code = fn.artifact
      ? {
          // What `cdk deploy` uploads runs as Lambda runs it: from its own folder, its layers on
          // NODE_PATH, no project node_modules within reach.
          args: [ENTRY],
          root: fn.artifact.codeDir,
          entry: 'index.mjs',
          nodePath: {
            NODE_PATH: fn.artifact.layerDirs.map((dir) => join(dir, 'nodejs', 'node_modules')).join(':'),
          },
        }
      : this.sourceCode(fn.entry!);
    const child = spawn(this.options.nodeBinary ?? process.execPath, code.args, {
      cwd: code.root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...functionProcessEnvironment(fn, deployment.env.region, this.options.environment, fn.name),
        AWS_LAMBDA_FUNCTION_NAME: fn.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
        AWS_LAMBDA_LOG_STREAM_NAME: `local/${id}`,
        ...code.nodePath,
        LAMBDA_TASK_ROOT: code.root,
        [BOOT_VARIABLES.entry]: code.entry,
        [BOOT_VARIABLES.handler]: fn.handler,
        [BOOT_VARIABLES.functionArn]: fn.arn,
      },
    });
    if (this.options.priority && child.pid !== undefined) setPriority(child.pid, this.options.priority);
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) if (line !== '') this.options.onLog?.(fn, line);
      });
      stream?.on('end', () => {
        if (rest !== '') this.options.onLog?.(fn, rest);
      });
    }
    let settleReady!: { resolve: () => void; reject: (error: Error) => void };
    const ready = new Promise<void>((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    const initTimer = setTimeout(
      () => settleReady.reject(new Error(`${fn.name}: init did not finish within ${INIT_LIMIT_MS / 1000} s`)),
      INIT_LIMIT_MS,
    );
    const env: Environment = { id, process: child, ready, busy: false, frozen: false };
    LIVE.add(child);
    child.once('exit', () => LIVE.delete(child));
    child.on('message', (message: EnvironmentMessage) => {
      switch (message.type) {
        case 'ready':
          clearTimeout(initTimer);
          if (!env.pending) holdProcess(child, false);
          settleReady.resolve();
          break;
        case 'init-error':
          clearTimeout(initTimer);
          settleReady.reject(
            new LambdaInvocationError(fn.name, { ...message.error, errorType: initErrorType(message.error) }),
          );
          break;
        case 'result':
        case 'error': {
          const pending = env.pending;
          if (!pending || pending.id !== message.id) return;
          env.pending = undefined;
          this.freeze(env);
          // What the handler wrote to stdout before returning is in the pipe already: let this
          // process read it before the caller sees the result (as CloudWatch has the lines by then).
          setImmediate(() => {
            if (message.type === 'result') pending.resolve(message.payload);
            else pending.reject(new LambdaInvocationError(fn.name, message.error));
          });
          break;
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(initTimer);
      pool.environments.delete(env);
      const reason = new LambdaInvocationError(fn.name, {
        errorType: 'Runtime.ExitError',
        errorMessage: `RequestId: ${env.pending?.id ?? '-'} Error: Runtime exited with ${signal ? `signal: ${signal}` : `error: exit status ${code}`}`,
        trace: [],
      });
      settleReady.reject(reason);
      env.pending?.reject(reason);
      env.pending = undefined;
    });
    // An environment that never became ready must not leave an unhandled rejection behind.
    ready.catch(() => undefined);
    pool.environments.add(env);
    return env;
  }

  private run(fn: LocalFunction, env: Environment, event: string): Promise<string> {
    const id = randomUUID();
    const deadlineMs = Date.now() + fn.timeoutSeconds * 1000;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Lambda ends an invocation that outlives its timeout by ending the environment.
        const pending = env.pending;
        env.pending = undefined;
        this.kill(this.pool(fn), env);
        pending?.reject(
          new LambdaInvocationError(fn.name, {
            errorType: 'Sandbox.Timedout',
            errorMessage: `RequestId: ${id} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`,
            trace: [],
          }),
        );
      }, fn.timeoutSeconds * 1000);
      env.pending = {
        id,
        resolve: (payload) => {
          clearTimeout(timer);
          resolve(payload);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.thaw(env);
      holdProcess(env.process, true);
      const invocation: Invocation = { type: 'invoke', id, event, deadlineMs };
      env.process.send(invocation);
    });
  }

  private freeze(env: Environment): void {
    holdProcess(env.process, false);
    if (env.frozen || env.process.exitCode !== null) return;
    env.process.kill('SIGSTOP');
    env.frozen = true;
  }

  private thaw(env: Environment): void {
    if (!env.frozen) return;
    env.process.kill('SIGCONT');
    env.frozen = false;
  }

  private reap(pool: Pool, env: Environment): void {
    const counters = this.counters.get(pool.fn.name);
    if (counters) counters.reaped += 1;
    this.kill(pool, env);
  }

  private kill(pool: Pool, env: Environment): void {
    clearTimeout(env.idleTimer);
    pool.environments.delete(env);
    if (env.process.exitCode === null && env.process.signalCode === null) env.process.kill('SIGKILL');
  }
}

/**
 * What a process running a function's code starts with, whatever runs it (a Lambda-like environment,
 * which adds Lambda's reserved variables, or the ECS container): the function's variables, then
 * `base` (the platform's), a session of the function's role named `session`, the region, UTC.
 */
export function functionProcessEnvironment(
  fn: Pick<LocalFunction, 'environment' | 'roleArn'>,
  region: string,
  base: Readonly<Record<string, string>>,
  session: string,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...passThrough(process.env),
    ...fn.environment,
    ...base,
    ...roleSessionEnvironment(fn.roleArn, session),
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    TZ: 'UTC',
  };
}

/** Settings of this machine that the environments keep (the SDK's Node.js version notice, X-Ray's). */
function passThrough(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && /^(AWS_SDK_JS_|AWS_XRAY_|NODE_EXTRA_CA_CERTS$)/.test(entry[0]),
    ),
  );
}

/** Every environment process of this process: none may outlive it, frozen and forgotten. */
const LIVE = new Set<ChildProcess>();
const killLive = () => {
  for (const child of LIVE) child.kill('SIGKILL');
};
process.once('exit', killLive);
// A SIGTERM that nothing else handles ends the process without 'exit' (vitest stops its forks so), and
// frozen environments would outlive it, stopped, for good (a CI run left 15, 2.3 GB). Kill them, then
// let the signal end the process as it would have. A process with its own handler (keel up) shuts
// down its way, and 'exit' still comes.
process.on('SIGTERM', function endWithEnvironments() {
  if (process.listenerCount('SIGTERM') > 1) return;
  killLive();
  process.removeListener('SIGTERM', endWithEnvironments);
  process.kill(process.pid, 'SIGTERM');
});

/**
 * An environment keeps this process alive only while it works for it (starting, invoking): an idle
 * one must not hold a CLI command or a test open, as an idle Lambda environment holds nothing.
 */
function holdProcess(child: ChildProcess, hold: boolean): void {
  const handles = [child, child.channel, child.stdout, child.stderr] as (
    | { ref?(): void; unref?(): void }
    | null
    | undefined
  )[];
  for (const handle of handles) {
    if (hold) handle?.ref?.();
    else handle?.unref?.();
  }
}

/** Lambda's names for a failed init: a module that does not load, or a missing handler export. */
function initErrorType(error: SerializedError): string {
  if (error.errorType.startsWith('Runtime.')) return error.errorType;
  return error.errorType === 'Error' || error.errorType === 'SyntaxError' || error.errorType === 'TypeError'
    ? 'Runtime.ImportModuleError'
    : error.errorType;
}
