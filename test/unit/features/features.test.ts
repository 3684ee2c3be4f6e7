import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATEGORIES, FEATURE_SET_VERSION, MISSING_POLICY } from '#shared/features/definition.ts';
import {
  FEATURE_SET,
  FEATURES,
  type FeatureSetDefinition,
  fingerprintOf,
  type PartialFeatureFields,
  parseCsvRecord,
  rawRecordSchema,
  storedFeatureSet,
} from '#shared/features/index.ts';

/**
 * The interpreter, tested on a frozen copy of the reference FastAPI service's definition (1.0.0, written
 * by `npm run features:golden -- --freeze`), so these vectors hold whatever this code's definition
 * becomes; the current definition's vectors are golden.test.ts's.
 */
const FROZEN = JSON.parse(
  readFileSync(new URL('../../fixtures/features/reference-1.0.0.json', import.meta.url), 'utf8'),
) as { fingerprint: string; definition: FeatureSetDefinition };
const REFERENCE = storedFeatureSet(FROZEN.definition, FROZEN.fingerprint);

// Golden vectors: printed by the reference FastAPI service's own features.py `to_vector` for the same
// inputs, so Keel's features are its features (no training/serving skew against the model it shipped).
const GOLDEN: { name: string; fields: PartialFeatureFields; vector: number[] }[] = [
  {
    name: 'typical customer',
    fields: {
      age: 40,
      income: 50000,
      plan: 'standard',
      region: 'east',
      tenure_months: 10,
      total_spend: 500,
      orders: 20,
      support_tickets_90d: 2,
      days_since_last_order: 5,
    },
    vector: [
      40, 50000, 10.819798284210286, 10, 500, 20, 2, 5, 25, 2, 50, 0.09523809523809523, 0, 1, 0, 0, 0, 1, 0,
      0,
    ],
  },
  {
    name: 'zero orders, zero tenure, zero income (avg_spend defined as 0, months floored at 1)',
    fields: {
      age: 18,
      income: 0,
      plan: 'basic',
      region: 'north',
      tenure_months: 0,
      total_spend: 0,
      orders: 0,
      support_tickets_90d: 3,
      days_since_last_order: 0,
    },
    vector: [18, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 3, 1, 0, 0, 1, 0, 0, 0, 0],
  },
  {
    name: 'extreme values',
    fields: {
      age: 100,
      income: 1e12,
      plan: 'premium',
      region: 'central',
      tenure_months: 1e6,
      total_spend: 1e15,
      orders: 7,
      support_tickets_90d: Number.MAX_SAFE_INTEGER,
      days_since_last_order: 1e9,
    },
    vector: [
      100, 1e12, 27.63102111592955, 1e6, 1e15, 7, 9007199254740991, 1e9, 142857142857142.84, 7e-6, 1e9,
      1125899906842623.9, 0, 0, 1, 0, 0, 0, 0, 1,
    ],
  },
  {
    name: 'unseen plan and fractional values',
    fields: {
      age: 33.5,
      income: 75000.25,
      plan: 'enterprise',
      region: 'west',
      tenure_months: 0.5,
      total_spend: 123.45,
      orders: 3,
      support_tickets_90d: 0,
      days_since_last_order: 12.5,
    },
    vector: [
      33.5, 75000.25, 11.225260059046226, 0.5, 123.45, 3, 0, 12.5, 41.15, 3, 123.45, 0, 0, 0, 0, 0, 0, 0, 1,
      0,
    ],
  },
];

describe('feature vectors of the reference definition 1.0.0 (golden)', () => {
  it('is the frozen reference: its fingerprint, and the feature names of the FastAPI service, in order', () => {
    expect(REFERENCE.version).toBe('1.0.0');
    expect(REFERENCE.fingerprint).toBe(
      'sha256:355e017c6a5563efa9106cc5d504c291edb2b1fe17a399de76b20cf15940c7ee',
    );
    expect(REFERENCE.names).toEqual([
      'age',
      'income',
      'log_income',
      'tenure_months',
      'total_spend',
      'orders',
      'support_tickets_90d',
      'days_since_last_order',
      'avg_spend',
      'orders_per_month',
      'spend_per_month',
      'tickets_per_order',
      'plan_basic',
      'plan_standard',
      'plan_premium',
      'region_north',
      'region_south',
      'region_east',
      'region_west',
      'region_central',
    ]);
    expect(REFERENCE.count).toBe(20);
  });

  for (const golden of GOLDEN) {
    it(`encodes: ${golden.name}`, () => {
      const result = REFERENCE.encode(golden.fields);
      if (!result.ok) throw new Error(`unexpected missing ${result.missing.join()}`);
      expect(Array.from(result.vector)).toEqual(golden.vector);
      expect(result.imputed).toEqual([]);
    });
  }

  it('reports an unseen category and encodes it as all zeros', () => {
    const result = REFERENCE.encode(GOLDEN[3]!.fields);
    expect(result.ok && result.unseen).toEqual(['plan']);
    const known = REFERENCE.encode(GOLDEN[0]!.fields);
    expect(known.ok && known.unseen).toEqual([]);
  });

  it('imputes a missing support_tickets_90d as 0 and says so', () => {
    const { support_tickets_90d: _dropped, ...rest } = GOLDEN[0]!.fields;
    const result = REFERENCE.encode(rest);
    if (!result.ok) throw new Error('expected ok');
    expect(result.imputed).toEqual(['support_tickets_90d']);
    expect(result.vector[6]).toBe(0);
    expect(result.vector[11]).toBe(0);
  });

  it('lists every missing required field', () => {
    const result = REFERENCE.encode({ age: 30, plan: 'basic' });
    expect(result).toEqual({
      ok: false,
      missing: ['income', 'region', 'tenure_months', 'total_spend', 'orders', 'days_since_last_order'],
    });
  });

  it('treats an explicit undefined as missing', () => {
    const result = REFERENCE.encode({ ...GOLDEN[0]!.fields, income: undefined });
    expect(result).toEqual({ ok: false, missing: ['income'] });
  });

  it('encodeInto writes the same values as float32 rows of a matrix', () => {
    const count = REFERENCE.count;
    const matrix = new Float32Array(count * 2);
    expect(REFERENCE.encodeInto(GOLDEN[0]!.fields, matrix, count)).toBeUndefined();
    expect(Array.from(matrix.subarray(0, count))).toEqual(new Array(count).fill(0));
    expect(Array.from(matrix.subarray(count))).toEqual(GOLDEN[0]!.vector.map(Math.fround));
    const { income: _income, ...incomplete } = GOLDEN[0]!.fields;
    expect(REFERENCE.encodeInto(incomplete, matrix, 0)).toBe('income');
  });
});

describe('feature set fingerprint', () => {
  it('is the hash of the whole definition', () => {
    const definition = {
      version: FEATURE_SET_VERSION,
      features: FEATURES,
      categories: CATEGORIES,
      missing: MISSING_POLICY,
    };
    expect(FEATURE_SET.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fingerprintOf(definition)).toBe(FEATURE_SET.fingerprint);
    // Pinned for the current definition by golden.test.ts (`npm run features:golden` rewrites it).
  });

  it('changes when any part of the definition changes', () => {
    const definition = FROZEN.definition;
    const { features, categories, missing } = definition;
    const variants = [
      { ...definition, features: features.slice(1) },
      { ...definition, features: [...features].reverse() },
      {
        ...definition,
        features: features.map((f) =>
          f.name === 'avg_spend' ? { ...f, expr: { ...f.expr, whenZero: -1 } } : f,
        ),
      },
      { ...definition, categories: { ...categories, plan: ['basic', 'standard'] } },
      { ...definition, missing: { ...missing, income: { kind: 'impute', value: 0 } } },
      { ...definition, version: '1.0.1' },
    ];
    const prints = new Set(variants.map(fingerprintOf));
    expect(prints.size).toBe(variants.length);
    expect(prints.has(REFERENCE.fingerprint)).toBe(false);
  });

  it('does not depend on key order', () => {
    expect(fingerprintOf({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(
      fingerprintOf({ b: [1, { d: 3, c: 2 }], a: 1 }),
    );
  });
});

describe('raw record schema', () => {
  const valid = {
    customer_id: 'c-000001',
    age: 40,
    income: 50000,
    plan: 'standard',
    region: 'east',
    tenure_months: 10,
    total_spend: 500,
    orders: 20,
    support_tickets_90d: 2,
    days_since_last_order: 5,
    event_time: '2026-11-01T00:00:00Z',
  };

  it('accepts a valid record', () => {
    expect(rawRecordSchema.parse(valid)).toEqual(valid);
  });

  it('names each bad field by path', () => {
    const result = rawRecordSchema.safeParse({
      ...valid,
      age: 17,
      income: -1,
      orders: 1.5,
      total_spend: Number.NaN,
      plan: 'Gold Plan',
      extra: 1,
    });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((issue) => issue.path.join('.') || issue.message);
    for (const field of ['age', 'income', 'orders', 'total_spend', 'plan']) expect(paths).toContain(field);
    expect(JSON.stringify(result.error!.issues)).toContain('extra');
  });

  it('rejects Infinity and a bad event_time', () => {
    const result = rawRecordSchema.safeParse({
      ...valid,
      income: Number.POSITIVE_INFINITY,
      event_time: 'yesterday',
    });
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual(['income', 'event_time']);
  });

  it('parses CSV strings strictly', () => {
    const csv = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, String(v)]));
    expect(parseCsvRecord(csv).data).toEqual(valid);
    for (const bad of ['0x10', '1e', 'NaN', 'Infinity', ' 5', '5 ', '']) {
      const parsed = parseCsvRecord({ ...csv, tenure_months: bad });
      expect(parsed.success, `tenure_months=${JSON.stringify(bad)}`).toBe(false);
      expect(parsed.error!.issues[0]!.path).toEqual(['tenure_months']);
    }
    expect(parseCsvRecord({ ...csv, income: '1.5e3' }).data?.income).toBe(1500);
  });
});
