/**
 * The request bodies of the benchmarks: Keel by customer id (features from the online store), the
 * reference FastAPI service's body.json (every raw field in the body), and Keel with those same fields
 * as `attributes`.
 */
import { readFileSync } from 'node:fs';
import { FEATURE_FIELD_NAMES, type RawRecord } from '#shared/features/index.ts';
import { BENCH_CUSTOMER } from './events.ts';

export { KEEL_ID_BODY } from './events.ts';

export const SEED_DIR = '/work/shared/peers/seed-fastapi';

/**
 * The reference service's request (its body.json: every raw field in the body). Falls back to `fallback`'s
 * fields when its folder is not on this machine.
 */
export function seedFields(fallback: RawRecord): Record<string, unknown> {
  try {
    const { customer_id: _id, ...fields } = JSON.parse(
      readFileSync(`${SEED_DIR}/body.json`, 'utf8'),
    ) as Record<string, unknown>;
    return fields;
  } catch {
    return Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, fallback[name]]));
  }
}

/** Keel with the same fields as the reference service's body, given as `attributes` (apples to apples). */
export function keelAttributesBody(fallback: RawRecord): string {
  return JSON.stringify({ customerId: BENCH_CUSTOMER, attributes: seedFields(fallback) });
}
