/**
 * Cold start: from a fresh process to the first answered request.
 *
 * - In this process, the ModelHolder's load of the champion (alias read, S3 fetch, sha256 verify,
 *   fingerprint check, onnxruntime session), whole and in parts, each time with fresh SDK clients.
 * - In child processes (bench/cold-start-child.ts), the whole thing: node start, the handler module's
 *   import (which loads the model at init, as in Lambda) and the first request. Two ways to run the
 *   handler: the TypeScript source through tsx (as `keel up` does), and an esbuild bundle built like the
 *   Lambda's (ESM, minified, source map, onnxruntime-node external; run with --enable-source-maps).
 * The children reach the embedded S3/DynamoDB servers of this process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AWS_TARGET_ENV, createAwsClients, SERVING_TIMEOUTS } from '#shared/aws/clients.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { endRollout, getChampion, loadVerifiedModel, sha256Hex } from '#shared/registry/registry.ts';
import { resourceEnvironment } from '#shared/resources.ts';
import { servingEnvironment } from './events.ts';
import { type KeelFixture, type ShadowRollout, startShadowRollout } from './keel-fixture.ts';
import { median, onLines, removeDirectory, round, stopChild, trackChild, trackDirectory } from './util.ts';

export interface ColdStartOptions {
  /** In-process ModelHolder loads. */
  readonly holderRuns: number;
  /** Child processes per variant. */
  readonly processRuns: number;
  /** false skips the esbuild bundle variant. */
  readonly bundle?: boolean;
}

interface HolderParts {
  /** getChampion: one DynamoDB GetItem. */
  aliasMs: number;
  /** loadVerifiedModel: version item + metadata.json + model.onnx from S3, sha256 and fingerprint checks. */
  fetchVerifyMs: number;
  /** sha256 of the artifact alone (part of fetchVerifyMs). */
  sha256Ms: number;
  /** loadOnnxScorer: protobuf decode, metadata check, InferenceSession.create, probe run. */
  sessionMs: number;
}

export interface ProcessColdStart {
  /** Spawn to the first answered request, measured by the parent. */
  spawnToFirstAnswerMs: number;
  /** Node (and tsx) start until the child script runs. */
  bootMs: number;
  /** The handler module's import, including the model load at init. */
  importMs: number;
  /** Of which the ModelHolder's load (S3 → sha256 → fingerprint → session), from its 'model loaded' log. */
  modelLoadMs: number | null;
  firstRequestMs: number;
  secondRequestMs: number;
  warmMedianMs: number;
  rssMb: number;
}

export interface ColdStartResult {
  modelBytes: number;
  holder: {
    runs: number;
    /** ModelHolder.refreshIfDue() on a new runtime (fresh clients): alias + fetch + verify + session. */
    loadMs: { first: number; median: number };
    parts: { first: HolderParts; median: HolderParts };
  };
  /**
   * The same with a shadow rollout running ({@link startShadowRollout}): the holder loads the champion
   * and the challenger (side by side), and a process's cold start pays for both.
   */
  rollout: ShadowRollout & {
    holder: { runs: number; loadMs: { first: number; median: number } };
    tsx: { runs: ProcessColdStart[]; median: ProcessColdStart; notes: string };
  };
  process: Record<
    'tsx' | 'bundle',
    | { runs: ProcessColdStart[]; median: ProcessColdStart; bundleBytes?: number; notes: string }
    | { skipped: string }
  >;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./cold-start-child.ts', import.meta.url));
/** As in lib/constructs/keel-function.ts: esbuild's ESM output has no `require`. */
const REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

export async function runColdStartBench(
  fixture: KeelFixture,
  options: ColdStartOptions,
): Promise<ColdStartResult> {
  for (const [name, value] of Object.entries(servingEnvironment())) process.env[name] ??= value;
  const holder = await holderLoads(fixture, options.holderRuns);
  const tsxVariant = {
    command: ['--import', 'tsx', CHILD, '#lambdas/predict/handler.ts'],
    nodeOptions: '',
    notes: 'node --import tsx: TypeScript sources transpiled at load (tsx cache warm), as keel up runs them',
  };
  const tsx = await processRuns(fixture, options.processRuns, tsxVariant);
  const shadow = await startShadowRollout(fixture.registry, fixture.config.modelName);
  let rollout: ColdStartResult['rollout'];
  try {
    rollout = {
      ...shadow,
      holder: {
        runs: options.holderRuns,
        loadMs: summarize(await timeHolderLoads(fixture, options.holderRuns, 'rollout')),
      },
      tsx: await processRuns(fixture, options.processRuns, {
        ...tsxVariant,
        notes: `${tsxVariant.notes}; champion ${shadow.champion} and its shadow challenger ${shadow.challenger} loaded at init`,
      }),
    };
  } finally {
    await endRollout(fixture.registry, {
      name: fixture.config.modelName,
      rolloutId: shadow.rolloutId,
      reason: 'benchmark over',
      actor: 'bench',
    });
  }
  let bundle: ColdStartResult['process']['bundle'];
  if (options.bundle === false) bundle = { skipped: 'disabled' };
  else {
    const directory = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-bundle-')));
    try {
      const built = await buildBundle(directory);
      bundle =
        'skipped' in built
          ? built
          : {
              ...(await processRuns(fixture, options.processRuns, {
                command: [built.child, pathToFileURL(built.handler).href],
                nodeOptions: '--enable-source-maps',
                notes:
                  'esbuild bundle like the Lambda (ESM, minified, source map, onnxruntime-node external), node --enable-source-maps',
              })),
              bundleBytes: built.bytes,
            };
    } finally {
      removeDirectory(directory);
    }
  }
  return {
    modelBytes: fixture.info.model.onnxBytes,
    holder,
    rollout,
    process: { tsx, bundle },
  };
}

const summarize = (loads: number[]) => ({ first: round(loads[0]!, 2), median: round(median(loads), 2) });

/** ModelHolder loads on new runtimes (fresh clients); `rollout`: each must load a challenger too. */
async function timeHolderLoads(
  fixture: KeelFixture,
  runs: number,
  expect: 'champion' | 'rollout',
): Promise<number[]> {
  const { createInferenceRuntime } = await import('#shared/inference/predict-handler.ts');
  const loads: number[] = [];
  for (let i = 0; i < runs; i++) {
    const runtime = createInferenceRuntime(fixture.config, fixture.servers.target);
    try {
      const start = performance.now();
      const serving = await runtime.deps.models.requireServing();
      loads.push(performance.now() - start);
      if (expect === 'rollout' && !serving.challenger)
        throw new Error('the ModelHolder loaded no challenger');
    } finally {
      await runtime.close();
    }
  }
  return loads;
}

async function holderLoads(fixture: KeelFixture, runs: number): Promise<ColdStartResult['holder']> {
  const loads = await timeHolderLoads(fixture, runs, 'champion');
  const parts: HolderParts[] = [];
  for (let i = 0; i < runs; i++) {
    const clients = createAwsClients(fixture.servers.target, SERVING_TIMEOUTS);
    const registry = { ...fixture.registry, s3: clients.s3, dynamo: clients.dynamo };
    try {
      const t0 = performance.now();
      const version = await getChampion(registry, fixture.config.modelName);
      if (!version) throw new Error('no champion');
      const t1 = performance.now();
      const verified = await loadVerifiedModel(registry, {
        name: fixture.config.modelName,
        version,
      });
      const t2 = performance.now();
      sha256Hex(verified.onnx);
      const t3 = performance.now();
      const scorer = await loadOnnxScorer(verified.onnx, {
        featureCount: FEATURE_COUNT,
        featureNames: FEATURE_SET.names,
      });
      const t4 = performance.now();
      await scorer.release();
      parts.push({ aliasMs: t1 - t0, fetchVerifyMs: t2 - t1, sha256Ms: t3 - t2, sessionMs: t4 - t3 });
    } finally {
      clients.s3.destroy();
      clients.dynamo.destroy();
    }
  }
  const roundParts = (p: HolderParts): HolderParts => ({
    aliasMs: round(p.aliasMs, 2),
    fetchVerifyMs: round(p.fetchVerifyMs, 2),
    sha256Ms: round(p.sha256Ms, 2),
    sessionMs: round(p.sessionMs, 2),
  });
  const medianOf = (key: keyof HolderParts) => median(parts.map((p) => p[key]));
  return {
    runs,
    loadMs: summarize(loads),
    parts: {
      first: roundParts(parts[0]!),
      median: roundParts({
        aliasMs: medianOf('aliasMs'),
        fetchVerifyMs: medianOf('fetchVerifyMs'),
        sha256Ms: medianOf('sha256Ms'),
        sessionMs: medianOf('sessionMs'),
      }),
    },
  };
}

async function buildBundle(
  directory: string,
): Promise<{ handler: string; child: string; bytes: number } | { skipped: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    return { skipped: `esbuild is not installed: ${(error as Error).message}` };
  }
  await esbuild.build({
    absWorkingDir: REPO_ROOT,
    entryPoints: { handler: 'lambdas/predict/handler.ts', child: 'bench/cold-start-child.ts' },
    outdir: directory,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    mainFields: ['module', 'main'],
    banner: { js: REQUIRE_BANNER },
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    external: ['onnxruntime-node'],
    logLevel: 'error',
  });
  // The one external package (the Lambda layer's role) resolves through a node_modules next to the bundle.
  await symlink(join(REPO_ROOT, 'node_modules'), join(directory, 'node_modules'), 'dir');
  const handler = join(directory, 'handler.mjs');
  return { handler, child: join(directory, 'child.mjs'), bytes: (await stat(handler)).size };
}

async function processRuns(
  fixture: KeelFixture,
  runs: number,
  variant: { command: string[]; nodeOptions: string; notes: string },
): Promise<{ runs: ProcessColdStart[]; median: ProcessColdStart; notes: string }> {
  const { target, names } = fixture.servers;
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...servingEnvironment(),
    ...resourceEnvironment(names),
    // INFO: the ModelHolder's 'model loaded' line carries its load time.
    POWERTOOLS_LOG_LEVEL: 'INFO',
    AWS_REGION: target.region,
    [AWS_TARGET_ENV.s3]: target.endpoints!.s3,
    [AWS_TARGET_ENV.dynamodb]: target.endpoints!.dynamodb,
    KEEL_MODEL_NAME: fixture.config.modelName,
    NODE_OPTIONS: variant.nodeOptions,
  };
  const results: ProcessColdStart[] = [];
  for (let i = 0; i < runs; i++) results.push(await oneProcess(variant.command, env));
  const med = (key: keyof ProcessColdStart) => {
    const values = results.map((r) => r[key]).filter((v): v is number => v !== null);
    return values.length > 0 ? round(median(values), 1) : null;
  };
  return {
    runs: results,
    median: {
      spawnToFirstAnswerMs: med('spawnToFirstAnswerMs')!,
      bootMs: med('bootMs')!,
      importMs: med('importMs')!,
      modelLoadMs: med('modelLoadMs'),
      firstRequestMs: med('firstRequestMs')!,
      secondRequestMs: med('secondRequestMs')!,
      warmMedianMs: med('warmMedianMs')!,
      rssMb: med('rssMb')!,
    },
    notes: variant.notes,
  };
}

async function oneProcess(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<ProcessColdStart> {
  const started = performance.now();
  const child = trackChild(
    spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  try {
    let firstAt: number | undefined;
    let result: Record<string, number> | undefined;
    let modelLoadMs: number | null = null;
    const tail: string[] = [];
    onLines(child.stdout!, (line) => {
      if (line.startsWith('COLD_FIRST ')) firstAt ??= performance.now();
      else if (line.startsWith('COLD_RESULT ')) result = JSON.parse(line.slice('COLD_RESULT '.length));
      else if (line.includes('"model loaded"')) {
        const loadMs = (JSON.parse(line) as { loadMs?: number }).loadMs;
        if (typeof loadMs === 'number') modelLoadMs = loadMs;
      } else tail.push(line);
    });
    child.stderr!.on('data', (chunk: Buffer) => tail.push(chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    }).finally(() => clearTimeout(killer));
    if (code !== 0 || !result || firstAt === undefined) {
      throw new Error(`cold-start child failed (exit ${code}):\n${tail.slice(-20).join('\n')}`);
    }
    if (result.status !== 200) throw new Error(`cold-start child's first request answered ${result.status}`);
    return {
      spawnToFirstAnswerMs: round(firstAt - started, 1),
      bootMs: round(result.bootMs!, 1),
      importMs: round(result.importMs!, 1),
      modelLoadMs,
      firstRequestMs: round(result.firstRequestMs!, 2),
      secondRequestMs: round(result.secondRequestMs!, 2),
      warmMedianMs: round(result.warmMedianMs!, 2),
      rssMb: round(result.rssMb!, 1),
    };
  } finally {
    await stopChild(child);
  }
}
