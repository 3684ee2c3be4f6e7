import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { fromItem, toItem } from '#shared/online-store/items.ts';

/** What the document client does with the store's options: the conversion these must equal. */
const sdkItem = (record: Record<string, unknown>) => marshall(record, { removeUndefinedValues: true });

describe('online store items', () => {
  const records = [...generateRecords({ rows: 500, seed: 3, asOf: new Date('2026-11-01T00:00:00Z') })];

  it('converts every generated record exactly as the document client does, both ways', () => {
    for (const record of records) {
      const item = toItem(record);
      expect(item).toEqual(sdkItem(record));
      expect(fromItem(item)).toEqual(unmarshall(item));
      expect(fromItem(item)).toEqual(record);
    }
  });

  it('takes the SDK’s way for every value outside the direct path, with its results and refusals', () => {
    const odd = {
      customer_id: 'c-"quoted"-é-\u{1F600}',
      empty: '',
      zero: -0,
      small: 1e-7,
      yes: true,
      nothing: null,
      absent: undefined,
      list: [1, 'a', null],
      nested: { a: 1, b: { c: 'd' } },
      set: new Set(['x', 'y']),
      integer: Number.MAX_SAFE_INTEGER,
    };
    const item = toItem(odd);
    expect(item).toEqual(sdkItem(odd));
    expect(fromItem(item)).toEqual(unmarshall(item));
    expect('absent' in item).toBe(false);
    // Refused alike: special and unsafe numbers.
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, 1.5e300]) {
      let sdkError = 'the SDK accepted it';
      try {
        sdkItem({ value });
      } catch (error) {
        sdkError = (error as Error).message;
      }
      expect(() => toItem({ value })).toThrow(sdkError);
    }
    // A stored number beyond the safe integers comes back as the SDK gives it (a BigInt).
    const large = { n: { N: '12345678901234567890' }, f: { N: '0.1' }, g: { N: '-3' } };
    expect(fromItem(large)).toEqual(unmarshall(large));
    expect(fromItem(large).n).toBe(12345678901234567890n);
  });
});
