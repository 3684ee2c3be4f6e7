/**
 * The single feature definition of the churn workload. Every Lambda, the trainer and the local tools
 * import features from here; nothing else in the repository computes one.
 */
export { CSV_HEADER, parseCsvRecord, parseLabeledCsvRecord, toCsvLine } from './csv.ts';
export { CATEGORIES, FEATURE_SET_VERSION, FEATURES, MISSING_POLICY } from './definition.ts';
export {
  type EncodeResult,
  encodeFeatures,
  encodeInto,
  FEATURE_COUNT,
  FEATURE_SET,
  type FeatureSet,
  featureIndex,
  unseenCategories,
} from './encode.ts';
export { canonicalJson, fingerprintOf } from './fingerprint.ts';
export * from './schema.ts';
