import { KeelError } from '#shared/errors.ts';
import {
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  InvalidFeatureDefinitionError,
  storedFeatureSet,
} from '#shared/features/index.ts';
import type { ModelMetadata } from './metadata.ts';

/** A version's features cannot be computed here: its definition is missing, unreadable or altered. */
export class FingerprintMismatchError extends KeelError {
  readonly code = 'Conflict';
}

/**
 * The version reads a required raw field the online store does not have yet: promoting it would fail
 * its requests. Load data with the field first (`keel etl run`).
 */
export class FieldNotInStoreError extends KeelError {
  readonly code = 'Conflict';
}

/** The feature set a registered version was trained on, from the definition it stores. */
export function featureSetOfVersion(
  metadata: Pick<ModelMetadata, 'name' | 'version' | 'feature_set'>,
): FeatureSet {
  const { definition, fingerprint } = metadata.feature_set;
  const label = `${metadata.name} ${metadata.version}`;
  if (definition === undefined) {
    if (fingerprint === FEATURE_SET.fingerprint) return FEATURE_SET;
    throw new FingerprintMismatchError(
      `${label} was registered without its feature definition, and its feature set ${fingerprint} is not ` +
        `the one this code defines (${FEATURE_SET.fingerprint}): nothing here can compute its features. ` +
        'Retrain it, or re-register its ONNX file with `keel models register`',
    );
  }
  try {
    return storedFeatureSet(definition, fingerprint);
  } catch (error) {
    if (!(error instanceof InvalidFeatureDefinitionError)) throw error;
    throw new FingerprintMismatchError(`${label}: ${error.message}; refusing to serve it`, { cause: error });
  }
}

/**
 * Refuses a version whose definition requires a raw field that the online store does not hold:
 * `storeFields` as the ETL recorded them, or this code's raw schema when nothing was recorded.
 */
export function assertFieldsInStore(
  label: string,
  featureSet: FeatureSet,
  storeFields: ReadonlySet<string> = new Set(FEATURE_FIELD_NAMES),
): void {
  const absent = featureSet.required.filter((field) => !storeFields.has(field));
  if (absent.length === 0) return;
  throw new FieldNotInStoreError(
    `${label} requires the raw field${absent.length > 1 ? 's' : ''} ${absent.join(', ')}, which the online ` +
      'store does not have yet: load data with it (`keel etl run`) before promoting, or give the field an ' +
      'imputation in the feature definition',
    { details: { fields: absent } },
  );
}

/** What a version's `metadata.json` records of the feature set it was trained on. */
export const featureSetMetadata = (set: FeatureSet): ModelMetadata['feature_set'] => ({
  version: set.version,
  fingerprint: set.fingerprint,
  names: [...set.names],
  definition: set.definition,
});
