import {
  CURRENT_DEFINITION,
  type Expr,
  type FeatureSetDefinition,
  featureSetDefinitionSchema,
  fieldsOf,
} from './definition.ts';
import { fingerprintOf } from './fingerprint.ts';
import {
  type CategoricalField,
  type FeatureFieldName,
  type PartialFeatureFields,
  rawFieldSpec,
} from './schema.ts';

/** A record's values by raw field name, as read from the store, a request or a CSV row. */
export type FieldValues = Readonly<Partial<Record<string, number | string>>>;

export type EncodeResult =
  | {
      readonly ok: true;
      readonly vector: Float64Array;
      /** Fields that were absent and filled by their imputation rule. */
      readonly imputed: FeatureFieldName[];
      /** Categorical fields whose value is not a known category (encoded as all zeros). */
      readonly unseen: CategoricalField[];
    }
  | { readonly ok: false; readonly missing: FeatureFieldName[] };

/**
 * One feature definition, ready to compute vectors: the single interpreter of definitions. The trainer,
 * the ETL, batch scoring, serving and drift all compute a model's features through the feature set of
 * that model's definition.
 */
export interface FeatureSet {
  /** Human-readable version of the definition. */
  readonly version: string;
  /** `sha256:…` of the whole definition: features, order, categories, missing-value policy. */
  readonly fingerprint: string;
  /** Feature names in vector order. */
  readonly names: readonly string[];
  readonly count: number;
  /** The serialized definition (what a model version stores). */
  readonly definition: FeatureSetDefinition;
  /** The raw fields the features read. */
  readonly fields: readonly string[];
  /** The fields read that a record must have (no imputation). */
  readonly required: readonly string[];
  /** The categorical fields read, with their known values. */
  readonly categories: Readonly<Record<string, readonly string[]>>;
  /**
   * Turns (possibly partial) fields into the ordered feature vector. Absent fields are imputed where the
   * definition allows it; otherwise the result lists every missing field.
   */
  encode(fields: FieldValues): EncodeResult;
  /**
   * Fast path for validated records (ETL, batch scoring, training): writes one row of a row-major
   * matrix, imputing absent imputable fields. Returns the first required field the record lacks (and
   * writes nothing), else undefined.
   */
  encodeInto(record: FieldValues, out: Float32Array | Float64Array, offset: number): string | undefined;
  /** Categorical fields read whose value is not a known category. */
  unseen(record: FieldValues): CategoricalField[];
  /** Position of a feature in the vector; throws for an unknown name so a typo cannot read column 0. */
  index(name: string): number;
}

type Compiled = (fields: FieldValues) => number;

/** A definition this code cannot compute (an operand of the wrong kind, a field without a policy). */
export class InvalidFeatureDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidFeatureDefinitionError';
  }
}

function compile(expr: Expr, definition: FeatureSetDefinition): Compiled {
  switch (expr.op) {
    case 'field': {
      const { name } = expr;
      if (rawFieldSpec(name)?.kind === 'category') {
        throw new InvalidFeatureDefinitionError(`field "${name}" is categorical: use oneHot, not field`);
      }
      const policy = definition.missing[name];
      if (policy?.kind === 'impute') {
        const value = policy.value;
        return (fields) => (fields[name] as number | undefined) ?? value;
      }
      return (fields) => fields[name] as number;
    }
    case 'const': {
      const value = expr.value;
      return () => value;
    }
    case 'log1p': {
      const of = compile(expr.of, definition);
      return (fields) => Math.log1p(of(fields));
    }
    case 'add': {
      const [a, b] = expr.args.map((arg) => compile(arg, definition)) as [Compiled, Compiled];
      return (fields) => a(fields) + b(fields);
    }
    case 'max': {
      const [a, b] = expr.args.map((arg) => compile(arg, definition)) as [Compiled, Compiled];
      return (fields) => Math.max(a(fields), b(fields));
    }
    case 'div': {
      const num = compile(expr.num, definition);
      const den = compile(expr.den, definition);
      const whenZero = expr.whenZero;
      return (fields) => {
        const d = den(fields);
        return d === 0 ? whenZero : num(fields) / d;
      };
    }
    case 'oneHot': {
      const { field, value } = expr;
      if (rawFieldSpec(field)?.kind === 'number') {
        throw new InvalidFeatureDefinitionError(
          `field "${field}" is numeric: oneHot reads categorical fields`,
        );
      }
      if (definition.categories[field] === undefined) {
        throw new InvalidFeatureDefinitionError(`oneHot reads ${field}, which has no categories entry`);
      }
      return (fields) => (fields[field] === value ? 1 : 0);
    }
  }
}

function build(definition: FeatureSetDefinition): FeatureSet {
  const names = definition.features.map((feature) => feature.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new InvalidFeatureDefinitionError(`feature "${duplicate}" is defined twice`);
  const read = new Set<string>();
  for (const feature of definition.features) fieldsOf(feature.expr, read);
  const unpoliced = [...read].filter((name) => definition.missing[name] === undefined);
  if (unpoliced.length > 0) {
    throw new InvalidFeatureDefinitionError(`no missing-value policy for ${unpoliced.join(', ')}`);
  }
  // In the policy table's order (the raw schema's), which is how messages list missing fields.
  const fields = Object.keys(definition.missing).filter((name) => read.has(name));
  const compiled = definition.features.map((feature) => compile(feature.expr, definition));
  const count = compiled.length;
  const required = fields.filter((name) => definition.missing[name]?.kind === 'required');
  const imputable = fields.filter((name) => definition.missing[name]?.kind === 'impute');
  const categorical = Object.entries(definition.categories).filter(([name]) => read.has(name));
  const unseen = (record: FieldValues) =>
    categorical
      .filter(([name, values]) => !values.includes(record[name] as string))
      .map(([name]) => name as CategoricalField);
  const fill = (record: FieldValues, out: Float32Array | Float64Array, offset: number) => {
    for (let i = 0; i < count; i++) out[offset + i] = compiled[i]!(record);
  };
  const encodeInto = (record: FieldValues, out: Float32Array | Float64Array, offset: number) => {
    for (const name of required) if (record[name] === undefined) return name;
    fill(record, out, offset);
    return undefined;
  };
  return Object.freeze({
    version: definition.version,
    fingerprint: fingerprintOf(definition),
    names: Object.freeze(names),
    count,
    definition,
    fields: Object.freeze(fields),
    required: Object.freeze(required),
    categories: Object.freeze(Object.fromEntries(categorical)),
    encode(values: FieldValues): EncodeResult {
      const missing = required.filter((name) => values[name] === undefined) as FeatureFieldName[];
      if (missing.length > 0) return { ok: false, missing };
      const imputed = imputable.filter((name) => values[name] === undefined) as FeatureFieldName[];
      const vector = new Float64Array(count);
      fill(values, vector, 0);
      return { ok: true, vector, imputed, unseen: unseen(values) };
    },
    encodeInto,
    unseen,
    index(name: string): number {
      const index = names.indexOf(name);
      if (index < 0) throw new Error(`unknown feature "${name}"; known: ${names.join(', ')}`);
      return index;
    },
  });
}

const built = new Map<string, FeatureSet>();

/** The feature set of a definition, built once per fingerprint. */
export function featureSetOf(definition: FeatureSetDefinition): FeatureSet {
  const fingerprint = fingerprintOf(definition);
  let set = built.get(fingerprint);
  if (!set) {
    set = build(definition);
    built.set(fingerprint, set);
  }
  return set;
}

/** The features new models are trained on: this code's definition. */
export const FEATURE_SET: FeatureSet = featureSetOf(CURRENT_DEFINITION);
export const FEATURE_COUNT = FEATURE_SET.count;

/** The current definition's {@link FeatureSet.encode}. */
export const encodeFeatures = (fields: PartialFeatureFields | FieldValues): EncodeResult =>
  FEATURE_SET.encode(fields as FieldValues);

/** The current definition's {@link FeatureSet.encodeInto}, for records validated by this code's schema. */
export function encodeInto(record: FieldValues, out: Float32Array | Float64Array, offset: number): void {
  const missing = FEATURE_SET.encodeInto(record, out, offset);
  if (missing !== undefined) throw new Error(`record lacks the required field ${missing}`);
}

export const unseenCategories = (record: FieldValues) => FEATURE_SET.unseen(record);
export const featureIndex = (name: string) => FEATURE_SET.index(name);

/**
 * The feature set of a stored definition (a model version's `feature_set.definition`), refused when it
 * does not parse, cannot be computed or does not hash to the fingerprint stored beside it.
 */
export function storedFeatureSet(definition: unknown, fingerprint: string): FeatureSet {
  const parsed = featureSetDefinitionSchema.safeParse(definition);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidFeatureDefinitionError(
      `the stored feature definition does not parse: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  const set = featureSetOf(parsed.data);
  if (set.fingerprint !== fingerprint) {
    throw new InvalidFeatureDefinitionError(
      `the stored feature definition hashes to ${set.fingerprint}, not the stored fingerprint ${fingerprint}`,
    );
  }
  return set;
}
