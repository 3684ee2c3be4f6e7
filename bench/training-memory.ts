/**
 * The retrain function's memory wall: training on the offline dataset as the retrain reads it, through
 * the real reading code against the embedded S3, each run in a child process of its own whose wall time
 * and peak RSS (getrusage maxRSS) are recorded. Two paths at each size:
 *
 * - in-memory: `readFeatureDataset` (every row as float32) → `trainCandidate` (the path before bounded
 *   training; still what callers holding a matrix use);
 * - bounded: `readTrainingSample` (two streaming passes, binned rows, a stratified sample of at most the
 *   cap) → `trainCandidateOnSample`, what `trainAndRegister` (the retrain task, `keel train`, `keel up`)
 *   runs.
 *
 * Both with the retrain's defaults (100 trees at most, depth 6, early stopping after 10 rounds). The S3
 * server runs in this process, so a child's peak is its own: Node, tsx, onnxruntime and the training.
 *
 *   npx tsx bench/training-memory.ts [--sizes 100000,1000000] [--cap 1000000] [--out FILE]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalServers } from '#local/servers.ts';
import { type AwsTarget, createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import { DEFAULT_GBDT_PARAMS } from '#shared/model/gbdt.ts';
import { offlineDatasetHeader, offlineRow, readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { DEFAULT_MAX_TRAINING_ROWS } from '#shared/training/limits.ts';
import { readTrainingSample } from '#shared/training/sample.ts';
import {
  type Candidate,
  DEFAULT_TEST_SHARE,
  trainCandidate,
  trainCandidateOnSample,
} from '#shared/training/train.ts';

export type TrainingPath = 'in-memory' | 'bounded';

export interface TrainingMemoryOptions {
  /** Dataset sizes (rows), each trained on by both paths unless it is above `inMemoryMaxRows`. */
  readonly sizes: readonly number[];
  /** The bounded path's cap (`retrain.maxTrainingRows`). */
  readonly cap: number;
  /**
   * The largest size the in-memory path is run at (its memory grows with the rows).
   * @default - every size
   */
  readonly inMemoryMaxRows?: number;
}

export const FULL_TRAINING_MEMORY: TrainingMemoryOptions = {
  sizes: [100_000, 1_000_000, 2_000_000, 4_000_000],
  cap: DEFAULT_MAX_TRAINING_ROWS,
};
/** CI's: small sizes, a cap below the larger one, so both paths and the sampling still run. */
export const QUICK_TRAINING_MEMORY: TrainingMemoryOptions = { sizes: [10_000, 40_000], cap: 20_000 };

export interface TrainingRun {
  readonly path: TrainingPath;
  readonly rows: number;
  readonly cap: number | null;
  /** Rows trained and evaluated on (fitted + held out). */
  readonly rowsUsed: number;
  readonly readS: number;
  readonly trainS: number;
  /** Spawn to exit, Node's start included. */
  readonly wallS: number;
  readonly peakRssMb: number;
  /** RSS once the modules are loaded, before any row is read. */
  readonly startRssMb: number;
  readonly auc: number;
  readonly trees: number;
}

/** The 3,008 MB / 15 minute function, extrapolated linearly from the in-memory path's two largest runs. */
export interface LambdaWall {
  readonly memoryMb: number;
  readonly timeoutS: number;
  /** MB and seconds per million rows (the slope between the two largest in-memory runs). */
  readonly mbPerMillionRows: number;
  readonly sPerMillionRows: number;
  /** Rows at which the in-memory path reaches the memory and the time limit. */
  readonly memoryWallRows: number;
  readonly timeWallRows: number;
  readonly fails: 'memory' | 'time';
  /** The bounded path: its time per million rows read (both passes) and its time wall at the cap. */
  readonly bounded: { readonly sPerMillionRowsRead: number; readonly timeWallRows: number } | null;
}

export interface TrainingMemoryResult {
  readonly cap: number;
  readonly runs: TrainingRun[];
  readonly wall: LambdaWall | null;
  /**
   * Bounded path, peak RSS with the most rows in ÷ with the fewest at or above the cap: the same rows are
   * trained on, so anything above 1 grows with the dataset (GC timing moves a peak by some 10% either way).
   */
  readonly boundedGrowth: number | null;
  /** os.loadavg() (1 minute) before and after: the times are as slow as the machine was busy. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

const LAMBDA_MEMORY_MB = 3_008;
const LAMBDA_TIMEOUT_S = 900;
const PART_ROWS = 250_000;
const AS_OF = new Date('2026-11-01T00:00:00Z');

/** Writes `rows` generated customers as offline dataset parts under a prefix of their own. */
async function writeDataset(s3: ReturnType<typeof createAwsClients>['s3'], bucket: string, rows: number) {
  const prefix = `features/run_date=2026-11-01/bench-${rows}/`;
  const header = offlineDatasetHeader(true);
  let lines: string[] = [];
  let part = 0;
  const flush = async () => {
    const key = `${prefix}part-${String(part++).padStart(5, '0')}.csv`;
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${[header, ...lines].join('\n')}\n` }),
    );
    lines = [];
  };
  for (const record of generateRecords({ rows, seed: 18, asOf: AS_OF })) {
    lines.push(offlineRow(record, true));
    if (lines.length === PART_ROWS) await flush();
  }
  if (lines.length > 0) await flush();
  return prefix;
}

export async function runTrainingMemoryBench(
  options: TrainingMemoryOptions,
  log: (line: string) => void = () => {},
): Promise<TrainingMemoryResult> {
  const loadStart = loadavg()[0]!;
  const home = await mkdtemp(join(tmpdir(), 'keel-bench-training-memory-'));
  const servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
  const clients = createAwsClients(servers.target);
  const runs: TrainingRun[] = [];
  try {
    for (const rows of options.sizes) {
      const prefix = await writeDataset(clients.s3, servers.names.features, rows);
      const paths: TrainingPath[] =
        rows <= (options.inMemoryMaxRows ?? Infinity) ? ['in-memory', 'bounded'] : ['bounded'];
      for (const path of paths) {
        const spec: ChildSpec = {
          path,
          rows,
          cap: options.cap,
          prefix,
          bucket: servers.names.features,
          target: servers.target,
        };
        const run = await runChild(spec);
        log(
          `${path} ${rows.toLocaleString('en-US')} rows: ${run.wallS} s, peak RSS ${run.peakRssMb} MiB, ${run.rowsUsed.toLocaleString('en-US')} rows used, AUC ${run.auc}`,
        );
        runs.push(run);
      }
    }
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
    await servers.close();
    await rm(home, { recursive: true, force: true });
  }
  const bounded = runs
    .filter((r) => r.path === 'bounded' && r.rows >= options.cap)
    .sort((a, b) => a.rows - b.rows);
  return {
    cap: options.cap,
    runs,
    wall: lambdaWall(runs),
    boundedGrowth: bounded.length < 2 ? null : round(bounded.at(-1)!.peakRssMb / bounded[0]!.peakRssMb, 3),
    loadAverage: { start: round(loadStart, 2), end: round(loadavg()[0]!, 2) },
  };
}

/** Linear in the rows through the two largest runs of a path: what it costs per million, and where it ends. */
function slope(runs: readonly TrainingRun[], value: (run: TrainingRun) => number) {
  const [a, b] = [...runs].sort((p, q) => p.rows - q.rows).slice(-2);
  if (!a || !b || a.rows === b.rows) return null;
  const perRow = (value(b) - value(a)) / (b.rows - a.rows);
  return { perRow, at: (limit: number) => Math.floor(b.rows + (limit - value(b)) / perRow) };
}

/** Below this many rows the start of Node dominates: no slope worth extrapolating (the quick profile). */
const MIN_WALL_ROWS = 1_000_000;

function lambdaWall(runs: readonly TrainingRun[]): LambdaWall | null {
  const inMemory = runs.filter((r) => r.path === 'in-memory');
  if (!inMemory.some((r) => r.rows >= MIN_WALL_ROWS)) return null;
  const memory = slope(inMemory, (r) => r.peakRssMb);
  const time = slope(inMemory, (r) => r.wallS);
  if (!memory || !time) return null;
  const memoryWallRows = memory.at(LAMBDA_MEMORY_MB);
  const timeWallRows = time.at(LAMBDA_TIMEOUT_S);
  // Above the cap the bounded path's training is the same; what grows is the reading (two passes).
  const read = slope(
    runs.filter((r) => r.path === 'bounded' && r.cap !== null && r.rows >= r.cap),
    (r) => r.wallS,
  );
  return {
    memoryMb: LAMBDA_MEMORY_MB,
    timeoutS: LAMBDA_TIMEOUT_S,
    mbPerMillionRows: round(memory.perRow * 1e6, 1),
    sPerMillionRows: round(time.perRow * 1e6, 1),
    memoryWallRows,
    timeWallRows,
    fails: memoryWallRows <= timeWallRows ? 'memory' : 'time',
    bounded: read
      ? { sPerMillionRowsRead: round(read.perRow * 1e6, 1), timeWallRows: read.at(LAMBDA_TIMEOUT_S) }
      : null,
  };
}

interface ChildSpec {
  readonly path: TrainingPath;
  readonly rows: number;
  readonly cap: number;
  readonly prefix: string;
  readonly bucket: string;
  readonly target: AwsTarget;
}

async function runChild(spec: ChildSpec): Promise<TrainingRun> {
  const started = performance.now();
  const script = fileURLToPath(import.meta.url);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, '--child', JSON.stringify(spec)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
      });
      child.once('error', reject).once('exit', (code) => resolve({ code, stdout, stderr }));
    },
  );
  if (code !== 0) {
    throw new Error(
      `${spec.path} at ${spec.rows} rows exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Omit<TrainingRun, 'wallS'>;
  return { ...out, wallS: round((performance.now() - started) / 1000, 1) };
}

/** In the child: one training, then its figures as the last line of stdout. */
async function child(spec: ChildSpec): Promise<Omit<TrainingRun, 'wallS'>> {
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  const startRssMb = mb(process.memoryUsage().rss);
  const { s3 } = createAwsClients(spec.target);
  const options = { datasetUri: `s3://${spec.bucket}/${spec.prefix}`, parent: null };
  const t0 = performance.now();
  let candidate: Candidate;
  let rowsUsed: number;
  let readS: number;
  if (spec.path === 'in-memory') {
    const data = await readFeatureDataset(s3, spec.bucket, spec.prefix, FEATURE_SET);
    readS = (performance.now() - t0) / 1000;
    candidate = await trainCandidate(data, options);
    rowsUsed = data.rows;
  } else {
    const sample = await readTrainingSample(s3, spec.bucket, spec.prefix, FEATURE_SET, {
      cap: spec.cap,
      seed: 42,
      testShare: DEFAULT_TEST_SHARE,
      maxBins: DEFAULT_GBDT_PARAMS.maxBins,
    });
    readS = (performance.now() - t0) / 1000;
    candidate = await trainCandidateOnSample(sample, FEATURE_SET, options);
    rowsUsed = sample.info.rows_used;
  }
  const trainS = (performance.now() - t0) / 1000 - readS;
  s3.destroy();
  return {
    path: spec.path,
    rows: spec.rows,
    cap: spec.path === 'bounded' ? spec.cap : null,
    rowsUsed,
    readS: round(readS, 1),
    trainS: round(trainS, 1),
    // getrusage: the kernel's high-water mark, in KiB on Linux.
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    startRssMb,
    auc: round(candidate.evaluation.auc, 4),
    trees: candidate.model.kind === 'tree-ensemble' ? candidate.model.trees.length : 0,
  };
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      sizes: { type: 'string' },
      cap: { type: 'string' },
      'in-memory-max-rows': { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.child) {
    console.log(JSON.stringify(await child(JSON.parse(values.child) as ChildSpec)));
    process.exit(0);
  }
  const result = await runTrainingMemoryBench(
    {
      sizes: values.sizes ? values.sizes.split(',').map(Number) : FULL_TRAINING_MEMORY.sizes,
      cap: Number(values.cap ?? FULL_TRAINING_MEMORY.cap),
      inMemoryMaxRows: values['in-memory-max-rows'] ? Number(values['in-memory-max-rows']) : undefined,
    },
    (line) => process.stderr.write(`${line}\n`),
  );
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (values.out) await writeFile(values.out, json);
  else process.stdout.write(json);
  process.exit(0);
}
