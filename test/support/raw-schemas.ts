import type { RawSchema } from '#shared/data/generate.ts';
import { RAW_FIELDS } from '#shared/features/index.ts';

/** The example of a new raw field: counted, imputed as 0 when missing, drawn ~Poisson(4). */
export const LOGINS_30D = {
  kind: 'number',
  min: 0,
  integer: true,
  description: 'logins in the last 30 days',
  missing: { kind: 'impute', value: 0 },
  synthetic: { dist: 'poisson', mean: 4 },
} as const;

/** This code's raw schema with {@link LOGINS_30D} added, as a feature change would declare it. */
export const WITH_LOGINS: RawSchema = { ...RAW_FIELDS, logins_30d: LOGINS_30D };
