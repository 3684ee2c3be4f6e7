/**
 * The golden vectors of this code's feature definition, regenerated rather than edited by hand:
 *   npm run features:golden            writes test/fixtures/features/golden.json
 *   npm run features:golden -- --freeze writes test/fixtures/features/reference-<version>.json
 *
 * golden.json holds the definition's version, fingerprint and feature names, and the vectors it computes
 * for a fixed set of raw records (typical, zeros, extremes, an unseen category, each imputable field
 * absent, nothing known); test/unit/features/golden.test.ts fails while the file is not the current
 * definition's. After a deliberate change of the definition, run this and review the diff.
 *
 * `--freeze` keeps a copy of the current definition as a model version stores it (metadata.json's
 * `feature_set`), for tests of the interpreter that must outlive the definition; it never overwrites one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  RAW_FIELDS,
  type RawFieldSpec,
} from '#shared/features/index.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const FIXTURES_DIR = join(ROOT, 'test/fixtures/features');
export const GOLDEN_PATH = join(FIXTURES_DIR, 'golden.json');
export const GOLDEN_COMMAND = 'npm run features:golden';

/** One record of golden.json and what the definition makes of it. */
export interface GoldenRecord {
  readonly name: string;
  readonly fields: FieldValues;
  /** The vector by feature name, in vector order (a reviewable diff), when every required field is there. */
  readonly features?: Readonly<Record<string, number>>;
  readonly imputed?: string[];
  readonly unseen?: string[];
  /** The required fields it lacks, when it lacks any. */
  readonly missing?: string[];
}

export interface GoldenFile {
  readonly about: string;
  readonly version: string;
  readonly fingerprint: string;
  readonly names: readonly string[];
  readonly records: readonly GoldenRecord[];
}

type Case = 'typical' | 'zero' | 'extreme' | 'unseen';

/** The values of the fields the generator's world has, per case: those the reference service was checked on. */
const KNOWN: Readonly<Record<string, Readonly<Record<Case, number | string>>>> = {
  age: { typical: 40, zero: 18, extreme: 100, unseen: 33.5 },
  income: { typical: 50000, zero: 0, extreme: 1e12, unseen: 75000.25 },
  plan: { typical: 'standard', zero: 'basic', extreme: 'premium', unseen: 'enterprise' },
  region: { typical: 'east', zero: 'north', extreme: 'central', unseen: 'west' },
  tenure_months: { typical: 10, zero: 0, extreme: 1e6, unseen: 0.5 },
  total_spend: { typical: 500, zero: 0, extreme: 1e15, unseen: 123.45 },
  orders: { typical: 20, zero: 0, extreme: 7, unseen: 3 },
  support_tickets_90d: { typical: 2, zero: 3, extreme: Number.MAX_SAFE_INTEGER, unseen: 0 },
  days_since_last_order: { typical: 5, zero: 0, extreme: 1e9, unseen: 12.5 },
};

/** A value of a field added since, derived from its declaration. */
function derived(spec: RawFieldSpec, which: Case): number | string {
  if (spec.kind === 'category') {
    if (which === 'unseen') return 'unseen';
    return which === 'extreme' ? spec.values.at(-1)! : spec.values[0]!;
  }
  const whole = (value: number) => (spec.integer ? Math.round(value) : value);
  const synthetic = spec.synthetic;
  const typical = whole(
    synthetic?.dist === 'poisson'
      ? synthetic.mean
      : synthetic?.dist === 'uniform'
        ? (synthetic.min + synthetic.max) / 2
        : synthetic?.dist === 'lognormal'
          ? synthetic.median
          : spec.min + 1,
  );
  switch (which) {
    case 'typical':
      return typical;
    case 'zero':
      return Math.max(spec.min, 0);
    case 'extreme':
      return spec.max ?? (spec.integer ? Number.MAX_SAFE_INTEGER : 1e12);
    case 'unseen':
      return spec.integer ? typical : typical + 0.5;
  }
}

/** A record of every raw field of this code's schema for a case. */
function recordOf(which: Case): Record<string, number | string> {
  return Object.fromEntries(
    Object.entries(RAW_FIELDS as Readonly<Record<string, RawFieldSpec>>).map(([name, spec]) => [
      name,
      KNOWN[name]?.[which] ?? derived(spec, which),
    ]),
  );
}

function goldenRecord(set: FeatureSet, name: string, fields: FieldValues): GoldenRecord {
  const result = set.encode(fields);
  if (!result.ok) return { name, fields, missing: [...result.missing] };
  return {
    name,
    fields,
    features: Object.fromEntries(set.names.map((feature, i) => [feature, result.vector[i]!])),
    imputed: [...result.imputed],
    unseen: [...result.unseen],
  };
}

/** The records of golden.json for a feature set: the cases above, then each imputable field absent. */
export function goldenRecords(set: FeatureSet): GoldenRecord[] {
  const typical = recordOf('typical');
  const imputable = set.fields.filter((field) => set.definition.missing[field]?.kind === 'impute');
  return [
    goldenRecord(set, 'typical customer', typical),
    goldenRecord(set, 'zero orders, tenure and income', recordOf('zero')),
    goldenRecord(set, 'extreme values', recordOf('extreme')),
    goldenRecord(set, 'unseen category, fractional values', recordOf('unseen')),
    ...imputable.map((field) => {
      const { [field]: _absent, ...rest } = typical;
      return goldenRecord(set, `typical customer without ${field}`, rest);
    }),
    goldenRecord(set, 'nothing known', {}),
  ];
}

/** golden.json for a feature set (this code's by default). */
export function goldenFile(set: FeatureSet = FEATURE_SET): GoldenFile {
  return {
    about: `Written by \`${GOLDEN_COMMAND}\` (scripts/features-golden.ts): the vectors of feature definition ${set.version}. Do not edit; regenerate and review the diff.`,
    version: set.version,
    fingerprint: set.fingerprint,
    names: set.names,
    records: goldenRecords(set),
  };
}

/** Writes JSON as the repository formats it (Biome), so a regeneration without changes changes nothing. */
function writeJson(path: string, value: unknown): void {
  mkdirSync(FIXTURES_DIR, { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  execFileSync(join(ROOT, 'node_modules/.bin/biome'), ['format', '--write', path], { stdio: 'ignore' });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { freeze: { type: 'boolean', default: false } } });
  if (values.freeze) {
    const path = join(FIXTURES_DIR, `reference-${FEATURE_SET.version}.json`);
    if (existsSync(path)) {
      console.error(`${path} exists: a frozen definition is never rewritten`);
      process.exit(1);
    }
    writeJson(path, featureSetMetadata(FEATURE_SET));
    console.log(`froze feature definition ${FEATURE_SET.version} (${FEATURE_SET.fingerprint}) in ${path}`);
  } else {
    writeJson(GOLDEN_PATH, goldenFile());
    console.log(
      `wrote ${GOLDEN_PATH}: feature definition ${FEATURE_SET.version} (${FEATURE_SET.fingerprint}); ` +
        'review its diff (git diff test/fixtures/features/golden.json)',
    );
  }
}
