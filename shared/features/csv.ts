import {
  CSV_COLUMNS,
  LABEL_COLUMN,
  type LabeledRecord,
  labeledRecordSchema,
  NUMERIC_FIELDS,
  type RawRecord,
  rawRecordSchema,
} from './schema.ts';

/** Strict decimal syntax: no hex, no exponents beyond plain scientific notation, no blanks, no NaN. */
const NUMBER_SYNTAX = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const NUMERIC_COLUMNS = new Set<string>([...NUMERIC_FIELDS, LABEL_COLUMN]);

/**
 * Converts a CSV row (strings keyed by column) to the typed shape the schema validates. Empty cells
 * become absent; text that is not a plain decimal number stays a string so the schema names the field.
 */
function coerceCsvRow(row: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, cell] of Object.entries(row)) {
    if (cell === undefined || cell === '') continue;
    out[key] = NUMERIC_COLUMNS.has(key) && NUMBER_SYNTAX.test(cell) ? Number(cell) : cell;
  }
  return out;
}

export function parseCsvRecord(row: Readonly<Record<string, string | undefined>>) {
  return rawRecordSchema.safeParse(coerceCsvRow(row));
}

export function parseLabeledCsvRecord(row: Readonly<Record<string, string | undefined>>) {
  return labeledRecordSchema.safeParse(coerceCsvRow(row));
}

export const CSV_HEADER = [...CSV_COLUMNS, LABEL_COLUMN].join(',');

/**
 * Writes records as CSV lines (no newline) of these columns, then the label when the record has one;
 * values never need quoting (schema-checked), and an absent (imputable) field is an empty cell.
 */
export const csvLineWriter =
  (columns: readonly string[]) =>
  (record: LabeledRecord | RawRecord): string => {
    const cells = columns.map((column) => String((record as Record<string, unknown>)[column] ?? ''));
    if ('churned' in record) cells.push(String(record.churned));
    return cells.join(',');
  };

/** One CSV line of this code's raw schema ({@link CSV_COLUMNS}) for a (labeled) record. */
export const toCsvLine = csvLineWriter(CSV_COLUMNS);
