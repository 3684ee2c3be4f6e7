import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { runEtl } from '#shared/etl/etl.ts';
import type { FeatureChangeReport } from '#shared/features/diff.ts';
import {
  CSV_HEADER,
  type EncodeResult,
  type Expr,
  encodeFeatures,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSetDefinition,
  fingerprintOf,
  type LabeledRecord,
  toCsvLine,
} from '#shared/features/index.ts';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';
import { modelKeys, type NewModelMetadata } from '#shared/registry/metadata.ts';
import { promote, registerModel } from '#shared/registry/registry.ts';
import { etlDepsOf, publishRuntime, startTestAws, type TestAws } from '../support/aws.ts';
import { runKeel } from '../support/cli.ts';
import { modelMetadata, testRegistry } from '../support/model.ts';
import { LOGINS_SET, TICKETS_LOG_SET } from '../support/other-definition.ts';

/**
 * `keel features diff` and `keel features export` against the local servers (a published runtime, as
 * `keel up` leaves one): this code's definition compared with the champion's or a version's, and every
 * registered version's servability, read from the registry and the online store's field list; the
 * offline dataset an ETL wrote, as the vectors of this code's or a version's definition.
 */

let aws: TestAws;
let env: Record<string, string>;

const current = FEATURE_SET.definition;
const field = (name: string): Expr => ({ op: 'field', name });
const logLogins = { name: 'log_logins', expr: { op: 'log1p', of: field('logins_30d') } satisfies Expr };

/** The champion's definition: before tickets_per_order existed, with logins (imputed) and another avg_spend. */
const OLDER: FeatureSetDefinition = {
  version: '0.9.0',
  features: [
    ...current.features
      .filter((f) => f.name !== 'tickets_per_order')
      .map((f) =>
        f.name === 'avg_spend' ? { ...f, expr: { ...(f.expr as object), whenZero: -1 } as Expr } : f,
      ),
    logLogins,
  ],
  categories: current.categories,
  missing: { ...current.missing, logins_30d: { kind: 'impute', value: 0 } },
};
/** A newer definition that requires logins_30d: servable once the store has the field. */
const NEEDS_LOGINS: FeatureSetDefinition = {
  ...current,
  version: '2.0.0',
  features: [...current.features, logLogins],
  missing: { ...current.missing, logins_30d: { kind: 'required' } },
};

async function register(featureSet: NewModelMetadata['feature_set'], metadataJson?: string): Promise<string> {
  const { name: _n, version: _v, created_at: _c, artifact: _a, ...metadata } = modelMetadata('v1');
  const registry = testRegistry(aws);
  const { version } = await registerModel(registry, {
    name: 'churn',
    onnx: new Uint8Array([1, 2, 3]),
    metadata: { ...metadata, feature_set: featureSet },
  });
  if (metadataJson !== undefined) {
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.models,
        Key: modelKeys('churn', version).metadata,
        Body: metadataJson,
      }),
    );
  }
  return version;
}

const stored = (definition: FeatureSetDefinition) => ({
  version: definition.version,
  fingerprint: fingerprintOf(definition),
  names: definition.features.map((f) => f.name),
  definition,
});

async function diff(...args: string[]) {
  const result = await runKeel(['--json', 'features', 'diff', ...args], env);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as FeatureChangeReport;
}

const EXPORT_ROWS = 2_500;
const exportRecords = [
  ...generateRecords({ rows: EXPORT_ROWS, seed: 23, asOf: new Date('2026-11-01T00:00:00Z') }),
];
const byId = new Map(exportRecords.map((r) => [r.customer_id, r]));

/** `keel [--json] features export ARGS --out FILE`, which must succeed; the file's header and rows. */
async function exported(args: string[], json = false) {
  const out = join(aws.home, `export-${args.join('-').replace(/\W+/g, '_')}.csv`);
  const result = await runKeel(
    [...(json ? ['--json'] : []), 'features', 'export', ...args, '--out', out],
    env,
  );
  expect(result.code, result.stderr).toBe(0);
  const [header, ...lines] = (await readFile(out, 'utf8')).trimEnd().split('\n');
  return { out, stdout: result.stdout, header: header!.split(','), rows: lines.map((l) => l.split(',')) };
}

/** Asserts that every row holds its customer's float32 vector as `encode` computes it, and the label. */
function expectVectors(rows: string[][], encode: (record: LabeledRecord) => EncodeResult) {
  expect(rows).toHaveLength(EXPORT_ROWS);
  expect(new Set(rows.map((r) => r[0])).size).toBe(EXPORT_ROWS);
  for (const [id, eventTime, ...rest] of rows) {
    const record = byId.get(id!)!;
    expect(eventTime).toBe(record.event_time);
    const expected = encode(record);
    if (!expected.ok) throw new Error(`${id} lacks ${expected.missing.join(', ')}`);
    expect(Array.from(new Float32Array(rest.slice(0, -1).map(Number))), id).toEqual(
      Array.from(new Float32Array(expected.vector)),
    );
    expect(Number(rest.at(-1))).toBe(record.churned);
  }
}

beforeAll(async () => {
  aws = await startTestAws();
  await publishRuntime(aws);
  env = { KEEL_HOME: aws.home };
}, 60_000);
afterAll(async () => {
  await aws?.close();
});

describe('keel features diff', { timeout: 60_000 }, () => {
  it('with no champion compares with nothing and says so: every feature is added', async () => {
    const report = await diff();
    expect(report).toMatchObject({
      model: 'churn',
      against: null,
      note: 'churn has no champion: compared with nothing, every feature is added',
      storeFields: null,
      versions: [],
    });
    expect(report.diff.from).toBeNull();
    expect(report.diff.to).toEqual({
      version: FEATURE_SET.version,
      fingerprint: FEATURE_SET.fingerprint,
      count: FEATURE_SET.count,
    });
    expect(report.diff.features.added.map((f) => f.name)).toEqual(FEATURE_SET.names);

    const text = await runKeel(['features', 'diff'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^churn: this code's feature definition against nothing\n {2}churn has no champion/,
    );
    expect(text.stdout).toContain(`  fingerprint  - → ${FEATURE_SET.fingerprint}`);
    expect(text.stdout).toContain('registered versions: none');
  });

  it('compares with the champion and tells for every version whether this code can serve it', async () => {
    const v1 = await register(stored(current));
    const v2 = await register(stored(OLDER));
    // Registered before definitions were stored: served while their fingerprint is this code's.
    const { definition: _d, ...legacy } = stored(current);
    const v3 = await register(legacy);
    const v4 = await register({ ...legacy, version: '0.1.0', fingerprint: `sha256:${'a'.repeat(64)}` });
    const v5 = await register(stored(NEEDS_LOGINS));
    const v6 = await register(stored(current), '{"name": "churn", "version": ');
    const sqrt = { ...current, features: [{ name: 'x', expr: { op: 'sqrt', of: field('age') } }] };
    const v7 = await register({ ...stored(current), fingerprint: fingerprintOf(sqrt), definition: sqrt });
    expect([v1, v2, v3, v4, v5, v6, v7]).toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7']);
    await promote(testRegistry(aws), { name: 'churn', version: 'v2', reason: 'test', actor: 'test' });

    const report = await diff();
    expect(report.against).toEqual({ version: 'v2', champion: true });
    expect(report.note).toBeUndefined();
    expect(report.diff.from).toEqual({
      version: '0.9.0',
      fingerprint: fingerprintOf(OLDER),
      count: OLDER.features.length,
    });
    const { features, fields } = report.diff;
    expect(features.added).toEqual([
      {
        name: 'tickets_per_order',
        index: FEATURE_SET.index('tickets_per_order'),
        expression: 'support_tickets_90d / (orders + 1) (0 if divisor is 0)',
      },
    ]);
    expect(features.removed).toEqual([
      { name: 'log_logins', index: OLDER.features.length - 1, expression: 'log1p(logins_30d)' },
    ]);
    expect(features.changed).toEqual([
      {
        name: 'avg_spend',
        from: { index: 8, expression: 'total_spend / orders (-1 if divisor is 0)' },
        to: { index: 8, expression: 'total_spend / orders (0 if divisor is 0)' },
      },
    ]);
    expect(features.moved).toEqual([]);
    expect(fields.removed).toEqual([{ name: 'logins_30d', missing: { kind: 'impute', value: 0 } }]);

    const verdicts = Object.fromEntries(
      report.versions.map((v) => [v.version, v.servable ? 'yes' : `no: ${v.reason}`]),
    );
    expect(verdicts).toEqual({
      v1: 'yes',
      v2: 'yes',
      v3: 'yes',
      v4: expect.stringMatching(/^no: was registered without its feature definition/),
      v5: "no: requires the raw field logins_30d, which neither this code's raw schema nor the online store has",
      v6: expect.stringMatching(/^no: its metadata\.json cannot be read: /),
      v7: expect.stringMatching(/^no: the stored feature definition does not parse: features\.0\.expr/),
    });
    expect(report.versions.find((v) => v.version === 'v2')!.champion).toBe(true);

    const text = await runKeel(['features', 'diff'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^churn: this code's feature definition against v2 \(the champion\)\n/);
    expect(text.stdout).toContain(`  definition   0.9.0 → ${FEATURE_SET.version}\n`);
    expect(text.stdout).toContain(`  fingerprint  ${fingerprintOf(OLDER)} → ${FEATURE_SET.fingerprint}\n`);
    expect(text.stdout).toContain('  changed      avg_spend\n');
    expect(text.stdout).toContain('  no longer    logins_30d (was imputed as 0 when missing)\n');
    expect(text.stdout).toMatch(/\n {2}v2 \* {5}0\.9\.0 {4}sha256:\S+… {2}yes\n/);
    expect(text.stdout).toMatch(
      /\n {2}v5 {7}2\.0\.0 {4}sha256:\S+… {2}no: requires the raw field logins_30d/,
    );
  });

  it('reads the online store’s fields: a field loaded there makes a version servable', async () => {
    const at = '2026-12-06T02:00:00.000Z';
    const loaded = [...FEATURE_FIELD_NAMES.filter((f) => f !== 'days_since_last_order'), 'logins_30d'];
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.features,
        Key: STORE_FIELDS_KEY,
        Body: JSON.stringify({
          fields: Object.fromEntries(loaded.map((f) => [f, { firstLoaded: at, lastLoaded: at }])),
        }),
      }),
    );
    const report = await diff();
    expect(report.storeFields).toEqual(loaded);
    const v5 = report.versions.find((v) => v.version === 'v5')!;
    expect(v5).toMatchObject({ servable: true });
    // This code's schema has the field, the store not yet: servable, but promotion waits for a load.
    const v1 = report.versions.find((v) => v.version === 'v1')!;
    expect(v1).toEqual({
      version: 'v1',
      champion: false,
      featureSet: { version: FEATURE_SET.version, fingerprint: FEATURE_SET.fingerprint },
      servable: true,
      note: 'the online store has no days_since_last_order yet: promoting it is refused until `keel etl run` loads a file with it',
    });
  });

  it('--against compares with a version, and refuses one it cannot read or does not know', async () => {
    const same = await diff('--against', 'v1');
    expect(same.against).toEqual({ version: 'v1', champion: false });
    expect(same.diff.identical).toBe(true);
    expect(same.diff.features).toEqual({ added: [], removed: [], changed: [], moved: [] });
    const legacy = await diff('--against', 'v3');
    expect(legacy.diff.identical).toBe(true);
    const text = await runKeel(['features', 'diff', '--against', 'v1'], env);
    expect(text.stdout).toContain('  no change: v1 was trained on this very definition');

    const unreadable = await runKeel(['features', 'diff', '--against', 'v4'], env);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(
      /^keel: cannot compare with v4: was registered without its feature definition/,
    );
    const unknown = await runKeel(['features', 'diff', '--against', 'v99'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('model churn has no version v99');
    const bad = await runKeel(['features', 'diff', '--against', 'latest'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"latest" is not a version');
  });
});

describe('keel features export', { timeout: 120_000 }, () => {
  it('before any ETL says to run one, and writes no file', async () => {
    const out = join(aws.home, 'none.csv');
    const result = await runKeel(['features', 'export', '--out', out], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^keel: no complete offline dataset in s3:\/\/\S+\/features\/ yet: run `keel etl run` first/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("writes, after an ETL, every customer's vector of this code's definition, equal to encodeFeatures'", async () => {
    const key = 'raw/20261101T000000Z-export.csv';
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.raw,
        Key: key,
        Body: `${[CSV_HEADER, ...exportRecords.map(toCsvLine)].join('\n')}\n`,
      }),
    );
    const report = await runEtl({ ...etlDepsOf(aws), emit: () => {} }, { inputKey: key, chunkRows: 1_000 });
    expect(report.featureParts).toHaveLength(3);

    const { stdout, header, rows } = await exported([]);
    expect(header).toEqual(['customer_id', 'event_time', ...FEATURE_SET.names, 'churned']);
    expectVectors(rows, encodeFeatures);
    expect(stdout).toContain(`wrote ${EXPORT_ROWS} rows to `);
    expect(stdout).toContain(`s3://${aws.names.features}/${report.featurePrefix}`);
    expect(stdout).toContain(`definition  ${FEATURE_SET.version} (${FEATURE_SET.fingerprint}), this code's`);
    // The same dataset named, without its trailing slash.
    const named = await exported(['--dataset', report.featurePrefix.slice(0, -1)]);
    expect(named.rows).toEqual(rows);
  });

  it("--definition vN writes that version's features, from its stored definition", async () => {
    const version = await register(stored(TICKETS_LOG_SET.definition));
    const { out, stdout, header, rows } = await exported(['--definition', version], true);
    expect(JSON.parse(stdout)).toEqual({
      out,
      dataset: expect.stringMatching(/\/20261101T000000Z-export\/$/),
      definition: version,
      featureSet: {
        version: TICKETS_LOG_SET.version,
        fingerprint: TICKETS_LOG_SET.fingerprint,
        count: FEATURE_SET.count + 1,
      },
      rows: EXPORT_ROWS,
      labeled: true,
    });
    expect(header).toEqual(['customer_id', 'event_time', ...TICKETS_LOG_SET.names, 'churned']);
    expect(header.at(-2)).toBe('log_tickets');
    expectVectors(rows, (record) => TICKETS_LOG_SET.encode(record));
  });

  it('names what is wrong: an unknown version, a field the dataset lacks, a dataset that is not there', async () => {
    const out = join(aws.home, 'refused.csv');
    const refusal = async (...args: string[]) => {
      const result = await runKeel(['features', 'export', ...args, '--out', out], env);
      expect(result.code).toBe(1);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.partial`)).toBe(false);
      return result.stderr;
    };
    expect(await refusal('--definition', 'v99')).toContain('model churn has no version v99');
    expect(await refusal('--definition', 'latest')).toContain('"latest" is not a version');
    const logins = await register(stored(LOGINS_SET.definition));
    expect(await refusal('--definition', logins)).toMatch(
      /^keel: s3:\/\/\S+\/features\/run_date=\S+\/20261101T000000Z-export\/part-00000\.csv has no column logins_30d, which feature set 2\.0\.0/,
    );
    const nowhere = join(aws.home, 'no-such-dir', 'x.csv');
    const unwritable = await runKeel(['features', 'export', '--out', nowhere], env);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toContain(`keel: cannot write --out ${nowhere}: ENOENT`);
    expect(await refusal('--dataset', 'features/run_date=1999-01-01/x')).toContain(
      `no feature data under s3://${aws.names.features}/features/run_date=1999-01-01/x/`,
    );
  });
});
