/**
 * Scoring speed of a serving-sized model (100 trees of depth 6 over 20 features): onnxruntime single-row
 * latency (what one /predict costs), onnxruntime and in-process JS batch throughput (what batch scoring
 * costs). Run alone with `npx tsx bench/scoring.ts [--quick]`.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Tree, TreeEnsemble } from '#shared/model/model-types.ts';
import { exportOnnx } from '#shared/model/onnx-export.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { createJsScorer } from '#shared/model/scorer.ts';

export interface ScoringBenchOptions {
  /** Timed single-row calls (default 5,000). */
  readonly singleRowCalls?: number;
  /** Timed batches of 1,000 rows per scorer (default 50). */
  readonly batches?: number;
}

/** The short form (`npm run bench -- --quick`). */
export const QUICK_SCORING: ScoringBenchOptions = { singleRowCalls: 1_000, batches: 10 };

export interface ScoringBenchResult {
  model: { trees: number; depth: number; features: number; onnxBytes: number };
  onnxLoadMs: number;
  onnxSingleRow: { calls: number; p50Us: number; p99Us: number; meanUs: number };
  onnxBatch: { batchRows: number; batches: number; rowsPerSecond: number };
  jsBatch: { batchRows: number; batches: number; rowsPerSecond: number };
}

const TREES = 100;
const DEPTH = 6;
const FEATURES = 20;
const SINGLE_ROW_CALLS = 5_000;
const BATCH_ROWS = 1_000;
const BATCHES = 50;
const WARM_UP = 200;

export async function runScoringBench(options: ScoringBenchOptions = {}): Promise<ScoringBenchResult> {
  const singleRowCalls = options.singleRowCalls ?? SINGLE_ROW_CALLS;
  const batches = options.batches ?? BATCHES;
  const rand = mulberry32(42);
  const model: TreeEnsemble = {
    kind: 'tree-ensemble',
    featureCount: FEATURES,
    baseScore: -1.2,
    trees: Array.from({ length: TREES }, () => completeTree(rand)),
  };
  const bytes = exportOnnx(model, { featureNames: Array.from({ length: FEATURES }, (_, i) => `f${i}`) });
  const x = Float32Array.from({ length: BATCH_ROWS * FEATURES }, () => (rand() - 0.5) * 4);

  const loadStart = performance.now();
  const onnx = await loadOnnxScorer(bytes, { featureCount: FEATURES });
  const onnxLoadMs = performance.now() - loadStart;
  const js = createJsScorer(model);
  try {
    const rows = Array.from({ length: BATCH_ROWS }, (_, r) => x.subarray(r * FEATURES, (r + 1) * FEATURES));
    for (let i = 0; i < WARM_UP; i++) await onnx.scoreOne(rows[i % BATCH_ROWS]!);
    const latencies = new Float64Array(singleRowCalls);
    for (let i = 0; i < singleRowCalls; i++) {
      const start = performance.now();
      await onnx.scoreOne(rows[i % BATCH_ROWS]!);
      latencies[i] = (performance.now() - start) * 1000;
    }
    latencies.sort();
    return {
      model: { trees: TREES, depth: DEPTH, features: FEATURES, onnxBytes: bytes.length },
      onnxLoadMs: round(onnxLoadMs),
      onnxSingleRow: {
        calls: singleRowCalls,
        p50Us: round(quantile(latencies, 0.5)),
        p99Us: round(quantile(latencies, 0.99)),
        meanUs: round(latencies.reduce((a, b) => a + b, 0) / singleRowCalls),
      },
      onnxBatch: await batchThroughput((b) => onnx.scoreBatch(b, BATCH_ROWS), x, batches),
      jsBatch: await batchThroughput((b) => js.scoreBatch(b, BATCH_ROWS), x, batches),
    };
  } finally {
    await onnx.release();
  }
}

async function batchThroughput(
  score: (x: Float32Array) => Promise<Float64Array>,
  x: Float32Array,
  batches: number,
) {
  for (let i = 0; i < 5; i++) await score(x);
  const start = performance.now();
  for (let i = 0; i < batches; i++) await score(x);
  const seconds = (performance.now() - start) / 1000;
  return {
    batchRows: BATCH_ROWS,
    batches,
    rowsPerSecond: Math.round((BATCH_ROWS * batches) / seconds),
  };
}

/** A full binary tree of DEPTH levels of splits, nodes in depth-first order. */
function completeTree(rand: () => number): Tree {
  const t: Tree = { feature: [], threshold: [], left: [], right: [], value: [] };
  const grow = (level: number): number => {
    const index = t.feature.length;
    const isLeaf = level === DEPTH;
    t.feature.push(isLeaf ? -1 : Math.floor(rand() * FEATURES));
    t.threshold.push(isLeaf ? 0 : Math.fround((rand() - 0.5) * 4));
    t.left.push(-1);
    t.right.push(-1);
    t.value.push(isLeaf ? (rand() - 0.5) * 0.2 : 0);
    if (!isLeaf) {
      t.left[index] = grow(level + 1);
      t.right[index] = grow(level + 1);
    }
    return index;
  };
  grow(0);
  return t;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (v: number) => Math.round(v * 10) / 10;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
  console.log(JSON.stringify(await runScoringBench(values.quick ? QUICK_SCORING : {}), null, 2));
}
