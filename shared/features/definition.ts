import { z } from 'zod';
import {
  CATEGORICAL_FIELDS,
  type CategoricalField,
  FEATURE_FIELD_NAMES,
  type MissingPolicy,
  missingPolicyOf,
  type NumericField,
  PLANS,
  RAW_FIELDS,
  REGIONS,
} from './schema.ts';

/**
 * A feature set, declared as data. Keeping the arithmetic in this small expression language (instead of
 * arbitrary code) is what lets the fingerprint cover every formula, and what lets every registered model
 * version carry the definition it was trained on: change an operand, a constant, an order or a category
 * and the fingerprint changes, whatever the bundler does to the code.
 */
export type Expr =
  | { readonly op: 'field'; readonly name: string }
  | { readonly op: 'const'; readonly value: number }
  | { readonly op: 'log1p'; readonly of: Expr }
  | { readonly op: 'add' | 'max'; readonly args: readonly [Expr, Expr] }
  /** `num / den`, and `whenZero` when `den` is 0 (a defined value instead of Infinity or NaN). */
  | { readonly op: 'div'; readonly num: Expr; readonly den: Expr; readonly whenZero: number }
  /** 1 when the categorical field equals `value`, else 0 (so an unseen category is all zeros). */
  | { readonly op: 'oneHot'; readonly field: string; readonly value: string };

export interface FeatureDefinition {
  readonly name: string;
  readonly expr: Expr;
}

export type { MissingPolicy };

/**
 * Everything that decides a feature vector, serialized with every model version it trained
 * (`metadata.json` → `feature_set.definition`); the fingerprint is the hash of exactly this object.
 */
export interface FeatureSetDefinition {
  /** Human-readable version; bump it when the definition changes (the fingerprint changes anyway). */
  readonly version: string;
  /** The ordered features the model sees. */
  readonly features: readonly FeatureDefinition[];
  /** The known values of every categorical field the features read. */
  readonly categories: Readonly<Record<string, readonly string[]>>;
  /** What an absent value of each raw field the features read becomes. */
  readonly missing: Readonly<Record<string, MissingPolicy>>;
}

const number = z.number().refine(Number.isFinite, 'must be a finite number');
const fieldName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'a raw field name like support_tickets_90d');
const exprSchema: z.ZodType<Expr> = z.lazy(() =>
  z.discriminatedUnion('op', [
    z.strictObject({ op: z.literal('field'), name: fieldName }),
    z.strictObject({ op: z.literal('const'), value: number }),
    z.strictObject({ op: z.literal('log1p'), of: exprSchema }),
    z.strictObject({ op: z.enum(['add', 'max']), args: z.tuple([exprSchema, exprSchema]) }),
    z.strictObject({ op: z.literal('div'), num: exprSchema, den: exprSchema, whenZero: number }),
    z.strictObject({ op: z.literal('oneHot'), field: fieldName, value: z.string().min(1) }),
  ]),
);

/** A stored definition as this code reads it back (an unknown operation is refused, naming it). */
export const featureSetDefinitionSchema: z.ZodType<FeatureSetDefinition> = z.strictObject({
  version: z.string().min(1),
  features: z
    .array(z.strictObject({ name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/), expr: exprSchema }))
    .min(1),
  categories: z.record(fieldName, z.array(z.string().min(1))),
  missing: z.record(
    fieldName,
    z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('required') }),
      z.strictObject({ kind: z.literal('impute'), value: number }),
    ]),
  ),
});

const field = (name: NumericField): Expr => ({ op: 'field', name });
const constant = (value: number): Expr => ({ op: 'const', value });
const oneHot = (on: CategoricalField, value: string): FeatureDefinition => ({
  name: `${on}_${value}`,
  expr: { op: 'oneHot', field: on, value },
});
const atLeastOneMonth: Expr = { op: 'max', args: [field('tenure_months'), constant(1)] };

/** Bump when the definition changes in a way a reader should notice; the fingerprint changes anyway. */
export const FEATURE_SET_VERSION = '1.0.0';

/** The known values of each categorical raw field. */
export const CATEGORIES = Object.fromEntries(
  CATEGORICAL_FIELDS.map((name) => [name, RAW_FIELDS[name].values]),
) as Readonly<Record<string, readonly string[]>>;

/** The ordered features new models train on (the reference FastAPI service's 20, in its order). */
export const FEATURES: readonly FeatureDefinition[] = [
  { name: 'age', expr: field('age') },
  { name: 'income', expr: field('income') },
  { name: 'log_income', expr: { op: 'log1p', of: { op: 'max', args: [field('income'), constant(0)] } } },
  { name: 'tenure_months', expr: field('tenure_months') },
  { name: 'total_spend', expr: field('total_spend') },
  { name: 'orders', expr: field('orders') },
  { name: 'support_tickets_90d', expr: field('support_tickets_90d') },
  { name: 'days_since_last_order', expr: field('days_since_last_order') },
  { name: 'avg_spend', expr: { op: 'div', num: field('total_spend'), den: field('orders'), whenZero: 0 } },
  { name: 'orders_per_month', expr: { op: 'div', num: field('orders'), den: atLeastOneMonth, whenZero: 0 } },
  {
    name: 'spend_per_month',
    expr: { op: 'div', num: field('total_spend'), den: atLeastOneMonth, whenZero: 0 },
  },
  {
    name: 'tickets_per_order',
    expr: {
      op: 'div',
      num: field('support_tickets_90d'),
      den: { op: 'add', args: [field('orders'), constant(1)] },
      whenZero: 0,
    },
  },
  ...PLANS.map((value) => oneHot('plan', value)),
  ...REGIONS.map((value) => oneHot('region', value)),
];

/** The raw fields an expression reads, in first-use order. */
export function fieldsOf(expr: Expr, into: Set<string> = new Set()): Set<string> {
  switch (expr.op) {
    case 'field':
      into.add(expr.name);
      break;
    case 'oneHot':
      into.add(expr.field);
      break;
    case 'log1p':
      fieldsOf(expr.of, into);
      break;
    case 'add':
    case 'max':
      for (const arg of expr.args) fieldsOf(arg, into);
      break;
    case 'div':
      fieldsOf(expr.num, into);
      fieldsOf(expr.den, into);
      break;
    case 'const':
      break;
  }
  return into;
}

/**
 * The definition of features as declared in this code: the one `keel train` and the pipelines use for
 * new models. Its missing-value policies and categories are those of the raw schema, for the fields the
 * features read.
 */
export function definitionOf(version: string, features: readonly FeatureDefinition[]): FeatureSetDefinition {
  const read = new Set<string>();
  for (const feature of features) fieldsOf(feature.expr, read);
  const fields = FEATURE_FIELD_NAMES.filter((name) => read.has(name));
  const unknown = [...read].filter((name) => !(FEATURE_FIELD_NAMES as string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `features read ${unknown.join(', ')}, which shared/features/schema.ts (RAW_FIELDS) does not declare`,
    );
  }
  return {
    version,
    features,
    categories: Object.fromEntries(Object.entries(CATEGORIES).filter(([name]) => read.has(name))) as Record<
      string,
      readonly string[]
    >,
    missing: Object.fromEntries(fields.map((name) => [name, missingPolicyOf(name)!])),
  };
}

export const CURRENT_DEFINITION: FeatureSetDefinition = definitionOf(FEATURE_SET_VERSION, FEATURES);

/** The current definition's missing-value policy, by raw field. */
export const MISSING_POLICY = CURRENT_DEFINITION.missing;
