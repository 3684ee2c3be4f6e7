/**
 * Pipeline throughput on this machine: batch-scoring's core (parsed records → features → onnxruntime
 * predictions) on one core, the ETL and batch-scoring state machines end to end against the embedded
 * S3 and DynamoDB, and, in the same run, what that DynamoDB sustains with no Keel code around it
 * (bench/store-rates.ts), which the state machines' rates are read against. Peak RSS of every process:
 * this one (the embedded servers, the rules proxies, the state-machine runner) and each Lambda-like
 * environment.
 *
 *   npx tsx bench/pipelines.ts [--rows N] [--etl-rows N] [--baseline-rows N] [--out FILE]
 *   node --expose-gc --import tsx bench/pipelines.ts --etl-memory 300000   (heap after GC per ETL chunk)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '#lib/paths.ts';
import { functionOf, loadLocalDeployment } from '#local/deployment/deployment.ts';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import { startLocalServers } from '#local/servers.ts';
import type { AslDefinition } from '#local/state-machines.ts';
import { type StorageProcess, startStorageProcess } from '#local/storage-process.ts';
import { type AwsTarget, createAwsClients } from '#shared/aws/clients.ts';
import type { BatchRunSummary } from '#shared/batch/batch.ts';
import { loadKeelConfig } from '#shared/config/keel-config.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { writeRawData } from '#shared/data/raw-data.ts';
import { KEEL_ENV } from '#shared/env.ts';
import type { EtlRunSummary } from '#shared/etl/etl.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET, type RawRecord } from '#shared/features/index.ts';
import { WRITES_IN_FLIGHT } from '#shared/online-store/store.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import { getChampion, loadVerifiedModel } from '#shared/registry/registry.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { type ProcessPeak, peaksByLabel, processCpuSeconds, watchProcessPeaks } from './process-peaks.ts';
import { measureScan, measureWrites, STORE_CLIENT_ENV } from './store-rates.ts';

export interface PipelinesBenchOptions {
  /** Records scored by the in-process core benchmark. */
  readonly scoringRows: number;
  /** Rows of the raw file the ETL state machine processes (and customers batch scoring then scores). */
  readonly etlRows: number;
  /**
   * Rows of a second run, in a process of its own, whose peak RSS per process the main run's is compared
   * with: memory bounded by the chunk does not grow with the file.
   *
   * @default - none
   */
  readonly baselineRows?: number;
}

export const QUICK_PIPELINES: PipelinesBenchOptions = { scoringRows: 100_000, etlRows: 10_000 };
export const FULL_PIPELINES: PipelinesBenchOptions = {
  scoringRows: 1_000_000,
  etlRows: 1_000_000,
  baselineRows: 250_000,
};

/** Peak resident memory of this process while `work` runs, sampled every 50 ms. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ result: T; peakRssMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakRssMb: Math.round(peak / 2 ** 20) };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Memory of the ETL chunk step over a whole file: V8 heap in use after a full GC, after each chunk.
 * Flat means bounded by the chunk, whatever the file size (RSS alone mostly shows how lazily V8 collects).
 * Needs `node --expose-gc`; without it the heap figures are null.
 */
export async function runEtlMemoryProfile(rows: number, chunkRows: number) {
  const home = await mkdtemp(join(tmpdir(), 'keel-bench-etl-memory-'));
  const servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  const clients = createAwsClients(servers.target);
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    const raw = await writeRawData(clients.s3, servers.names.raw, { rows, seed: 3, asOf: new Date() });
    const deps = {
      s3: clients.s3,
      dynamo: clients.dynamo,
      rawBucket: servers.names.raw,
      featuresBucket: servers.names.features,
      onlineTable: servers.names.onlineFeatures,
    };
    const { planEtl, processEtlChunk } = await import('#shared/etl/etl.ts');
    const plan = await planEtl(deps, { inputKey: raw.key, chunkRows });
    const chunks: { rowsDone: number; heapUsedMb: number | null; rssMb: number }[] = [];
    let rowsDone = 0;
    for (const chunk of plan.chunks) {
      rowsDone += (await processEtlChunk(deps, plan, chunk)).rows;
      gc?.();
      const memory = process.memoryUsage();
      chunks.push({
        rowsDone,
        heapUsedMb: gc ? Math.round(memory.heapUsed / 2 ** 20) : null,
        rssMb: Math.round(memory.rss / 2 ** 20),
      });
    }
    return { rows, chunkRows, chunks };
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
    await servers.close();
    await rm(home, { recursive: true, force: true });
  }
}

/** Runs `work` with KEEL_CAPTURE_SAMPLE_RATE set, which the functions' environments take over their own. */
async function withCaptureSampleRate<T>(rate: number, work: () => Promise<T>): Promise<T> {
  const name = KEEL_ENV.captureSampleRate;
  const before = process.env[name];
  process.env[name] = String(rate);
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

/**
 * Where a state machine's time went, from when its tasks finished: the plan task (with its
 * environment's cold start), the Map's items (cold starts of their environments included), and the
 * finalize task; the Map's rate is the rows over its own time only.
 */
async function timedRun<T>(
  runner: PipelineRunner,
  pipeline: 'etl' | 'batch',
  input: Record<string, unknown>,
  rowsOf: (output: T) => number,
  /** The storage process, whose CPU time the run's is. */
  storagePid: number,
) {
  const { states } = PIPELINES[pipeline];
  const started = performance.now();
  const cpu = processCpuSeconds(storagePid);
  const at = (time: number) => (time - started) / 1000;
  let planned = started;
  let lastItem = started;
  const run = await runner.run<T>(pipeline, input, (state) => {
    if (state === states.plan) planned = performance.now();
    else if (state === ('chunk' in states ? states.chunk : states.score)) lastItem = performance.now();
  });
  if (run.status !== 'SUCCEEDED') throw new Error(`${pipeline} ${run.status}: ${run.error?.message}`);
  const seconds = at(performance.now());
  const serverCpuSeconds = Math.round((processCpuSeconds(storagePid) - cpu) * 10) / 10;
  const rows = rowsOf(run.output!);
  const mapSeconds = at(lastItem) - at(planned);
  return {
    rows,
    seconds,
    phases: {
      planSeconds: at(planned),
      mapSeconds,
      finalizeSeconds: seconds - at(lastItem),
      mapRowsPerSecond: Math.round(rows / mapSeconds),
    },
    /** CPU time of the storage process (S3, DynamoDB, the rules proxies) during the run. */
    serverCpuSeconds,
  };
}

/** The label of the storage process among the peaks. */
const STORAGE_PROCESS = 'storage process';

const storagePeak = (peaks: readonly ProcessPeak[]) =>
  peaks.find((p) => p.label === STORAGE_PROCESS)?.peakRssMb ?? 0;

/** The ETL's Map concurrency in the synthesized local stage (the chunks one run processes at a time). */
function etlMapConcurrency(definition: AslDefinition): number {
  const map = definition.States[PIPELINES.etl.states.chunks] as { MaxConcurrency?: number } | undefined;
  if (!map?.MaxConcurrency) throw new Error('the ETL state machine has no Map state with a MaxConcurrency');
  return map.MaxConcurrency;
}

export async function runPipelinesBench(options: PipelinesBenchOptions = FULL_PIPELINES) {
  const home = await mkdtemp(join(tmpdir(), 'keel-bench-pipelines-'));
  const deployment = await loadLocalDeployment();
  // Each environment by its task (`etl#chunk`), each store client as such.
  const taskOf = new Map(
    [...deployment.functions.values()].map((fn) => [
      fn.name,
      `${fn.entry?.split('/').at(-2) ?? fn.name}#${fn.handler}`,
    ]),
  );
  let servers: StorageProcess | undefined;
  const peaks = watchProcessPeaks((environment, pid) => {
    const fn = environment.get('AWS_LAMBDA_FUNCTION_NAME');
    if (fn) return taskOf.get(fn) ?? fn;
    if (pid === servers?.pid()) return STORAGE_PROCESS;
    return environment.has(STORE_CLIENT_ENV) ? 'store-rates client' : undefined;
  });
  // As keel up runs it: the storage (S3, DynamoDB, the rules proxies) in a process of its own.
  servers = await startStorageProcess({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  const clients = createAwsClients(servers.target);
  try {
    const runner = await createPipelineRunner({
      home,
      target: servers.target,
      names: servers.names,
      deployment,
    });
    const raw = await writeRawData(clients.s3, servers.names.raw, {
      rows: options.etlRows,
      seed: 7,
      asOf: new Date(),
    });
    // The raw file is the fixture (`keel data generate` writes it from a process of its own): the
    // runner's peak is the pipelines'.
    peaks.resetSelf();

    const storagePid = servers.pid()!;
    const phase = (message: string) => process.stderr.write(`${message}\n`);
    phase(`ETL state machine on ${options.etlRows.toLocaleString('en')} rows …`);
    const etl = await withPeakRss(() =>
      timedRun<EtlRunSummary>(runner, 'etl', { inputKey: raw.key }, (output) => output.rowsRead, storagePid),
    );
    phase(`ETL done in ${etl.result.seconds.toFixed(1)} s; retrain …`);
    const retrain = await runner.run('retrain', { promotion: 'always' });
    if (retrain.status !== 'SUCCEEDED')
      throw new Error(`retrain ${retrain.status}: ${retrain.error?.message}`);
    phase('batch-scoring state machine over every customer …');
    const segments = 4;
    const batch = await withPeakRss(() =>
      timedRun<BatchRunSummary>(runner, 'batch', { segments }, (output) => output.rows, storagePid),
    );
    // The pipelines' own peaks, before the environments are reaped and before the store's rates are measured.
    const pipelinePeaks = peaks.snapshot();

    // The local stage captures every scored row for the drift job; config/prod.json a share of them.
    const sampleRate = loadKeelConfig({ root: REPO_ROOT, stage: 'prod' }).capture.batchSampleRate;
    phase(`batch done in ${batch.result.seconds.toFixed(1)} s; again, capturing a share of ${sampleRate} …`);
    const { target, names } = servers;
    const sampled = await withCaptureSampleRate(sampleRate, async () => {
      // Environments of their own: the variable is read when they start.
      const sampledRunner = await createPipelineRunner({ home, target, names, deployment });
      try {
        return await timedRun<BatchRunSummary>(
          sampledRunner,
          'batch',
          { segments },
          (output) => output.rows,
          storagePid,
        );
      } finally {
        await sampledRunner.close();
      }
    });
    phase(`sampled batch done in ${sampled.seconds.toFixed(1)} s; the store's own rates …`);
    // The same table, the same concurrency, the same endpoint (the rules proxy, with the tasks' roles) as
    // the pipelines; then dynalite's own endpoint. The scans read what the batch run read; the writes
    // add items of their own (fresh keys, as the ETL's were), after it.
    const roleOf = (entry: string, handler: string) => {
      const fn = functionOf(deployment, entry, handler);
      return { arn: fn.roleArn, session: fn.name };
    };
    const store = (target: AwsTarget, role?: { arn: string; session: string }) => ({
      endpoint: target.endpoints!.dynamodb,
      region: target.region,
      table: servers.names.onlineFeatures,
      serverPid: storagePid,
      ...(role ? { role } : {}),
    });
    const scanRole = roleOf('lambdas/batch/handler.ts', 'score');
    const writeRole = roleOf('lambdas/etl/handler.ts', 'chunk');
    const scanners = { processes: segments, inFlight: 1 };
    const writers = { processes: etlMapConcurrency(runner.definitions.etl), inFlight: WRITES_IN_FLIGHT };
    const storeRates = {
      scan: {
        proxy: await measureScan({ ...store(servers.target, scanRole), ...scanners }),
        direct: await measureScan({ ...store(servers.emulators), ...scanners }),
      },
      write: {
        proxy: await measureWrites(
          { ...store(servers.target, writeRole), ...writers },
          options.etlRows,
          'bench-proxy-',
        ),
        direct: await measureWrites(
          { ...store(servers.emulators), ...writers },
          options.etlRows,
          'bench-direct-',
        ),
      },
    };
    await runner.close();
    const storeRatesPeaks = peaks.stop();

    phase('scoring core …');
    // Only now is onnxruntime loaded here: the figures above are those of the servers and the runner.
    const { loadOnnxScorer } = await import('#shared/model/onnx-runtime.ts');
    // The scoring core: what each batch segment does per page, without DynamoDB.
    const registry = {
      s3: clients.s3,
      dynamo: clients.dynamo,
      bucket: servers.names.models,
      table: servers.names.modelRegistry,
    };
    const version = (await getChampion(registry, 'churn'))!;
    const { onnx } = await loadVerifiedModel(registry, {
      name: 'churn',
      version,
    });
    const scorer = await loadOnnxScorer(onnx, {
      featureCount: FEATURE_COUNT,
      featureNames: FEATURE_SET.names,
    });
    const page = 1000;
    const records: RawRecord[] = [];
    for (const { churned: _label, ...record } of generateRecords({
      rows: page * 10,
      seed: 9,
      asOf: new Date(),
    }))
      records.push(record);
    const x = new Float32Array(page * FEATURE_COUNT);
    const core = await withPeakRss(async () => {
      const started = performance.now();
      let scored = 0;
      let positives = 0;
      while (scored < options.scoringRows) {
        const slice = records.slice(scored % records.length, (scored % records.length) + page);
        slice.forEach((record, i) => {
          encodeInto(record, x, i * FEATURE_COUNT);
        });
        const probabilities = await scorer.scoreBatch(
          x.subarray(0, slice.length * FEATURE_COUNT),
          slice.length,
        );
        for (const p of probabilities) if (p >= 0.5) positives++;
        scored += slice.length;
      }
      return { rows: scored, positives, seconds: (performance.now() - started) / 1000 };
    });
    await scorer.release();

    const rate = (r: { rows: number; seconds: number }) => Math.round(r.rows / r.seconds);
    return {
      scoringCore: {
        rows: core.result.rows,
        rowsPerSecond: rate(core.result),
        target: 200_000,
        peakRssMb: core.peakRssMb,
      },
      etlStateMachine: {
        rows: etl.result.rows,
        rowsPerSecond: rate(etl.result),
        seconds: etl.result.seconds,
        phases: etl.result.phases,
        serverCpuSeconds: etl.result.serverCpuSeconds,
        peakRssMb: etl.peakRssMb,
      },
      batchStateMachine: {
        rows: batch.result.rows,
        rowsPerSecond: rate(batch.result),
        seconds: batch.result.seconds,
        phases: batch.result.phases,
        serverCpuSeconds: batch.result.serverCpuSeconds,
        peakRssMb: batch.peakRssMb,
        /** The same run with config/prod.json's share of rows captured instead of every row. */
        sampledCapture: {
          sampleRate,
          rowsPerSecond: rate(sampled),
          seconds: sampled.seconds,
          serverCpuSeconds: sampled.serverCpuSeconds,
        },
      },
      storeRates,
      ratios: {
        etlToRawWrite: rate(etl.result) / storeRates.write.proxy.rowsPerSecond,
        batchToRawScan: rate(batch.result) / storeRates.scan.proxy.rowsPerSecond,
        sampledBatchToRawScan: rate(sampled) / storeRates.scan.proxy.rowsPerSecond,
        target: 0.8,
      },
      /** Peak RSS of each kind of process of the pipelines (the largest of its kind), up to the batch run's end. */
      processes: peaksByLabel(pipelinePeaks),
      /** The storage process's (S3, DynamoDB, rules proxies) peak RSS up to the batch run's end. */
      processPeakRssMb: storagePeak(pipelinePeaks),
      /** The same after the store's own rates were measured (its clients' load on the servers). */
      storeRatesPeakRssMb: storagePeak(storeRatesPeaks),
      note: 'ETL and batch run against the embedded DynamoDB (dynalite) in the storage process, one event loop with the rules proxies and S3, as keel up runs it; the runner is this process (its peak from the start of the ETL: it writes the raw file before); the store rates are its own, measured in the same run',
    };
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
    await servers.close();
    await rm(home, { recursive: true, force: true });
  }
}

/** One run's figures. */
export type PipelinesRunResult = Awaited<ReturnType<typeof runPipelinesBench>>;

/** How each kind of process's peak RSS changed from the baseline run's file to the main run's. */
export interface MemoryGrowth {
  readonly baselineRows: number;
  readonly rows: number;
  readonly processes: readonly {
    readonly label: string;
    readonly baselinePeakRssMb: number;
    readonly peakRssMb: number;
    /** peak / baseline peak − 1 */
    readonly growth: number;
    /** The same for the anonymous memory alone (see ProcessPeak.peakAnonMb). */
    readonly baselinePeakAnonMb: number;
    readonly peakAnonMb: number;
  }[];
  readonly target: { readonly maxPeakRssMb: number; readonly maxGrowth: number };
}

export type PipelinesBenchResult = PipelinesRunResult & { readonly memoryGrowth?: MemoryGrowth };

/** Rows the baseline run's scoring core scores: its figures are the main run's, only its memory counts. */
const BASELINE_SCORING_ROWS = 10_000;

/**
 * {@link runPipelinesBench} in a fresh Node process, so its peak memory is the pipelines' own (embedded
 * servers + runner + handlers), not whatever earlier sections left in the bench's heap; with
 * `baselineRows`, a smaller run first, in a process of its own, for {@link MemoryGrowth}.
 */
export async function runPipelinesBenchInChild(
  options: PipelinesBenchOptions,
  log: (line: string) => void,
): Promise<PipelinesBenchResult> {
  const baseline =
    options.baselineRows === undefined
      ? undefined
      : await runOnceInChild({ scoringRows: BASELINE_SCORING_ROWS, etlRows: options.baselineRows }, log);
  const main = await runOnceInChild(options, log);
  if (!baseline || options.baselineRows === undefined) return main;
  const before = new Map(baseline.processes.map((p) => [p.label, p]));
  return {
    ...main,
    memoryGrowth: {
      baselineRows: options.baselineRows,
      rows: options.etlRows,
      processes: main.processes.flatMap(({ label, peakRssMb, peakAnonMb }) => {
        const base = before.get(label);
        return base === undefined
          ? []
          : [
              {
                label,
                baselinePeakRssMb: base.peakRssMb,
                peakRssMb,
                growth: peakRssMb / base.peakRssMb - 1,
                baselinePeakAnonMb: base.peakAnonMb,
                peakAnonMb,
              },
            ];
      }),
      target: { maxPeakRssMb: 512, maxGrowth: 0.1 },
    },
  };
}

async function runOnceInChild(
  options: PipelinesBenchOptions,
  log: (line: string) => void,
): Promise<PipelinesRunResult> {
  const directory = await mkdtemp(join(tmpdir(), 'keel-bench-pipelines-out-'));
  const out = join(directory, 'pipelines.json');
  const script = fileURLToPath(import.meta.url);
  const args = [
    '--import',
    'tsx',
    script,
    '--rows',
    `${options.scoringRows}`,
    '--etl-rows',
    `${options.etlRows}`,
  ];
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [...args, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        for (const line of text.split('\n')) if (line.trim()) log(`  ${line.trim()}`);
      });
      child.once('error', reject).once('exit', resolve);
    });
    if (code !== 0) throw new Error(`bench/pipelines.ts exited with ${code}`);
    return JSON.parse(await readFile(out, 'utf8')) as PipelinesRunResult;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      'etl-rows': { type: 'string' },
      'etl-memory': { type: 'string' },
      'baseline-rows': { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values['baseline-rows']) {
    // Both runs in processes of their own, as `npm run bench` runs them.
    const result = await runPipelinesBenchInChild(
      {
        scoringRows: Number(values.rows ?? FULL_PIPELINES.scoringRows),
        etlRows: Number(values['etl-rows'] ?? FULL_PIPELINES.etlRows),
        baselineRows: Number(values['baseline-rows']),
      },
      (line) => process.stderr.write(`${line}\n`),
    );
    const json = JSON.stringify(result, null, 2);
    if (values.out) await writeFile(values.out, json);
    else console.log(json);
    process.exit(0);
  }
  if (values['etl-memory']) {
    console.log(JSON.stringify(await runEtlMemoryProfile(Number(values['etl-memory']), 50_000), null, 2));
    process.exit(0);
  }
  const result = await runPipelinesBench({
    scoringRows: Number(values.rows ?? FULL_PIPELINES.scoringRows),
    etlRows: Number(values['etl-rows'] ?? FULL_PIPELINES.etlRows),
  });
  const json = JSON.stringify(result, null, 2);
  if (values.out) await writeFile(values.out, json);
  else console.log(json);
  process.exit(0);
}
