import { describe, expect, it } from 'vitest';
import { FEATURE_SET } from '#shared/features/index.ts';
import { float32Text, writeFeatureCsv } from '#shared/offline/feature-export.ts';
import type { FeatureRow } from '#shared/offline/features-dataset.ts';
import { Random } from '#shared/random.ts';

describe('float32Text', () => {
  it('parses back to the same float32, for values of every magnitude', () => {
    const random = new Random(7);
    const bits = new Uint32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    let checked = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      bits[0] = Math.floor(random.float() * 2 ** 32);
      const value = asFloat[0]!;
      if (Number.isNaN(value)) continue;
      const text = float32Text(value);
      if (Math.fround(Number(text)) !== value) wrong.push(`${value} → ${text}`);
      checked++;
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(199_000);
  });

  it('writes short text for values that have it', () => {
    expect([0, 1, 42, -3, 0.5].map((v) => float32Text(Math.fround(v)))).toEqual([
      '0',
      '1',
      '42',
      '-3',
      '0.5',
    ]);
    expect(float32Text(Math.fround(0.1))).toBe('0.1');
    expect(float32Text(Math.fround(1 / 3))).toBe('0.33333334');
    expect(float32Text(Math.fround(3.4e38))).toBe('3.4e+38');
  });
});

describe('writeFeatureCsv', () => {
  const row = (key: string, customerId: string, label: number | undefined): FeatureRow => ({
    key,
    customerId,
    eventTime: '2026-11-01T00:00:00Z',
    label,
    features: new Float32Array(FEATURE_SET.count).fill(0.25),
    line: '',
    header: '',
  });
  async function* rowsOf(...rows: FeatureRow[]) {
    yield* rows;
  }
  const header = ['customer_id', 'event_time', ...FEATURE_SET.names].join(',');

  it('writes the header, then one line a row, with the label when the parts have one', async () => {
    const written: string[] = [];
    const summary = await writeFeatureCsv(
      rowsOf(row('a', 'c-1', 1), row('a', 'c-2', 0)),
      FEATURE_SET,
      async (t) => {
        written.push(t);
      },
    );
    expect(summary).toEqual({ rows: 2, labeled: true });
    const values = Array(FEATURE_SET.count).fill('0.25').join(',');
    expect(written.join('')).toBe(
      `${header},churned\nc-1,2026-11-01T00:00:00Z,${values},1\nc-2,2026-11-01T00:00:00Z,${values},0\n`,
    );
  });

  it('writes the header alone for no rows', async () => {
    const written: string[] = [];
    expect(await writeFeatureCsv(rowsOf(), FEATURE_SET, async (t) => void written.push(t))).toEqual({
      rows: 0,
      labeled: false,
    });
    expect(written.join('')).toBe(`${header}\n`);
  });

  it('refuses parts with and without the label, naming both', async () => {
    await expect(
      writeFeatureCsv(
        rowsOf(row('p/labeled.csv', 'c-1', 1), row('q/unlabeled.csv', 'c-2', undefined)),
        FEATURE_SET,
        async () => {},
      ),
    ).rejects.toThrow('q/unlabeled.csv has no churned column, unlike p/labeled.csv');
  });
});
