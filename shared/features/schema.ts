import { z } from 'zod';

/**
 * The raw customer record, declared as data: CSV columns, online-store fields and `attributes` keys
 * (docs/architecture.md, "Contracts") all follow {@link RAW_FIELDS}. Numeric domains are checked here so
 * that nothing downstream sees NaN, Infinity or a negative count. Adding a field is one entry: the
 * validators, the CSV columns and the data generator (through `synthetic`) follow it.
 */

export const PLANS = ['basic', 'standard', 'premium'] as const;
export const REGIONS = ['north', 'south', 'east', 'west', 'central'] as const;

/** How `keel data generate` draws a field that the simulated customers' world does not produce itself. */
export type SyntheticValues =
  | { readonly dist: 'poisson'; readonly mean: number }
  | { readonly dist: 'uniform'; readonly min: number; readonly max: number }
  | { readonly dist: 'lognormal'; readonly median: number; readonly sigma: number }
  | { readonly dist: 'choice'; readonly values: readonly string[]; readonly p: readonly number[] };

/** What an absent value means: `required` refuses the record, `impute` substitutes a number. */
export type MissingPolicy =
  | { readonly kind: 'required' }
  | { readonly kind: 'impute'; readonly value: number };

interface FieldCommon {
  /** What the value is, for people (docs, `keel features diff`). */
  readonly description: string;
  /** @default required */
  readonly missing?: MissingPolicy;
  /** Needed for a field the generator's world model does not simulate (every field added later). */
  readonly synthetic?: SyntheticValues;
}

export type RawFieldSpec =
  | (FieldCommon & {
      readonly kind: 'number';
      readonly min: number;
      readonly max?: number;
      /** A count: whole numbers up to 2^53 − 1. */
      readonly integer?: boolean;
    })
  | (FieldCommon & {
      readonly kind: 'category';
      /** The known values; others are accepted and encoded as unseen (every one-hot column 0). */
      readonly values: readonly string[];
    });

/** The raw fields, in CSV column order (between `customer_id` and `event_time`). */
export const RAW_FIELDS = {
  age: { kind: 'number', min: 18, max: 100, description: 'age in years' },
  income: { kind: 'number', min: 0, description: 'yearly income' },
  plan: { kind: 'category', values: PLANS, description: 'subscription plan' },
  region: { kind: 'category', values: REGIONS, description: 'sales region' },
  tenure_months: { kind: 'number', min: 0, description: 'months since sign-up' },
  total_spend: { kind: 'number', min: 0, description: 'lifetime spend' },
  orders: { kind: 'number', min: 0, integer: true, description: 'lifetime orders' },
  support_tickets_90d: {
    kind: 'number',
    min: 0,
    integer: true,
    description: 'support tickets in the last 90 days; a CRM that has never logged one sends nothing',
    missing: { kind: 'impute', value: 0 },
  },
  days_since_last_order: { kind: 'number', min: 0, description: 'days since the last order' },
} as const satisfies Record<string, RawFieldSpec>;

type Fields = typeof RAW_FIELDS;
export type FeatureFieldName = keyof Fields & string;
export type CategoricalField = {
  [K in FeatureFieldName]: Fields[K]['kind'] extends 'category' ? K : never;
}[FeatureFieldName];
export type NumericField = Exclude<FeatureFieldName, CategoricalField>;
/** Fields a record may lack: their policy imputes them. */
export type ImputableField = {
  [K in FeatureFieldName]: Fields[K] extends { readonly missing: { readonly kind: 'impute' } } ? K : never;
}[FeatureFieldName];

type ValueOf<K extends FeatureFieldName> = K extends CategoricalField ? string : number;
export type FeatureFields = { [K in FeatureFieldName]: ValueOf<K> };
export type PartialFeatureFields = Partial<FeatureFields>;
/** What a stored or loaded record holds: every required field, the imputable ones when known. */
export type RecordFields = { [K in Exclude<FeatureFieldName, ImputableField>]: ValueOf<K> } & {
  [K in ImputableField]?: ValueOf<K>;
};

export const FEATURE_FIELD_NAMES = Object.keys(RAW_FIELDS) as FeatureFieldName[];
const specOf = (name: string): RawFieldSpec | undefined =>
  (RAW_FIELDS as Readonly<Record<string, RawFieldSpec>>)[name];
export const CATEGORICAL_FIELDS = FEATURE_FIELD_NAMES.filter(
  (name): name is CategoricalField => specOf(name)?.kind === 'category',
);
export const NUMERIC_FIELDS = FEATURE_FIELD_NAMES.filter(
  (name): name is NumericField => specOf(name)?.kind === 'number',
);

/** The policy of a raw field of this code's schema; undefined for a field it does not know. */
export const missingPolicyOf = (name: string): MissingPolicy | undefined => {
  const spec = specOf(name);
  return spec && (spec.missing ?? { kind: 'required' });
};
export const rawFieldSpec = specOf;
export const isImputable = (name: string) => missingPolicyOf(name)?.kind === 'impute';

/** Customer ids: generated ones are `c-000123`; upstream systems may use other safe ids. */
export const customerIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'customer id: 1-64 letters, digits or _.:- (e.g. c-000123)');

/**
 * A categorical value. Known values are listed in the field's `values`; any other
 * well-formed value is accepted and encoded as "unseen" (all of its one-hot columns are 0), so a new
 * plan launched upstream degrades predictions and shows up in drift, instead of failing every request.
 */
const category = () => z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'lower-case word of 1-32 characters');

function validatorOf(spec: RawFieldSpec): z.ZodType<number | string> {
  if (spec.kind === 'category') return category();
  if (spec.integer)
    return z
      .number()
      .int()
      .min(spec.min)
      .max(spec.max ?? Number.MAX_SAFE_INTEGER);
  const finite = z.number().refine(Number.isFinite, 'must be a finite number').min(spec.min);
  return spec.max === undefined ? finite : finite.max(spec.max);
}

/** The fields that feed features, each with its domain (imputable ones optional). */
const fieldShape = Object.fromEntries(
  FEATURE_FIELD_NAMES.map((name) => {
    const spec: RawFieldSpec = RAW_FIELDS[name];
    const validator = validatorOf(spec);
    return [name, spec.missing?.kind === 'impute' ? validator.optional() : validator];
  }),
);

export const eventTimeSchema = z.iso.datetime({ offset: true });

export type RawRecord = RecordFields & { customer_id: string; event_time: string };
export type LabeledRecord = RawRecord & { churned: 0 | 1 };

/** A raw record, as stored in the online store and read from CSV. Unknown keys are rejected. */
export const rawRecordSchema = z.strictObject({
  customer_id: customerIdSchema,
  ...fieldShape,
  event_time: eventTimeSchema,
}) as unknown as z.ZodType<RawRecord>;

/** Training rows carry the label. */
export const labeledRecordSchema = z.strictObject({
  customer_id: customerIdSchema,
  ...fieldShape,
  event_time: eventTimeSchema,
  churned: z.union([z.literal(0), z.literal(1)]),
}) as unknown as z.ZodType<LabeledRecord>;

/**
 * Request-time overrides (`attributes` of POST /predict): any subset of the raw record's fields. Only the
 * feature fields become features; `event_time` dates the values (freshness), `customer_id` must name the
 * request's customer.
 */
export const attributesSchema = z
  .strictObject({
    customer_id: customerIdSchema,
    ...fieldShape,
    event_time: eventTimeSchema,
  })
  .partial() as unknown as z.ZodType<Partial<RawRecord>>;

/** Column order of raw CSV files (the label column only in training data). */
export const CSV_COLUMNS = ['customer_id', ...FEATURE_FIELD_NAMES, 'event_time'] as const;
export const LABEL_COLUMN = 'churned';

/** Column order of outcome files: whether a customer churned, observed when (ISO 8601). */
export const OUTCOME_COLUMNS = ['customer_id', 'churned', 'observed_at'] as const;
