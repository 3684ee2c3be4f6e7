import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FEATURE_SET } from '#shared/features/index.ts';
import {
  GOLDEN_COMMAND,
  GOLDEN_PATH,
  type GoldenFile,
  goldenFile,
} from '../../../scripts/features-golden.ts';

/**
 * The current feature definition against test/fixtures/features/golden.json, which `npm run
 * features:golden` writes: a change of the definition fails here once, saying so, until the file is
 * regenerated and its diff reviewed; with the definition unchanged, the vectors the interpreter computes
 * must be the file's.
 */
const golden = JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as GoldenFile;
const current = golden.fingerprint === FEATURE_SET.fingerprint;
/** As the file holds it: JSON has no -0. */
const asJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe('golden vectors of the current feature definition', () => {
  it('are of this code’s definition', () => {
    if (!current) {
      expect.fail(
        `the feature definition changed from ${golden.version} (${golden.fingerprint}) to ` +
          `${FEATURE_SET.version} (${FEATURE_SET.fingerprint}): run \`${GOLDEN_COMMAND}\` and review the ` +
          'diff of test/fixtures/features/golden.json',
      );
    }
    expect(golden.version).toBe(FEATURE_SET.version);
    expect(golden.names).toEqual(FEATURE_SET.names);
  });

  it.runIf(current)('are what the interpreter computes for each record', () => {
    for (const record of golden.records) {
      const { name, fields, ...expected } = record;
      const result = FEATURE_SET.encode(fields);
      const actual = result.ok
        ? {
            features: Object.fromEntries(FEATURE_SET.names.map((feature, i) => [feature, result.vector[i]])),
            imputed: result.imputed,
            unseen: result.unseen,
          }
        : { missing: result.missing };
      expect(asJson(actual), name).toEqual(expected);
    }
  });

  it.runIf(current)(
    'cover the records the command writes now (every raw field, each imputable one absent)',
    () => {
      const records = (file: GoldenFile) => file.records.map(({ name, fields }) => ({ name, fields }));
      expect(
        records(golden),
        `the raw schema changed since golden.json was written: run \`${GOLDEN_COMMAND}\``,
      ).toEqual(records(asJson(goldenFile())));
      expect(golden.records.some((r) => r.features && r.unseen?.length)).toBe(true);
      expect(golden.records.some((r) => r.imputed?.length)).toBe(true);
    },
  );
});
