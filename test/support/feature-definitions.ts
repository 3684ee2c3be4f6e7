import {
  CURRENT_DEFINITION,
  type Expr,
  type FeatureSet,
  type FeatureSetDefinition,
  featureSetOf,
  type MissingPolicy,
} from '#shared/features/index.ts';

/**
 * Feature definitions other than this code's, as later code would have trained versions on: what a
 * registry, a server or a batch run must compute with the version's own definition, never this code's.
 */
const log1p = (name: string): Expr => ({ op: 'log1p', of: { op: 'field', name } });

/** This code's definition and one feature more (`log_orders`), of raw fields this code knows. */
export const EXTRA_FEATURE_DEFINITION: FeatureSetDefinition = {
  ...CURRENT_DEFINITION,
  version: '2.0.0-test',
  features: [...CURRENT_DEFINITION.features, { name: 'log_orders', expr: log1p('orders') }],
};
export const EXTRA_FEATURE_SET: FeatureSet = featureSetOf(EXTRA_FEATURE_DEFINITION);

/** A raw field this code's schema (RAW_FIELDS) does not declare: a field added after this code. */
export const LATER_FIELD = 'logins_30d';

/** This code's definition and `log_logins` = log1p(logins_30d), the new field under `policy`. */
export function laterFieldDefinition(policy: MissingPolicy): FeatureSetDefinition {
  return {
    ...CURRENT_DEFINITION,
    version: `3.0.0-test-${policy.kind}`,
    features: [...CURRENT_DEFINITION.features, { name: 'log_logins', expr: log1p(LATER_FIELD) }],
    missing: { ...CURRENT_DEFINITION.missing, [LATER_FIELD]: policy },
  };
}
