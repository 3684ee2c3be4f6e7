import { z } from 'zod';

/**
 * The raw customer record: CSV columns, online-store fields and `attributes` keys (docs/architecture.md,
 * "Contracts").
 * Numeric domains are checked here so that nothing downstream sees NaN, Infinity or a negative count.
 */

export const PLANS = ['basic', 'standard', 'premium'] as const;
export const REGIONS = ['north', 'south', 'east', 'west', 'central'] as const;

/** Customer ids: generated ones are `c-000123`; upstream systems may use other safe ids. */
export const customerIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'customer id: 1-64 letters, digits or _.:- (e.g. c-000123)');

const finite = () => z.number().refine(Number.isFinite, 'must be a finite number');
const nonNegative = () => finite().min(0);
const count = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A categorical value. Known values are listed in {@link PLANS} and {@link REGIONS}; any other
 * well-formed value is accepted and encoded as "unseen" (all of its one-hot columns are 0), so a new
 * plan launched upstream degrades predictions and shows up in drift, instead of failing every request.
 */
const category = () => z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'lower-case word of 1-32 characters');

/** The fields that feed features, each with its domain. */
export const featureFieldsShape = {
  age: finite().min(18).max(100),
  income: nonNegative(),
  plan: category(),
  region: category(),
  tenure_months: nonNegative(),
  total_spend: nonNegative(),
  orders: count(),
  support_tickets_90d: count(),
  days_since_last_order: nonNegative(),
};

export const eventTimeSchema = z.iso.datetime({ offset: true });

/** A complete raw record, as stored in the online store and read from CSV. Unknown keys are rejected. */
export const rawRecordSchema = z.strictObject({
  customer_id: customerIdSchema,
  ...featureFieldsShape,
  event_time: eventTimeSchema,
});

/** Training rows carry the label. */
export const labeledRecordSchema = z.strictObject({
  ...rawRecordSchema.shape,
  churned: z.union([z.literal(0), z.literal(1)]),
});

/**
 * Request-time overrides (`attributes` of POST /predict): any subset of the raw record's fields. Only the
 * feature fields become features; `event_time` dates the values (freshness), `customer_id` must name the
 * request's customer.
 */
export const attributesSchema = rawRecordSchema.partial();

export type RawRecord = z.infer<typeof rawRecordSchema>;
export type LabeledRecord = z.infer<typeof labeledRecordSchema>;
export type FeatureFields = z.infer<z.ZodObject<typeof featureFieldsShape>>;
export type FeatureFieldName = keyof FeatureFields;
export type PartialFeatureFields = Partial<FeatureFields>;

export const FEATURE_FIELD_NAMES = Object.keys(featureFieldsShape) as FeatureFieldName[];
export const CATEGORICAL_FIELDS = ['plan', 'region'] as const satisfies readonly FeatureFieldName[];
export type CategoricalField = (typeof CATEGORICAL_FIELDS)[number];
export type NumericField = Exclude<FeatureFieldName, CategoricalField>;
export const NUMERIC_FIELDS = FEATURE_FIELD_NAMES.filter(
  (name): name is NumericField => !(CATEGORICAL_FIELDS as readonly string[]).includes(name),
);

/** Column order of raw CSV files (the label column only in training data). */
export const CSV_COLUMNS = [
  'customer_id',
  'age',
  'income',
  'plan',
  'region',
  'tenure_months',
  'total_spend',
  'orders',
  'support_tickets_90d',
  'days_since_last_order',
  'event_time',
] as const;
export const LABEL_COLUMN = 'churned';

/** Column order of outcome files: whether a customer churned, observed when (ISO 8601). */
export const OUTCOME_COLUMNS = ['customer_id', 'churned', 'observed_at'] as const;
