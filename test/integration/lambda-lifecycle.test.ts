import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '#lib/paths.ts';
import type { LocalDeployment, LocalFunction } from '#local/deployment/deployment.ts';
import { ENVIRONMENT_SOURCE } from '#local/lambda/function-build.ts';
import { LambdaInvocationError, LocalLambda } from '#local/lambda/service.ts';
import { buildLocalFunctions, functionSources } from '#scripts/build-functions.ts';
import { BUILD_MANIFEST } from '#scripts/build-manifest.mjs';
import { LOCAL_SESSION_PREFIX } from '#shared/aws/clients.ts';
import { untilGone } from '../support/processes.ts';

const HOLD_ENVIRONMENT = fileURLToPath(new URL('../support/fixtures/hold-environment.ts', import.meta.url));

/**
 * The local platform runs handlers the way Lambda does: init once per environment, one invocation at a
 * time, frozen between invocations (work left behind does not run), reaped when idle (and the work
 * with it), killed past the timeout. The fixture handler is a function of a one-function deployment.
 */
const ENV = { account: '000000000000', region: 'us-east-1' };
const fixture = (overrides: Partial<LocalFunction> = {}): LocalFunction => ({
  stack: 'Test',
  logicalId: 'Fixture',
  name: 'keel-test-fixture',
  arn: 'arn:aws:lambda:us-east-1:000000000000:function:keel-test-fixture',
  roleArn: 'arn:aws:iam::000000000000:role/keel-test-fixture',
  entry: 'test/support/fixtures/lifecycle-handler.ts',
  handler: 'handler',
  timeoutSeconds: 2,
  memoryMb: 128,
  environment: { FIXTURE_SETTING: 'from-the-template' },
  ...overrides,
});
const deploymentOf = (fn: LocalFunction): LocalDeployment => ({
  env: ENV,
  roles: new Map(),
  functions: new Map([[fn.name, fn]]),
  stateMachines: new Map(),
  buckets: new Map(),
  tables: new Map(),
  topics: new Map(),
  queues: new Map(),
  keys: new Map(),
});

let dir: string;
let lambda: LocalLambda;
const start = (
  fn = fixture(),
  options: { idleSeconds?: number; priority?: number; functionsBuild?: string } = {},
) => {
  lambda = new LocalLambda({ deployment: deploymentOf(fn), environment: {}, ...options });
  return fn;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keel-lifecycle-'));
});
afterEach(async () => {
  await lambda?.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a Lambda-like environment', () => {
  it('initializes once and then serves invocations one after another, with the function environment and role session', async () => {
    const fn = start();
    const first = await lambda.invoke<{ inits: number; invocations: number; pid: number }>(fn.name, {
      action: 'count',
    });
    const second = await lambda.invoke<{ inits: number; invocations: number; pid: number }>(fn.name, {
      action: 'count',
    });
    expect(first).toMatchObject({ inits: 1, invocations: 1 });
    expect(second).toEqual({ inits: 1, invocations: 2, pid: first.pid });
    expect(await lambda.invoke(fn.name, { action: 'env', name: 'FIXTURE_SETTING' })).toBe(
      'from-the-template',
    );
    expect(await lambda.invoke(fn.name, { action: 'env', name: 'AWS_LAMBDA_FUNCTION_NAME' })).toBe(fn.name);
    expect(await lambda.invoke(fn.name, { action: 'env', name: 'AWS_SESSION_TOKEN' })).toMatch(
      new RegExp(`^${LOCAL_SESSION_PREFIX}`),
    );
    expect(lambda.stats()).toEqual([expect.objectContaining({ environments: 1, started: 1 })]);
  });

  it('freezes after an invocation returns: work the handler left behind does not run, and is lost when the environment is reaped', async () => {
    const fn = start();
    const left = join(dir, 'left-behind');
    await lambda.invoke(fn.name, { action: 'leave-work', file: left, delayMs: 100 });
    await sleep(800);
    expect(existsSync(left)).toBe(false);
    lambda.reapIdle();
    await sleep(500);
    expect(existsSync(left)).toBe(false);
    expect(lambda.stats()).toEqual([expect.objectContaining({ environments: 0, reaped: 1 })]);

    // The same work, awaited before returning, is done.
    const awaited = join(dir, 'awaited');
    await lambda.invoke(fn.name, { action: 'await-work', file: awaited, delayMs: 100 });
    expect(existsSync(awaited)).toBe(true);
  });

  it('thaws on the next invocation: a timer left behind runs only then', async () => {
    const fn = start();
    const left = join(dir, 'thawed');
    await lambda.invoke(fn.name, { action: 'leave-work', file: left, delayMs: 50 });
    await sleep(400);
    expect(existsSync(left)).toBe(false);
    await lambda.invoke(fn.name, { action: 'sleep', ms: 200 });
    expect(existsSync(left)).toBe(true);
  });

  it('runs a function from the local build while it is current, and from its source once a file it was built from is newer', async () => {
    const build = join(dir, 'build');
    const fn = fixture();
    await buildLocalFunctions(build, [fn.entry!]);
    start(fn, { functionsBuild: build });
    expect(await lambda.invoke(fn.name, { action: 'module' })).toEqual({
      module: pathToFileURL(join(build, 'test/support/fixtures/lifecycle-handler.js')).href,
      runner: join(build, 'local/lambda/environment.js'),
    });
    // As if the fixture had been edited after the build.
    const manifest = join(build, BUILD_MANIFEST);
    writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), builtAt: 0 }));
    lambda.reapIdle();
    expect(await lambda.invoke(fn.name, { action: 'module' })).toEqual({
      module: pathToFileURL(join(REPO_ROOT, fn.entry!)).href,
      runner: join(REPO_ROOT, ENVIRONMENT_SOURCE),
    });
  });

  it("builds every function of the deployment and the ECS container (npm ci's build covers them all)", async () => {
    const { loadLocalDeployment } = await import('#local/deployment/deployment.ts');
    const entries = [...(await loadLocalDeployment()).functions.values()].map((fn) => fn.entry);
    expect(functionSources()).toEqual(
      expect.arrayContaining([...new Set(entries), 'lambdas/predict/container.ts']),
    );
  });

  it('reaps an environment idle past idleSeconds; the next invocation starts (and initializes) a new one', async () => {
    const fn = start(fixture(), { idleSeconds: 1 });
    const before = await lambda.invoke<{ pid: number }>(fn.name, { action: 'count' });
    await sleep(1_600);
    expect(lambda.stats()).toEqual([expect.objectContaining({ environments: 0, reaped: 1 })]);
    const after = await lambda.invoke<{ pid: number; inits: number }>(fn.name, { action: 'count' });
    expect(after.pid).not.toBe(before.pid);
    expect(after.inits).toBe(1);
  });

  it('ends an invocation that outlives the timeout with Sandbox.Timedout, and the environment with it', async () => {
    const fn = start(fixture({ timeoutSeconds: 1 }));
    const before = await lambda.invoke<{ pid: number }>(fn.name, { action: 'count' });
    const error = await lambda.invoke(fn.name, { action: 'sleep', ms: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LambdaInvocationError);
    expect(error).toMatchObject({
      name: 'Sandbox.Timedout',
      message: expect.stringContaining('Task timed out after 1.00 seconds'),
    });
    const after = await lambda.invoke<{ pid: number }>(fn.name, { action: 'count' });
    expect(after.pid).not.toBe(before.pid);
  });

  it('returns a handler error by its class name (what Retry and Catch match) and keeps the environment', async () => {
    const fn = start();
    const error = await lambda.invoke(fn.name, { action: 'fail' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'FixtureError', message: 'the fixture failed on purpose' });
    expect(lambda.stats()).toEqual([expect.objectContaining({ environments: 1, started: 1 })]);
  });

  it("refuses a request or a response over Lambda's 6 MB payload limit", async () => {
    const fn = start();
    const big = 'x'.repeat(6 * 1024 * 1024);
    await expect(lambda.invoke(fn.name, { action: 'echo', value: big })).rejects.toMatchObject({
      name: 'RequestTooLargeException',
    });
  });

  it('runs one invocation per environment: concurrent invocations get environments of their own', async () => {
    const fn = start();
    const results = await Promise.all(
      [0, 1, 2].map(() => lambda.invoke<{ slept: number }>(fn.name, { action: 'sleep', ms: 300 })),
    );
    expect(results).toHaveLength(3);
    expect(lambda.stats()).toEqual([expect.objectContaining({ environments: 3, started: 3 })]);
  });

  it('runs its environments at the priority asked for (background pipelines yield the cores to serving)', async () => {
    const fn = start(fixture(), { priority: 10 });
    const { pid } = await lambda.invoke<{ pid: number }>(fn.name, { action: 'count' });
    expect(getPriority(pid)).toBe(10);
  });
});

describe('environments of a process stopped with SIGTERM', () => {
  it('die with it: a frozen environment never outlives its process (as a test runner stops its workers)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', HOLD_ENVIRONMENT], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      // The embedded servers, in that process: its only child is then the environment (moto_server
      // would be another, stopped by its own means).
      env: { ...process.env, KEEL_TEST_EMULATOR: 'embedded' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const descendants = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const ready = /READY ([\d ]+)/.exec(out);
        if (ready) resolve(ready[1]!.trim().split(' ').map(Number));
      });
      child.once('exit', (code) => reject(new Error(`the holding process exited (${code}) before READY`)));
    });
    expect(descendants.length).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await untilGone(descendants)).toEqual([]);
  }, 120_000);
});
