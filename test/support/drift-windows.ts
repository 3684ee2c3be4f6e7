import { generateRecords } from '#shared/data/generate.ts';
import type { DriftWindow } from '#shared/drift/compute.ts';
import { encodeInto, FEATURE_COUNT, featureIndex, type RawRecord } from '#shared/features/index.ts';

/** Test windows: generated customers, encoded as the ETL does, scored by a fixed logistic function. */

const AS_OF = new Date('2026-01-01T00:00:00Z');
const TICKETS = featureIndex('support_tickets_90d');
const TENURE = featureIndex('tenure_months');

/** Churn probability from tickets and tenure: about a quarter of generated customers score ≥ 0.5. */
export function fixedScore(x: Float32Array, row: number): number {
  const z = 0.3 + 0.55 * x[row * FEATURE_COUNT + TICKETS]! - 0.035 * x[row * FEATURE_COUNT + TENURE]!;
  return 1 / (1 + Math.exp(-z));
}

export function generatedWindow(
  rows: number,
  seed: number,
  options: {
    drift?: Parameters<typeof generateRecords>[0]['drift'];
    edit?: (record: RawRecord, row: number) => RawRecord;
  } = {},
): DriftWindow {
  const x = new Float32Array(rows * FEATURE_COUNT);
  let row = 0;
  for (const record of generateRecords({ rows, seed, asOf: AS_OF, drift: options.drift })) {
    encodeInto(options.edit ? options.edit(record, row) : record, x, row * FEATURE_COUNT);
    row++;
  }
  return { x, rows, scores: Float64Array.from({ length: rows }, (_, r) => fixedScore(x, r)) };
}
