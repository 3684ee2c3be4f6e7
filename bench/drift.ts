/**
 * Drift benchmark: computeDrift over a window of generated customers (20 features: 12 numeric, 2
 * categorical fields over 8 one-hot columns, plus the scores) against a baseline built from other
 * customers. Only computeDrift is timed; generating and encoding the rows is not. Target: 1,000,000
 * rows in about a second on one core.
 *
 *   npx tsx bench/drift.ts [--rows 1000000] [--repeats 3]
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type GenerateOptions, generateRecords } from '#shared/data/generate.ts';
import { computeDrift } from '#shared/drift/compute.ts';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET, featureIndex } from '#shared/features/index.ts';
import { requireInteger } from '#shared/model/errors.ts';
import { buildBaseline } from '#shared/registry/baseline.ts';

export interface DriftBenchOptions {
  readonly rows?: number;
  /** Timed runs; the median is reported. */
  readonly repeats?: number;
}

export interface DriftBenchResult {
  rows: number;
  features: number;
  ms: number;
  rowsPerSecond: number;
}

const AS_OF = new Date('2026-01-01T00:00:00Z');
const BASELINE_ROWS = 50_000;

/** Rows of generated customers, encoded, with scores from a fixed logistic function of two features. */
function encodedWindow(rows: number, seed: number, drift: GenerateOptions['drift'] = {}) {
  const x = new Float32Array(rows * FEATURE_COUNT);
  let row = 0;
  for (const record of generateRecords({ rows, seed, asOf: AS_OF, drift })) {
    encodeInto(record, x, row++ * FEATURE_COUNT);
  }
  const tickets = featureIndex('support_tickets_90d');
  const tenure = featureIndex('tenure_months');
  const scores = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const z = -1.2 + 0.55 * x[r * FEATURE_COUNT + tickets]! - 0.035 * x[r * FEATURE_COUNT + tenure]!;
    scores[r] = 1 / (1 + Math.exp(-z));
  }
  return { x, rows, scores };
}

export function runDriftBench(options: DriftBenchOptions = {}): DriftBenchResult {
  const rows = options.rows ?? 1_000_000;
  const repeats = options.repeats ?? 3;
  requireInteger('rows', rows, 1);
  requireInteger('repeats', repeats, 1);
  const reference = encodedWindow(BASELINE_ROWS, 1);
  const baseline = buildBaseline(FEATURE_SET, reference.x, reference.rows, reference.scores, 0.5);
  // A mildly drifted window, so the report has warnings to build as well as ok features.
  const window = encodedWindow(rows, 2, { income: 1.2 });
  const thresholds = driftThresholds();
  computeDrift(baseline, window, thresholds, FEATURE_SET); // warm-up: let V8 optimize the counting loops
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    computeDrift(baseline, window, thresholds, FEATURE_SET);
    times.push(performance.now() - started);
  }
  const ms = times.sort((a, b) => a - b)[times.length >> 1]!;
  return {
    rows,
    features: FEATURE_COUNT,
    ms: Math.round(ms * 10) / 10,
    rowsPerSecond: Math.round(rows / (ms / 1000)),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, repeats: { type: 'string' } } });
  const result = runDriftBench({
    rows: values.rows === undefined ? undefined : Number(values.rows),
    repeats: values.repeats === undefined ? undefined : Number(values.repeats),
  });
  console.log(JSON.stringify(result, null, 2));
}
