/**
 * Pipeline throughput on this machine: batch-scoring's core (parsed records → features → onnxruntime
 * predictions) on one core, and the ETL and batch-scoring state machines end to end against the
 * embedded S3 and DynamoDB, with the process's peak memory.
 *
 *   npx tsx bench/pipelines.ts [--rows N] [--etl-rows N] [--out FILE]
 *   node --expose-gc --import tsx bench/pipelines.ts --etl-memory 300000   (heap after GC per ETL chunk)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPipelineRunner } from '#local/pipelines.ts';
import { startLocalServers } from '#local/servers.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import type { BatchRunSummary } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { writeRawData } from '#shared/data/raw-data.ts';
import { type EtlRunSummary, planEtl, processEtlChunk } from '#shared/etl/etl.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET, type RawRecord } from '#shared/features/index.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { getChampion, loadVerifiedModel } from '#shared/registry/registry.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

export interface PipelinesBenchOptions {
  /** Records scored by the in-process core benchmark. */
  readonly scoringRows: number;
  /** Rows of the raw file the ETL state machine processes (and customers batch scoring then scores). */
  readonly etlRows: number;
}

export const QUICK_PIPELINES: PipelinesBenchOptions = { scoringRows: 100_000, etlRows: 10_000 };
export const FULL_PIPELINES: PipelinesBenchOptions = { scoringRows: 1_000_000, etlRows: 1_000_000 };

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

export async function runPipelinesBench(options: PipelinesBenchOptions = FULL_PIPELINES) {
  const home = await mkdtemp(join(tmpdir(), 'keel-bench-pipelines-'));
  const servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  const clients = createAwsClients(servers.target);
  try {
    const runner = await createPipelineRunner({ home, target: servers.target, names: servers.names });
    const raw = await writeRawData(clients.s3, servers.names.raw, {
      rows: options.etlRows,
      seed: 7,
      asOf: new Date(),
    });

    const phase = (message: string) => process.stderr.write(`${message}\n`);
    phase(`ETL state machine on ${options.etlRows.toLocaleString('en')} rows …`);
    const etl = await withPeakRss(async () => {
      const started = performance.now();
      const run = await runner.run<EtlRunSummary>('etl', { inputKey: raw.key });
      if (run.status !== 'SUCCEEDED') throw new Error(`etl ${run.status}: ${run.error?.message}`);
      return { rows: run.output!.rowsRead, seconds: (performance.now() - started) / 1000 };
    });
    phase(`ETL done in ${etl.result.seconds.toFixed(1)} s; retrain …`);
    const retrain = await runner.run('retrain', { promotion: 'always' });
    if (retrain.status !== 'SUCCEEDED')
      throw new Error(`retrain ${retrain.status}: ${retrain.error?.message}`);
    phase('batch-scoring state machine over every customer …');
    const batch = await withPeakRss(async () => {
      const started = performance.now();
      const run = await runner.run<BatchRunSummary>('batch', { segments: 4 });
      if (run.status !== 'SUCCEEDED') throw new Error(`batch ${run.status}: ${run.error?.message}`);
      return { rows: run.output!.rows, seconds: (performance.now() - started) / 1000 };
    });

    phase(`batch done in ${batch.result.seconds.toFixed(1)} s; scoring core …`);
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
      featureFingerprint: FEATURE_SET.fingerprint,
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
        peakRssMb: etl.peakRssMb,
      },
      batchStateMachine: {
        rows: batch.result.rows,
        rowsPerSecond: rate(batch.result),
        seconds: batch.result.seconds,
        peakRssMb: batch.peakRssMb,
      },
      note: 'ETL and batch run in one process with the embedded DynamoDB (dynalite), whose writes and scans bound their rates here',
    };
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
    await servers.close();
    await rm(home, { recursive: true, force: true });
  }
}

export type PipelinesBenchResult = Awaited<ReturnType<typeof runPipelinesBench>> & {
  /** The child process's peak resident memory over the whole run (getrusage maxrss). */
  readonly processPeakRssMb: number;
};

/**
 * {@link runPipelinesBench} in a fresh Node process, so its peak memory is the pipelines' own (embedded
 * servers + runner + handlers), not whatever earlier sections left in the bench's heap.
 */
export async function runPipelinesBenchInChild(
  options: PipelinesBenchOptions,
  log: (line: string) => void,
): Promise<PipelinesBenchResult> {
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
    return JSON.parse(await readFile(out, 'utf8')) as PipelinesBenchResult;
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
      out: { type: 'string' },
    },
  });
  if (values['etl-memory']) {
    console.log(JSON.stringify(await runEtlMemoryProfile(Number(values['etl-memory']), 50_000), null, 2));
    process.exit(0);
  }
  const result = await runPipelinesBench({
    scoringRows: Number(values.rows ?? FULL_PIPELINES.scoringRows),
    etlRows: Number(values['etl-rows'] ?? FULL_PIPELINES.etlRows),
  });
  const withPeak = { ...result, processPeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
  const json = JSON.stringify(withPeak, null, 2);
  if (values.out) await writeFile(values.out, json);
  else console.log(json);
  process.exit(0);
}
