import { KeelError } from '#shared/errors.ts';
import { CSV_COLUMNS, isImputable, LABEL_COLUMN, OUTCOME_COLUMNS } from './schema.ts';

/** The columns a kind of CSV file must have, and those it may have. */
export interface CsvFileSchema {
  /** What a row is, for messages: `the header does not match the <record>`. */
  readonly record: string;
  readonly columns: readonly string[];
  readonly optional: readonly string[];
}

/**
 * Raw customer files (ETL, batch scoring): a field the schema imputes may be absent (every row then
 * lacks it and is imputed), and the label makes one training data.
 */
export const CUSTOMER_FILE: CsvFileSchema = {
  record: 'raw customer record',
  columns: CSV_COLUMNS.filter((column) => !isImputable(column)),
  optional: [...CSV_COLUMNS.filter(isImputable), LABEL_COLUMN],
};

/** Outcome files: whether each customer churned, as observed later. */
export const OUTCOME_FILE: CsvFileSchema = {
  record: 'outcome record',
  columns: OUTCOME_COLUMNS,
  optional: [],
};

/** A column the file lacks, and the unexpected column it was most likely renamed to, if one is close. */
export interface MissingColumn {
  readonly column: string;
  readonly likelyRenamedTo?: string;
}

/** How a file's header differs from the raw record's columns. */
export interface HeaderChange {
  readonly missing: readonly MissingColumn[];
  readonly unexpected: readonly string[];
  readonly duplicated: readonly string[];
}

/**
 * The file's columns are not the raw record's: the run stops before any row is read, since every row
 * would fail the same way. `details` is the {@link HeaderChange} plus where the file is.
 */
export class SchemaChangeError extends KeelError {
  readonly code = 'ValidationError';
  declare readonly details: HeaderChange & { readonly source: string };

  constructor(source: string, change: HeaderChange, schema: CsvFileSchema = CUSTOMER_FILE) {
    super(`${source}: ${describeHeaderChange(change, schema)}`, { details: { ...change, source } });
  }
}

/** Levenshtein distance, for names of a few dozen characters. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

const normalize = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * How alike two column names are, 0 (unrelated) to 1 (the same once case and separators are ignored):
 * one name holding the other (`income` → `annual_income`) scores high, and small typos
 * (`tenure_month`) score by edit distance.
 */
export function nameLikeness(expected: string, actual: string): number {
  const a = normalize(expected);
  const b = normalize(actual);
  if (a === '' || b === '') return 0;
  if (a === b) return 1;
  if (b.includes(a) || a.includes(b))
    return 0.9 * (Math.min(a.length, b.length) / Math.max(a.length, b.length)) + 0.1;
  return 1 - editDistance(a, b) / Math.max(a.length, b.length);
}

/** Below this likeness an unexpected column is not offered as a rename. */
const RENAME_LIKENESS = 0.5;

/**
 * Compares a file's header with the columns of its kind (by default the raw customer record's, whose label
 * and imputed fields are optional). Each unexpected column is offered as the rename of at most one absent
 * column, the likeliest first; an absent optional column is reported missing only when it looks renamed.
 */
export function headerChange(
  columns: readonly string[],
  schema: CsvFileSchema = CUSTOMER_FILE,
): HeaderChange {
  const expected = new Set<string>([...schema.columns, ...schema.optional]);
  const seen = new Set<string>();
  const duplicated = columns.filter((column) => seen.has(column) || !seen.add(column));
  const absent = [...schema.columns, ...schema.optional].filter((column) => !seen.has(column));
  const unexpected = [...seen].filter((column) => !expected.has(column));
  const candidates = absent
    .flatMap((column) =>
      unexpected.map((actual) => ({ column, actual, likeness: nameLikeness(column, actual) })),
    )
    .filter((pair) => pair.likeness >= RENAME_LIKENESS)
    .sort((x, y) => y.likeness - x.likeness);
  const renames = new Map<string, string>();
  const taken = new Set<string>();
  for (const { column, actual } of candidates) {
    if (renames.has(column) || taken.has(actual)) continue;
    renames.set(column, actual);
    taken.add(actual);
  }
  const missing = absent
    .filter((column) => schema.columns.includes(column) || renames.has(column))
    .map((column) => {
      const likelyRenamedTo = renames.get(column);
      return likelyRenamedTo === undefined ? { column } : { column, likelyRenamedTo };
    });
  return { missing, unexpected, duplicated: [...new Set(duplicated)] };
}

export const isHeaderUnchanged = (change: HeaderChange) =>
  change.missing.length === 0 && change.unexpected.length === 0 && change.duplicated.length === 0;

/** One sentence a person can act on: `missing column income (renamed to annual_income?); unexpected column annual_income`. */
export function describeHeaderChange(change: HeaderChange, schema: CsvFileSchema = CUSTOMER_FILE): string {
  const parts: string[] = [];
  const list = (names: readonly string[]) => names.join(', ');
  if (change.missing.length > 0) {
    const names = change.missing.map(({ column, likelyRenamedTo }) =>
      likelyRenamedTo ? `${column} (renamed to ${likelyRenamedTo}?)` : column,
    );
    parts.push(`missing column${change.missing.length > 1 ? 's' : ''} ${list(names)}`);
  }
  if (change.unexpected.length > 0)
    parts.push(`unexpected column${change.unexpected.length > 1 ? 's' : ''} ${list(change.unexpected)}`);
  if (change.duplicated.length > 0)
    parts.push(`duplicated column${change.duplicated.length > 1 ? 's' : ''} ${list(change.duplicated)}`);
  return `the header does not match the ${schema.record}: ${parts.join('; ')}`;
}

/** Throws {@link SchemaChangeError} when `columns` are not those of the file's kind. */
export function assertHeader(
  source: string,
  columns: readonly string[],
  schema: CsvFileSchema = CUSTOMER_FILE,
): void {
  const change = headerChange(columns, schema);
  if (!isHeaderUnchanged(change)) throw new SchemaChangeError(source, change, schema);
}
