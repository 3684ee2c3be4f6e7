import { type CategoricalField, type NumericField, PLANS, REGIONS } from './schema.ts';

/**
 * The churn feature set, declared as data. Keeping the arithmetic in this small expression language
 * (instead of arbitrary code) is what lets the fingerprint cover every formula: change an operand, a
 * constant, an order or a category and the fingerprint changes, whatever the bundler does to the code.
 */
export type Expr =
  | { readonly op: 'field'; readonly name: NumericField }
  | { readonly op: 'const'; readonly value: number }
  | { readonly op: 'log1p'; readonly of: Expr }
  | { readonly op: 'add' | 'max'; readonly args: readonly [Expr, Expr] }
  /** `num / den`, and `whenZero` when `den` is 0 (a defined value instead of Infinity or NaN). */
  | { readonly op: 'div'; readonly num: Expr; readonly den: Expr; readonly whenZero: number }
  /** 1 when the categorical field equals `value`, else 0 (so an unseen category is all zeros). */
  | { readonly op: 'oneHot'; readonly field: CategoricalField; readonly value: string };

export interface FeatureDefinition {
  readonly name: string;
  readonly expr: Expr;
}

/** How a missing input field is handled: `required` fails the request, `impute` substitutes a value. */
export type MissingPolicy =
  | { readonly kind: 'required' }
  | { readonly kind: 'impute'; readonly value: number };

const field = (name: NumericField): Expr => ({ op: 'field', name });
const constant = (value: number): Expr => ({ op: 'const', value });
const atLeastOneMonth: Expr = { op: 'max', args: [field('tenure_months'), constant(1)] };

/** Bump when the definition changes in a way a reader should notice; the fingerprint changes anyway. */
export const FEATURE_SET_VERSION = '1.0.0';

export const CATEGORIES: Readonly<Record<CategoricalField, readonly string[]>> = {
  plan: PLANS,
  region: REGIONS,
};

/**
 * Fields that may be absent at prediction time. A CRM that has never logged a ticket sends nothing,
 * which means zero tickets; every other field is required.
 */
export const MISSING_POLICY: Readonly<Record<NumericField | CategoricalField, MissingPolicy>> = {
  age: { kind: 'required' },
  income: { kind: 'required' },
  plan: { kind: 'required' },
  region: { kind: 'required' },
  tenure_months: { kind: 'required' },
  total_spend: { kind: 'required' },
  orders: { kind: 'required' },
  support_tickets_90d: { kind: 'impute', value: 0 },
  days_since_last_order: { kind: 'required' },
};

/** The ordered features the model sees (the reference FastAPI service's 20, in its order). */
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
  ...PLANS.map((value) => ({ name: `plan_${value}`, expr: { op: 'oneHot', field: 'plan', value } as const })),
  ...REGIONS.map((value) => ({
    name: `region_${value}`,
    expr: { op: 'oneHot', field: 'region', value } as const,
  })),
];
