import { definitionOf } from '#shared/features/definition.ts';
import { FEATURES, type FeatureSet, featureSetOf } from '#shared/features/index.ts';

/**
 * Feature sets of definitions other than this code's, as versions trained before or after a feature
 * change carry them.
 */

/** This code's features plus `log1p(support_tickets_90d)`: a definition one feature later. */
export const TICKETS_LOG_SET: FeatureSet = featureSetOf(
  definitionOf('1.1.0', [
    ...FEATURES,
    { name: 'log_tickets', expr: { op: 'log1p', of: { op: 'field', name: 'support_tickets_90d' } } },
  ]),
);

/** A definition that requires a raw field this code's schema does not have (a later schema's). */
export const LOGINS_SET: FeatureSet = featureSetOf({
  version: '2.0.0',
  features: [
    { name: 'age', expr: { op: 'field', name: 'age' } },
    { name: 'logins_30d', expr: { op: 'field', name: 'logins_30d' } },
  ],
  categories: {},
  missing: { age: { kind: 'required' }, logins_30d: { kind: 'required' } },
});
