import { describe, expect, it } from 'vitest';
import { FEATURE_FIELD_NAMES, FEATURE_SET, type FeatureSet, featureSetOf } from '#shared/features/index.ts';
import {
  assertFieldsInStore,
  FieldNotInStoreError,
  FingerprintMismatchError,
  featureSetMetadata,
  featureSetOfVersion,
} from '#shared/registry/feature-sets.ts';
import { EXTRA_FEATURE_SET, LATER_FIELD, laterFieldDefinition } from '../../support/feature-definitions.ts';

type ModelFeatureSet = ReturnType<typeof featureSetMetadata>;

/** A version's metadata as metadata.json gives it back: through JSON. */
const versionOn = (featureSet: ModelFeatureSet, version = 'v7') =>
  JSON.parse(JSON.stringify({ name: 'churn', version, feature_set: featureSet }));

const refusal = (run: () => unknown): Error => {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
};

describe('featureSetOfVersion: the features a registered version is served with', () => {
  it('is the definition the version stores, whatever this code defines', () => {
    for (const set of [FEATURE_SET, EXTRA_FEATURE_SET]) {
      const served = featureSetOfVersion(versionOn(featureSetMetadata(set)));
      expect(served.fingerprint).toBe(set.fingerprint);
      expect(served.names).toEqual(set.names);
    }
    expect(featureSetOfVersion(versionOn(featureSetMetadata(EXTRA_FEATURE_SET))).count).toBe(
      FEATURE_SET.count + 1,
    );
  });

  it('serves a version stored without a definition only with this code’s fingerprint', () => {
    const { definition: _d, ...current } = featureSetMetadata(FEATURE_SET);
    expect(featureSetOfVersion(versionOn(current))).toBe(FEATURE_SET);
    const { definition: _e, ...other } = featureSetMetadata(EXTRA_FEATURE_SET);
    const error = refusal(() => featureSetOfVersion(versionOn(other)));
    expect(error).toBeInstanceOf(FingerprintMismatchError);
    expect(error.message).toMatch(
      `churn v7 was registered without its feature definition, and its feature set ${EXTRA_FEATURE_SET.fingerprint}`,
    );
  });

  it('refuses an altered definition or an unknown operation, naming the version', () => {
    const stored = featureSetMetadata(EXTRA_FEATURE_SET);
    const altered = { ...stored, definition: { ...stored.definition!, version: '2.0.1' } };
    const unknownOp = {
      ...stored,
      definition: {
        ...stored.definition!,
        features: [{ name: 'x', expr: { op: 'exp', of: { op: 'field', name: 'age' } } }],
      },
    };
    for (const [metadata, message] of [
      [altered, /^churn v9: the stored feature definition hashes to sha256:[0-9a-f]{64}, not the stored/],
      [unknownOp, /^churn v9: the stored feature definition does not parse: features\.0\.expr/],
    ] as const) {
      const error = refusal(() => featureSetOfVersion(versionOn(metadata as ModelFeatureSet, 'v9')));
      expect(error).toBeInstanceOf(FingerprintMismatchError);
      expect(error.message).toMatch(message);
    }
  });
});

describe('assertFieldsInStore', () => {
  const later: FeatureSet = featureSetOf(laterFieldDefinition({ kind: 'required' }));
  const fields = new Set<string>(FEATURE_FIELD_NAMES);

  it('refuses a version requiring a raw field the store lacks, naming it (this code’s fields by default)', () => {
    for (const storeFields of [fields, undefined]) {
      const error = refusal(() => assertFieldsInStore('churn v8', later, storeFields));
      expect(error).toBeInstanceOf(FieldNotInStoreError);
      expect(error.message).toMatch(`churn v8 requires the raw field ${LATER_FIELD}, which the online store`);
      expect((error as FieldNotInStoreError).details).toEqual({ fields: [LATER_FIELD] });
    }
    expect(() => assertFieldsInStore('churn v8', later, new Set([...fields, LATER_FIELD]))).not.toThrow();
  });

  it('needs no imputed field, and names every required one missing', () => {
    const imputed = featureSetOf(laterFieldDefinition({ kind: 'impute', value: 0 }));
    expect(() => assertFieldsInStore('churn v8', imputed, fields)).not.toThrow();
    const error = refusal(() => assertFieldsInStore('churn v8', later, new Set(['age'])));
    expect(error.message).toMatch(/requires the raw fields [a-z_, 0-9]+, which/);
    expect((error as FieldNotInStoreError).details).toEqual({
      fields: later.required.filter((field) => field !== 'age'),
    });
  });
});
