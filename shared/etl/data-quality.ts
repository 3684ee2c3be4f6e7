import { KeelError } from '#shared/errors.ts';
import {
  CATEGORICAL_FIELDS,
  type CategoricalField,
  type FeatureFields,
  unseenCategories,
} from '#shared/features/index.ts';

/**
 * What an ETL run learns about its input beyond good and bad rows: which fields the bad rows failed (so a
 * column whose type or unit changed upstream is reported as that field's problem, not as N bad rows), and
 * which category values the model never saw (a plan launched upstream is encoded as all-zero one-hots).
 * Chunks count them, the finalize step adds the chunks up.
 */

/** The rows that failed one field, the first reason and a few of the values. */
export interface FieldProblem {
  rows: number;
  readonly message: string;
  readonly examples: string[];
}

export interface DataQuality {
  /** Per field: the rows whose value failed the field's domain. */
  readonly fieldProblems: Record<string, FieldProblem>;
  /** Per categorical field: rows with a value the model never saw, by value (the first few values). */
  readonly unseenCategories: Partial<Record<CategoricalField, Record<string, number>>>;
}

const MAX_EXAMPLES = 3;
/** A raw cell can be any length; an example is a glimpse of it (the quarantine has the whole row). */
const MAX_EXAMPLE_CHARS = 40;
/** Distinct unseen values kept per field; more are counted under {@link OTHER_VALUES}. */
const MAX_UNSEEN_VALUES = 20;
export const OTHER_VALUES = '(other values)';

/** `record[key]`, created by `make` when absent. */
function entry<V>(record: Record<string, V>, key: string, make: () => V): V {
  const existing = record[key];
  if (existing !== undefined) return existing;
  const created = make();
  record[key] = created;
  return created;
}

export const emptyDataQuality = (): DataQuality => ({ fieldProblems: {}, unseenCategories: {} });

/** Counts one bad row's field issues (`path` the field, empty for a whole-row problem). */
export function countFieldIssues(
  quality: DataQuality,
  issues: readonly { readonly path: string; readonly message: string }[],
  row: Readonly<Record<string, string>>,
): void {
  for (const field of new Set(issues.map((issue) => issue.path).filter((path) => path !== ''))) {
    const problem = entry(quality.fieldProblems, field, () => ({
      rows: 0,
      message: issues.find((issue) => issue.path === field)!.message,
      examples: [],
    }));
    problem.rows++;
    const value = row[field]?.slice(0, MAX_EXAMPLE_CHARS);
    if (value !== undefined && problem.examples.length < MAX_EXAMPLES && !problem.examples.includes(value))
      problem.examples.push(value);
  }
}

function addUnseen(quality: DataQuality, field: CategoricalField, value: string, rows: number): void {
  const values = entry<Record<string, number>>(quality.unseenCategories, field, () => ({}));
  const key = value in values || Object.keys(values).length < MAX_UNSEEN_VALUES ? value : OTHER_VALUES;
  values[key] = (values[key] ?? 0) + rows;
}

/** Counts the category values of a valid row that the model never saw. */
export function countUnseenCategories(
  quality: DataQuality,
  record: Pick<FeatureFields, CategoricalField>,
): void {
  for (const field of unseenCategories(record)) addUnseen(quality, field, record[field], 1);
}

/** The chunks' counts added up. */
export function mergeDataQuality(parts: readonly DataQuality[]): DataQuality {
  const total = emptyDataQuality();
  for (const part of parts) {
    for (const [field, problem] of Object.entries(part.fieldProblems)) {
      const sum = entry(total.fieldProblems, field, () => ({
        rows: 0,
        message: problem.message,
        examples: [],
      }));
      sum.rows += problem.rows;
      for (const example of problem.examples)
        if (sum.examples.length < MAX_EXAMPLES && !sum.examples.includes(example)) sum.examples.push(example);
    }
    for (const field of CATEGORICAL_FIELDS) {
      for (const [value, rows] of Object.entries(part.unseenCategories[field] ?? {}))
        addUnseen(total, field, value, rows);
    }
  }
  return total;
}

/** Rows with an unseen value, per categorical field (0 for a field with none). */
export function unseenCategoryRows(quality: DataQuality): Record<CategoricalField, number> {
  return Object.fromEntries(
    CATEGORICAL_FIELDS.map((field) => [
      field,
      Object.values(quality.unseenCategories[field] ?? {}).reduce((a, b) => a + b, 0),
    ]),
  ) as Record<CategoricalField, number>;
}

/**
 * The share of a run's rows failing one field above which the field itself changed (its type or unit
 * upstream), not the rows: a bad row fails for its own reasons, a changed column fails nearly every row alike.
 */
export const FIELD_CHANGE_SHARE = 0.9;

/** Nearly every row failed the same field: the column's type or unit changed upstream. */
export class FieldDomainChangeError extends KeelError {
  readonly code = 'ValidationError';
}

/** The field that nearly every row failed, the most-failed first; undefined when the bad rows vary. */
export function changedField(
  quality: DataQuality,
  rowsRead: number,
): ({ field: string } & FieldProblem) | undefined {
  const [worst] = Object.entries(quality.fieldProblems)
    .map(([field, problem]) => ({ field, ...problem }))
    .sort((a, b) => b.rows - a.rows);
  return worst && rowsRead > 0 && worst.rows / rowsRead >= FIELD_CHANGE_SHARE ? worst : undefined;
}

export function describeFieldChange(change: { field: string } & FieldProblem, rowsRead: number): string {
  const examples = change.examples.map((value) => JSON.stringify(value)).join(', ');
  return (
    `${change.field}: ${change.rows} of ${rowsRead} rows fail the field (${change.message}), ` +
    `e.g. ${examples || 'empty cells'}; its type or unit likely changed upstream`
  );
}
