/**
 * Training benchmark: Keel's GBDT against XGBoost with the reference FastAPI service's parameters
 * (100 trees, depth 6, learning rate 0.1, hist, one thread) on exactly the same float32 matrix and the
 * same 80/20 stratified split. Targets: held-out AUC within 0.005 of XGBoost's, train time within 3x.
 *
 *   npx tsx bench/training.ts [--rows 100000] [--seed 42] [--repeats 1] [--no-xgboost]
 *
 * XGBoost runs through Debian's /usr/bin/python3 (apt-get install python3-xgboost python3-sklearn);
 * when it is not importable that side is skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT } from '#shared/features/index.ts';
import { type Dataset, takeRows } from '#shared/model/dataset.ts';
import { requireInteger } from '#shared/model/errors.ts';
import { trainGbdt } from '#shared/model/gbdt.ts';
import { auc, stratifiedSplit } from '#shared/model/metrics.ts';
import { ensembleMargin } from '#shared/model/model-types.ts';

export interface TrainingBenchOptions {
  readonly rows?: number;
  readonly seed?: number;
  /** Fits per side; the median time is reported. */
  readonly repeats?: number;
  readonly python?: string;
  /** false skips the XGBoost side. */
  readonly xgboost?: boolean;
}

export interface TrainingBenchResult {
  rows: number;
  features: number;
  trainRows: number;
  testRows: number;
  churnRate: number;
  repeats: number;
  params: typeof SEED_PARAMS;
  keel: { trainMs: number; auc: number; trees: number };
  xgboost: { trainMs: number; auc: number; version: string } | { skipped: string };
  /** keel / xgboost train time, and keel - xgboost AUC; null when XGBoost was skipped. */
  ratios: { trainTime: number; aucDifference: number } | null;
}

/** The reference service's train.py: XGBClassifier(n_estimators=100, max_depth=6, learning_rate=0.1, hist,
 * nthread=1). */
const SEED_PARAMS = { nTrees: 100, maxDepth: 6, learningRate: 0.1 } as const;
const TEST_SHARE = 0.2;
/** Generated records carry event times; they do not enter the features. */
const AS_OF = new Date('2026-01-01T00:00:00Z');

export function runTrainingBench(options: TrainingBenchOptions = {}): TrainingBenchResult {
  const rows = options.rows ?? 100_000;
  const seed = options.seed ?? 42;
  const repeats = options.repeats ?? 1;
  requireInteger('rows', rows, 100);
  requireInteger('repeats', repeats, 1);
  const data = buildDataset(rows, seed);
  const split = stratifiedSplit(data.y, { test: TEST_SHARE, seed });
  const train = takeRows(data, split.train);
  const test = takeRows(data, split.test);

  const keel = timeKeel(train, test, seed, repeats);
  const xgboost =
    options.xgboost === false
      ? { skipped: 'disabled (--no-xgboost)' }
      : runXgboost(data, split, seed, repeats, options.python ?? '/usr/bin/python3');
  return {
    rows,
    features: FEATURE_COUNT,
    trainRows: train.y.length,
    testRows: test.y.length,
    churnRate: round(data.y.reduce((sum, label) => sum + label, 0) / rows, 4),
    repeats,
    params: SEED_PARAMS,
    keel,
    xgboost,
    ratios:
      'skipped' in xgboost
        ? null
        : {
            trainTime: round(keel.trainMs / xgboost.trainMs, 2),
            aucDifference: round(keel.auc - xgboost.auc, 4),
          },
  };
}

/** The project's own generator and feature encoder: the bench trains on what the platform trains on. */
function buildDataset(rows: number, seed: number): Dataset {
  const x = new Float32Array(rows * FEATURE_COUNT);
  const y = new Uint8Array(rows);
  let row = 0;
  for (const record of generateRecords({ rows, seed, asOf: AS_OF })) {
    encodeInto(record, x, row * FEATURE_COUNT);
    y[row++] = record.churned;
  }
  return { x, y, featureCount: FEATURE_COUNT };
}

function timeKeel(train: Dataset, test: Dataset, seed: number, repeats: number): TrainingBenchResult['keel'] {
  const times: number[] = [];
  let result: ReturnType<typeof trainGbdt> | undefined;
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    result = trainGbdt(train, { ...SEED_PARAMS, seed });
    times.push(performance.now() - start);
  }
  const model = result!.model;
  const margins = Float64Array.from({ length: test.y.length }, (_, i) =>
    ensembleMargin(model, test.x, i * test.featureCount),
  );
  return { trainMs: round(median(times), 1), auc: round(auc(test.y, margins), 4), trees: model.trees.length };
}

const XGBOOST_SCRIPT = `
import json, statistics, sys, time
import numpy as np
import xgboost
from sklearn.metrics import roc_auc_score
directory, features, seed, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = np.fromfile(f"{directory}/x.f32", dtype="<f4").reshape(-1, features)
y = np.fromfile(f"{directory}/y.u8", dtype=np.uint8)
train = np.fromfile(f"{directory}/train.u32", dtype="<u4")
test = np.fromfile(f"{directory}/test.u32", dtype="<u4")
times = []
for _ in range(repeats):
    model = xgboost.XGBClassifier(n_estimators=100, max_depth=6, learning_rate=0.1,
                                  tree_method="hist", nthread=1, random_state=seed)
    start = time.perf_counter()
    model.fit(x[train], y[train])
    times.append((time.perf_counter() - start) * 1000)
auc = roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])
print(json.dumps({"trainMs": statistics.median(times), "auc": auc, "version": xgboost.__version__}))
`;

/** Runs XGBoost on the same matrix and split (written as little-endian binaries to a temp dir). */
function runXgboost(
  data: Dataset,
  split: { train: Uint32Array; test: Uint32Array },
  seed: number,
  repeats: number,
  python: string,
): TrainingBenchResult['xgboost'] {
  const directory = mkdtempSync(join(tmpdir(), 'keel-bench-training-'));
  try {
    writeFileSync(join(directory, 'x.f32'), bytesOf(data.x));
    writeFileSync(join(directory, 'y.u8'), data.y);
    writeFileSync(join(directory, 'train.u32'), bytesOf(split.train));
    writeFileSync(join(directory, 'test.u32'), bytesOf(split.test));
    writeFileSync(join(directory, 'xgb.py'), XGBOOST_SCRIPT);
    const run = spawnSync(
      python,
      [join(directory, 'xgb.py'), directory, String(data.featureCount), String(seed), String(repeats)],
      { encoding: 'utf8', timeout: 600_000 },
    );
    if (run.error) return { skipped: `${python} could not run: ${run.error.message}` };
    if (run.status !== 0) {
      const reason = run.stderr.trim().split('\n').at(-1) ?? `exit code ${run.status}`;
      return { skipped: `xgboost via ${python} failed: ${reason}` };
    }
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      trainMs: number;
      auc: number;
      version: string;
    };
    return { trainMs: round(out.trainMs, 1), auc: round(out.auc, 4), version: out.version };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Typed-array bytes as stored in memory (little-endian on every platform Node runs Keel on). */
function bytesOf(array: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      seed: { type: 'string' },
      repeats: { type: 'string' },
      'no-xgboost': { type: 'boolean' },
    },
  });
  const result = runTrainingBench({
    rows: values.rows === undefined ? undefined : Number(values.rows),
    seed: values.seed === undefined ? undefined : Number(values.seed),
    repeats: values.repeats === undefined ? undefined : Number(values.repeats),
    xgboost: !values['no-xgboost'],
  });
  console.log(JSON.stringify(result, null, 2));
}
