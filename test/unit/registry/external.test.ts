import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { ValidationError } from '#shared/errors.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import {
  type CheckRows,
  checkExternalModel,
  ExternalModelError,
  type ExternalModelInput,
  normalizeOnnx,
  parseExternalMetadata,
} from '#shared/registry/external.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';
import { modelMetadataSchema } from '#shared/registry/metadata.ts';
import { sha256Hex } from '#shared/registry/registry.ts';
import { externalMetadata, externalOnnx, externalProbability } from '../../support/external-model.ts';

const ROWS = 400;
const rows: CheckRows = (() => {
  const x = new Float32Array(ROWS * FEATURE_COUNT);
  const y = new Uint8Array(ROWS);
  let i = 0;
  for (const record of generateRecords({ rows: ROWS, seed: 3, asOf: new Date('2026-01-01T00:00:00Z') })) {
    encodeInto(record, x, i * FEATURE_COUNT);
    y[i++] = record.churned;
  }
  return { x, rows: ROWS, y, source: 'generated customers' };
})();

const input = (overrides: Partial<ExternalModelInput> = {}): ExternalModelInput => ({
  name: 'churn',
  onnx: externalOnnx(),
  metadata: externalMetadata(),
  featureSet: FEATURE_SET,
  champion: 'v2',
  rows,
  file: 'logreg.onnx',
  ...overrides,
});

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!error) throw new Error('expected a refusal');
  return error;
}

describe('checkExternalModel (bring your own ONNX model)', () => {
  it('accepts a LinearClassifier with a ZipMap output, serving the probability a converter would', async () => {
    const checked = await checkExternalModel(input());
    expect(checked.checks).toMatchObject({
      inputName: 'float_input',
      outputName: 'output_probability',
      changes: ["ZipMap output 'output_probability' replaced by its probability tensor"],
      scoredRows: ROWS,
    });
    expect(checked.checks.auc).toBeGreaterThan(0.6);
    // The rewritten graph is what the runtime serves: same class-1 probability as the model's maths.
    const scorer = await loadOnnxScorer(checked.onnx, { featureCount: FEATURE_COUNT });
    const scores = await scorer.scoreBatch(rows.x, ROWS);
    await scorer.release();
    for (let r = 0; r < ROWS; r++)
      expect(scores[r]).toBeCloseTo(externalProbability(rows.x, r * FEATURE_COUNT), 5);
    expect(checked.metadata).toMatchObject({
      parent: 'v2',
      algorithm: 'sklearn-logistic-regression',
      external: { file: 'logreg.onnx', sha256: sha256Hex(externalOnnx()), changes: checked.checks.changes },
    });
    // The definition it was checked against is stored with it, whatever the file declared: serving
    // computes its features from that, not from the code running then.
    expect(externalMetadata().feature_set).not.toHaveProperty('definition');
    expect(checked.metadata.feature_set).toEqual(featureSetMetadata(FEATURE_SET));
    expect(checked.baseline).toMatchObject({
      rows: ROWS,
      featureSet: { fingerprint: FEATURE_SET.fingerprint },
    });
    const registered = {
      ...checked.metadata,
      name: 'churn',
      version: 'v3',
      created_at: new Date().toISOString(),
    };
    const artifact = { format: 'onnx', sha256: sha256Hex(checked.onnx), bytes: checked.onnx.byteLength };
    expect(modelMetadataSchema.safeParse({ ...registered, artifact }).success).toBe(true);
  });

  it('takes a double input through a Cast, scoring the same', async () => {
    const { changes } = normalizeOnnx(externalOnnx({ inputType: 'double' }));
    expect(changes).toContain("double input 'float_input' fed from float32 through a Cast");
    const checked = await checkExternalModel(input({ onnx: externalOnnx({ inputType: 'double' }) }));
    const scorer = await loadOnnxScorer(checked.onnx, { featureCount: FEATURE_COUNT });
    expect(await scorer.scoreOne(rows.x.subarray(0, FEATURE_COUNT))).toBeCloseTo(
      externalProbability(rows.x),
      6,
    );
    await scorer.release();
  });

  it('refuses a model of the wrong input width, with both numbers', async () => {
    const error = await refusal(
      checkExternalModel(input({ onnx: externalOnnx({ featureCount: FEATURE_COUNT - 3 }) })),
    );
    expect(error).toBeInstanceOf(ExternalModelError);
    expect(error.message).toMatch(`takes ${FEATURE_COUNT - 3} features, expected ${FEATURE_COUNT}`);
    expect(error.message).toMatch(/feature-set order \(age, income, log_income/);
  });

  it('refuses a ZipMap whose second class is not 1', async () => {
    const error = await refusal(checkExternalModel(input({ onnx: externalOnnx({ zipMapLabels: [1, 0] }) })));
    expect(error.message).toMatch(/maps classes \[1, 0\]; Keel reads class 1 from the second column/);
  });

  it('refuses outputs that are not probabilities (raw margins), naming the row', async () => {
    const error = await refusal(checkExternalModel(input({ onnx: externalOnnx({ postTransform: 'NONE' }) })));
    expect(error.message).toMatch(
      /row \d+ of generated customers scores -?\d.*not a probability in \[0, 1\]/,
    );
  });

  it('refuses bad metadata, naming each bad field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ threshold: 1.5 }, /threshold: Too big/],
      [{ metrics: { auc: 0.7, logloss: 0.5 } }, /metrics\.accuracy/],
      [{ version: 'v9', artifact: {} }, /version: computed by the registry: remove it; artifact: computed/],
      [{ treshold: 0.4 }, /treshold/],
      [{ name: 'fraud' }, /name: this platform serves model "churn", not "fraud"/],
      [{ feature_set: { version: '1', fingerprint: 'md5:x', names: ['a'] } }, /feature_set\.fingerprint/],
    ];
    for (const [override, message] of cases) {
      const error = await refusal(checkExternalModel(input({ metadata: externalMetadata(override) })));
      expect(error, JSON.stringify(override)).toBeInstanceOf(ValidationError);
      expect(error.message).toMatch(message);
    }
  });

  it('refuses another feature set unless forced with a reason, and records the reason', async () => {
    const other = {
      version: '0.9.0',
      fingerprint: `sha256:${'a'.repeat(64)}`,
      names: [...FEATURE_SET.names],
    };
    const metadata = externalMetadata({ feature_set: other });
    const error = await refusal(checkExternalModel(input({ metadata })));
    expect(error.message).toMatch(/trained on feature set 0\.9\.0 \(sha256:a{64}\).*--force --reason/);
    expect((await refusal(checkExternalModel(input({ metadata, force: true })))).message).toMatch(
      /--force needs --reason/,
    );
    const forced = await checkExternalModel(input({ metadata, force: true, reason: 'shadow test' }));
    expect(forced.metadata.external?.forced).toBe('shadow test');
    // Not checked against this deployment's definition: it keeps what it declared, and nothing else.
    expect(forced.metadata.feature_set).toEqual(other);
  });

  it('uses a given baseline only if it is one of the same feature set', async () => {
    const { baseline } = await checkExternalModel(input());
    const given = await checkExternalModel(input({ baseline }));
    expect(given.baseline).toBe(baseline);
    const wrong = { ...(baseline as object), featureSet: { version: '0', fingerprint: 'sha256:other' } };
    expect((await refusal(checkExternalModel(input({ baseline: wrong })))).message).toMatch(
      /baseline was computed on feature set sha256:other/,
    );
    expect((await refusal(checkExternalModel(input({ baseline: { rows: 3 } })))).message).toMatch(
      /not a Keel baseline\.json/,
    );
  });

  it('documents a metadata file it accepts, with the current feature names (docs/bring-your-own-model.md)', async () => {
    const doc = await readFile(new URL('../../../docs/bring-your-own-model.md', import.meta.url), 'utf8');
    const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(doc)![1]!) as {
      feature_set: { names: string[] };
    };
    expect(
      example.feature_set.names,
      'the example lists other feature names than the current definition: copy `names` from ' +
        'test/fixtures/features/golden.json (written by `npm run features:golden`)',
    ).toEqual(FEATURE_SET.names);
    const metadata = JSON.parse(
      JSON.stringify(example).replace('<the current fingerprint, sha256:…>', FEATURE_SET.fingerprint),
    );
    expect(parseExternalMetadata(metadata, { name: 'churn' })).toMatchObject({
      name: 'churn',
      threshold: 0.5,
    });
    expect(doc).toContain(`shape \`[N, ${FEATURE_COUNT}]\``);
  });
});

describe('checkExternalModel with an XGBoost model file', () => {
  const churnXgboost = async (ext: 'json' | 'ubj') =>
    new Uint8Array(await readFile(new URL(`../../fixtures/xgboost/churn.${ext}`, import.meta.url)));
  const { algorithm: _, ...withoutAlgorithm } = externalMetadata();
  const xgboostInput = async (overrides: Partial<ExternalModelInput> = {}) =>
    input({
      onnx: undefined,
      xgboost: await churnXgboost('ubj'),
      metadata: withoutAlgorithm,
      file: 'xgboost-model',
      ...overrides,
    });

  it('converts it to ONNX, checks it like an ONNX file and records the conversion and its parity', async () => {
    const xgboost = await churnXgboost('ubj');
    const checked = await checkExternalModel(await xgboostInput());
    expect(checked.checks).toMatchObject({
      inputName: 'features',
      outputName: 'probabilities',
      scoredRows: ROWS,
    });
    expect(checked.checks.auc).toBeGreaterThan(0.6);
    expect(checked.checks.changes).toEqual([
      expect.stringMatching(
        /^converted from XGBoost 1\.7\.4 \(20 trees, max depth 4\) to an ONNX tree ensemble: largest probability difference from the XGBoost trees \d\.\d\de-\d+ on 400 rows of generated customers$/,
      ),
    ]);
    expect(checked.metadata).toMatchObject({
      algorithm: 'xgboost',
      external: { file: 'xgboost-model', sha256: sha256Hex(xgboost), changes: checked.checks.changes },
    });
    const params = checked.metadata.training.params;
    expect(params).toMatchObject({
      C: 1.0,
      source: 'xgboost',
      objective: 'binary:logistic',
      trees: 20,
      parity_rows: ROWS,
    });
    expect(params.parity_max_diff).toBeLessThanOrEqual(1e-6);
    const artifact = { format: 'onnx', sha256: sha256Hex(checked.onnx), bytes: checked.onnx.byteLength };
    const registered = {
      ...checked.metadata,
      name: 'churn',
      version: 'v3',
      created_at: new Date().toISOString(),
    };
    expect(modelMetadataSchema.safeParse({ ...registered, artifact }).success).toBe(true);
    // The JSON file of the same model converts to the same ONNX graph.
    const fromJson = await checkExternalModel(await xgboostInput({ xgboost: await churnXgboost('json') }));
    expect(fromJson.onnx).toEqual(checked.onnx);
  });

  it('keeps an algorithm the metadata names', async () => {
    const checked = await checkExternalModel(
      await xgboostInput({ metadata: externalMetadata({ algorithm: 'xgb-hist' }) }),
    );
    expect(checked.metadata.algorithm).toBe('xgb-hist');
  });

  it('refuses a model whose feature names are not the feature set, naming the file and the feature', async () => {
    const document = JSON.parse(new TextDecoder().decode(await churnXgboost('json')));
    document.learner.feature_names[0] = 'age_years';
    const error = await refusal(
      checkExternalModel(await xgboostInput({ xgboost: new TextEncoder().encode(JSON.stringify(document)) })),
    );
    expect(error).toBeInstanceOf(ExternalModelError);
    expect(error.message).toMatch(
      /^xgboost-model: learner\.feature_names differ .* at position 0: the model has 'age_years', the feature set 'age'/,
    );
  });

  it('takes exactly one model file', async () => {
    expect((await refusal(checkExternalModel(await xgboostInput({ onnx: externalOnnx() })))).message).toMatch(
      /either as an ONNX file or as an XGBoost model file/,
    );
    expect((await refusal(checkExternalModel(input({ onnx: undefined })))).message).toMatch(
      /either as an ONNX file/,
    );
  });
});
