import { describe, expect, it } from 'vitest';
import {
  assertHeader,
  describeHeaderChange,
  headerChange,
  nameLikeness,
  SchemaChangeError,
} from '#shared/features/header.ts';
import { CSV_COLUMNS, isImputable, LABEL_COLUMN } from '#shared/features/index.ts';

const withColumn = (from: string, to: string) => CSV_COLUMNS.map((column) => (column === from ? to : column));

describe('headerChange', () => {
  it('accepts the raw columns in any order, with or without the label', () => {
    for (const columns of [[...CSV_COLUMNS], [...CSV_COLUMNS].reverse(), [...CSV_COLUMNS, LABEL_COLUMN]]) {
      expect(headerChange(columns)).toEqual({ missing: [], unexpected: [], duplicated: [] });
    }
  });

  it('names a renamed column and the column it likely became', () => {
    const change = headerChange(withColumn('income', 'annual_income'));
    expect(change).toEqual({
      missing: [{ column: 'income', likelyRenamedTo: 'annual_income' }],
      unexpected: ['annual_income'],
      duplicated: [],
    });
    expect(describeHeaderChange(change)).toBe(
      'the header does not match the raw customer record: missing column income (renamed to annual_income?); ' +
        'unexpected column annual_income',
    );
  });

  it('offers a rename only for a close name, each unexpected column once', () => {
    expect(headerChange(withColumn('tenure_months', 'TenureMonth')).missing).toEqual([
      { column: 'tenure_months', likelyRenamedTo: 'TenureMonth' },
    ]);
    expect(headerChange(withColumn('income', 'favourite_colour')).missing).toEqual([{ column: 'income' }]);
    const both = headerChange([
      ...CSV_COLUMNS.filter((c) => c !== 'orders' && c !== 'total_spend'),
      'total_spend_usd',
    ]);
    expect(both.missing).toEqual([
      { column: 'total_spend', likelyRenamedTo: 'total_spend_usd' },
      { column: 'orders' },
    ]);
  });

  it('accepts a file without a column the schema imputes, but not without a required one', () => {
    const noTickets = CSV_COLUMNS.filter((c) => c !== 'support_tickets_90d');
    expect(isImputable('support_tickets_90d')).toBe(true);
    expect(headerChange(noTickets)).toEqual({ missing: [], unexpected: [], duplicated: [] });
    expect(headerChange([...noTickets, LABEL_COLUMN])).toEqual({
      missing: [],
      unexpected: [],
      duplicated: [],
    });
    expect(headerChange(CSV_COLUMNS.filter((c) => c !== 'orders')).missing).toEqual([{ column: 'orders' }]);
  });

  it('names an imputed column that looks renamed: its values would be imputed instead of read', () => {
    const change = headerChange(withColumn('support_tickets_90d', 'support_tickets_90_days'));
    expect(change).toEqual({
      missing: [{ column: 'support_tickets_90d', likelyRenamedTo: 'support_tickets_90_days' }],
      unexpected: ['support_tickets_90_days'],
      duplicated: [],
    });
  });

  it('reports missing, unexpected and duplicated columns', () => {
    const change = headerChange([...CSV_COLUMNS.filter((c) => c !== 'age'), 'region', 'notes']);
    expect(change.missing).toEqual([{ column: 'age' }]);
    expect(change.unexpected).toEqual(['notes']);
    expect(change.duplicated).toEqual(['region']);
  });
});

describe('nameLikeness', () => {
  it.each([
    ['income', 'income', 1],
    ['income', 'INCOME', 1],
    ['income', 'annual_income', 0.9 * (6 / 12) + 0.1],
    ['orders', 'order', 0.9 * (5 / 6) + 0.1],
    ['age', 'plan', 0],
  ])('%s ~ %s = %d', (expected, actual, likeness) => {
    expect(nameLikeness(expected, actual)).toBeCloseTo(likeness, 10);
  });
});

describe('assertHeader', () => {
  it('throws SchemaChangeError naming the file and both columns', () => {
    let error: unknown;
    try {
      assertHeader('s3://raw/customers.csv', withColumn('income', 'annual_income'));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SchemaChangeError);
    expect((error as SchemaChangeError).message).toMatch(
      /^s3:\/\/raw\/customers\.csv: .*income.*annual_income/,
    );
    expect((error as SchemaChangeError).details.source).toBe('s3://raw/customers.csv');
  });

  it('passes the expected header', () => {
    expect(() => assertHeader('x', [...CSV_COLUMNS])).not.toThrow();
  });
});
