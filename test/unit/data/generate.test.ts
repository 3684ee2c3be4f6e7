import { describe, expect, it } from 'vitest';
import { generateRecords, parseDriftSpec } from '#shared/data/generate.ts';
import { rawDataKey } from '#shared/data/raw-data.ts';
import { labeledRecordSchema, toCsvLine } from '#shared/features/index.ts';

const asOf = new Date('2026-11-01T00:00:00Z');
const csv = (rows: number, seed: number, drift?: Record<string, number>) =>
  [...generateRecords({ rows, seed, asOf, drift })].map(toCsvLine);

describe('synthetic churn data', () => {
  it('is deterministic for rows, seed and asOf', () => {
    expect(csv(500, 7)).toEqual(csv(500, 7));
    expect(csv(500, 8)).not.toEqual(csv(500, 7));
    // A prefix of a longer run is the same customers: rows are generated one after another.
    expect(csv(1000, 7).slice(0, 500)).toEqual(csv(500, 7));
  });

  it('numbers customers c-000001 … and every row passes the labeled schema', () => {
    const records = [...generateRecords({ rows: 2000, seed: 1, asOf })];
    expect(records[0]!.customer_id).toBe('c-000001');
    expect(records[1999]!.customer_id).toBe('c-002000');
    for (const record of records) expect(labeledRecordSchema.safeParse(record).success).toBe(true);
    for (const record of records) {
      const at = Date.parse(record.event_time);
      expect(at).toBeLessThanOrEqual(asOf.getTime());
      expect(at).toBeGreaterThan(asOf.getTime() - 7 * 86_400_000);
    }
  });

  it('has the documented distribution: mean income ≈ 75,000, churn 20–30%, some zero-order customers', () => {
    let income = 0;
    let churned = 0;
    let zeroOrders = 0;
    const rows = 50_000;
    for (const record of generateRecords({ rows, seed: 42, asOf })) {
      income += record.income;
      churned += record.churned;
      if (record.orders === 0) zeroOrders++;
    }
    expect(income / rows).toBeGreaterThan(73_500);
    expect(income / rows).toBeLessThan(76_500);
    expect(churned / rows).toBeGreaterThan(0.2);
    expect(churned / rows).toBeLessThan(0.3);
    expect(zeroOrders / rows).toBeGreaterThan(0.05);
    expect(zeroOrders / rows).toBeLessThan(0.2);
  });

  it('--drift income=1.9 moves average income from ~75,000 to ~140,000', () => {
    let income = 0;
    const rows = 20_000;
    for (const record of generateRecords({ rows, seed: 42, asOf, drift: { income: 1.9 } }))
      income += record.income;
    expect(income / rows).toBeGreaterThan(137_000);
    expect(income / rows).toBeLessThan(148_000);
  });

  it('is lazy: the first rows of a huge run come at once', () => {
    const iterator = generateRecords({ rows: 100_000_000, seed: 3, asOf });
    expect(iterator.next().value?.customer_id).toBe('c-000000001');
  });

  it('rejects bad options, naming them', () => {
    expect(() => generateRecords({ rows: 0, seed: 1, asOf }).next()).toThrow(/rows must be an integer/);
    expect(() => generateRecords({ rows: 1.5, seed: 1, asOf }).next()).toThrow(/rows/);
    expect(() => generateRecords({ rows: 1, seed: -1, asOf }).next()).toThrow(/seed/);
    expect(() => parseDriftSpec('income')).toThrow(/FIELD=FACTOR/);
    expect(() => parseDriftSpec('plan=2')).toThrow(/"plan" is not a numeric field/);
    expect(() => parseDriftSpec('income=0')).toThrow(/positive/);
    expect(parseDriftSpec('income=1.9')).toEqual(['income', 1.9]);
  });

  it('names raw files so that the newest sorts last', () => {
    const options = { rows: 10, seed: 1, asOf, drift: { income: 1.9 } };
    const older = rawDataKey(options, new Date('2026-11-01T09:59:59Z'));
    const newer = rawDataKey(options, new Date('2026-11-01T10:00:00Z'));
    expect(older).toBe('raw/20261101T095959Z-n10-s1-drift-income-1.9.csv');
    expect([newer, older].sort()).toEqual([older, newer]);
  });
});
