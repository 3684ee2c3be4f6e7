import { CATEGORIES, type Expr, FEATURE_SET_VERSION, FEATURES, MISSING_POLICY } from './definition.ts';
import { fingerprintOf } from './fingerprint.ts';
import {
  CATEGORICAL_FIELDS,
  type CategoricalField,
  FEATURE_FIELD_NAMES,
  type FeatureFieldName,
  type FeatureFields,
  type PartialFeatureFields,
} from './schema.ts';

export interface FeatureSet {
  /** Human-readable version of the definition. */
  readonly version: string;
  /** `sha256:…` of the whole definition: features, order, categories, missing-value policy. */
  readonly fingerprint: string;
  /** Feature names in vector order. */
  readonly names: readonly string[];
}

export const FEATURE_SET: FeatureSet = Object.freeze({
  version: FEATURE_SET_VERSION,
  fingerprint: fingerprintOf({
    version: FEATURE_SET_VERSION,
    features: FEATURES,
    categories: CATEGORIES,
    missing: MISSING_POLICY,
  }),
  names: Object.freeze(FEATURES.map((feature) => feature.name)),
});

export const FEATURE_COUNT = FEATURES.length;

type Compiled = (fields: FeatureFields) => number;

function compile(expr: Expr): Compiled {
  switch (expr.op) {
    case 'field': {
      const name = expr.name;
      return (fields) => fields[name];
    }
    case 'const': {
      const value = expr.value;
      return () => value;
    }
    case 'log1p': {
      const of = compile(expr.of);
      return (fields) => Math.log1p(of(fields));
    }
    case 'add': {
      const [a, b] = expr.args.map(compile) as [Compiled, Compiled];
      return (fields) => a(fields) + b(fields);
    }
    case 'max': {
      const [a, b] = expr.args.map(compile) as [Compiled, Compiled];
      return (fields) => Math.max(a(fields), b(fields));
    }
    case 'div': {
      const num = compile(expr.num);
      const den = compile(expr.den);
      const whenZero = expr.whenZero;
      return (fields) => {
        const d = den(fields);
        return d === 0 ? whenZero : num(fields) / d;
      };
    }
    case 'oneHot': {
      const { field, value } = expr;
      return (fields) => (fields[field] === value ? 1 : 0);
    }
  }
}

const COMPILED: readonly Compiled[] = FEATURES.map((feature) => compile(feature.expr));

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
 * Turns (possibly partial) validated fields into the ordered feature vector. Absent fields are imputed
 * where the definition allows it; otherwise the result lists every missing field.
 */
export function encodeFeatures(fields: PartialFeatureFields): EncodeResult {
  const missing: FeatureFieldName[] = [];
  const imputed: FeatureFieldName[] = [];
  const complete: Record<string, unknown> = { ...fields };
  for (const name of FEATURE_FIELD_NAMES) {
    if (fields[name] !== undefined) continue;
    const policy = MISSING_POLICY[name];
    if (policy.kind === 'impute') {
      complete[name] = policy.value;
      imputed.push(name);
    } else {
      missing.push(name);
    }
  }
  if (missing.length > 0) return { ok: false, missing };
  const record = complete as FeatureFields;
  const vector = new Float64Array(FEATURE_COUNT);
  for (let i = 0; i < FEATURE_COUNT; i++) vector[i] = COMPILED[i]!(record);
  return { ok: true, vector, imputed, unseen: unseenCategories(record) };
}

/** Fast path for validated complete records (ETL, batch scoring): writes one row of a row-major matrix. */
export function encodeInto(record: FeatureFields, out: Float32Array | Float64Array, offset: number): void {
  for (let i = 0; i < FEATURE_COUNT; i++) out[offset + i] = COMPILED[i]!(record);
}

export function unseenCategories(record: Pick<FeatureFields, CategoricalField>): CategoricalField[] {
  return CATEGORICAL_FIELDS.filter((name) => !CATEGORIES[name].includes(record[name]));
}

/** Position of a feature in the vector; throws for an unknown name so a typo cannot read column 0. */
export function featureIndex(name: string): number {
  const index = FEATURE_SET.names.indexOf(name);
  if (index < 0) throw new Error(`unknown feature "${name}"; known: ${FEATURE_SET.names.join(', ')}`);
  return index;
}
