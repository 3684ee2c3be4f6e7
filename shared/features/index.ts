/**
 * The feature definitions of the churn workload and their one interpreter. Every Lambda, the trainer and
 * the local tools compute features through a {@link FeatureSet} from here; nothing else in the
 * repository computes one.
 */
export { CSV_HEADER, csvLineWriter, parseCsvRecord, parseLabeledCsvRecord, toCsvLine } from './csv.ts';
export {
  CATEGORIES,
  CURRENT_DEFINITION,
  type Expr,
  FEATURE_SET_VERSION,
  FEATURES,
  type FeatureDefinition,
  type FeatureSetDefinition,
  featureSetDefinitionSchema,
  fieldsOf,
  MISSING_POLICY,
} from './definition.ts';
export {
  type EncodeResult,
  encodeFeatures,
  encodeInto,
  FEATURE_COUNT,
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  featureIndex,
  featureSetOf,
  InvalidFeatureDefinitionError,
  storedFeatureSet,
  unseenCategories,
} from './encode.ts';
export { canonicalJson, fingerprintOf } from './fingerprint.ts';
export * from './schema.ts';
