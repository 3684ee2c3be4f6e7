import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, UnknownEntityError, ValidationError } from '#shared/errors.ts';
import { FEATURE_FIELD_NAMES, FEATURE_SET, type FeatureSet, featureSetOf } from '#shared/features/index.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';
import type { NewModelMetadata } from '#shared/registry/metadata.ts';
import {
  ArtifactIntegrityError,
  answeredBy,
  championAt,
  endRollout,
  FieldNotInStoreError,
  FingerprintMismatchError,
  getAliases,
  getChampion,
  getVersion,
  history,
  listVersions,
  loadVerifiedModel,
  promote,
  type RegistryDeps,
  readMetadata,
  registerModel,
  rollback,
  startRollout,
} from '#shared/registry/registry.ts';
import { variantFor } from '#shared/registry/rollout.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { EXTRA_FEATURE_SET, LATER_FIELD, laterFieldDefinition } from '../support/feature-definitions.ts';

let aws: TestAws;
let deps: RegistryDeps;
let clockMs = Date.parse('2026-11-01T00:00:00Z');
beforeAll(async () => {
  aws = await startTestAws();
  deps = {
    s3: aws.clients.s3,
    dynamo: aws.clients.dynamo,
    bucket: aws.names.models,
    table: aws.names.modelRegistry,
    // Each call is one minute later, so the log has distinct, ordered times.
    clock: () => {
      clockMs += 60_000;
      return new Date(clockMs);
    },
  };
});
afterAll(async () => {
  await aws?.close();
});

const fingerprint = FEATURE_SET.fingerprint;
const otherFingerprint = `sha256:${'0'.repeat(64)}`;

function metadata(overrides: Partial<NewModelMetadata> = {}): NewModelMetadata {
  return {
    algorithm: 'gbdt',
    dataset: { uri: 's3://raw/raw/x.csv', rows: 1000 },
    feature_set: { version: FEATURE_SET.version, fingerprint, names: [...FEATURE_SET.names] },
    metrics: { auc: 0.83, logloss: 0.45, accuracy: 0.79 },
    threshold: 0.5,
    training: { rows: 800, params: { trees: 10 }, duration_ms: 12 },
    parent: null,
    ...overrides,
  };
}

const onnx = (seed: number) => new Uint8Array(Array.from({ length: 256 }, (_, i) => (i * seed) % 251));
const actor = 'test';

/** Metadata of a version trained on `set`, its definition stored as training stores it. */
const trainedOn = (set: FeatureSet): NewModelMetadata => metadata({ feature_set: featureSetMetadata(set) });

/**
 * Writes racing for one item (an alias, the version counter): at once against the embedded DynamoDB, one
 * after the other against moto, whose UpdateItem reads and writes without holding a lock (two concurrent
 * conditional updates of one item, from the same value, now and then both succeed there, and two
 * concurrent ADDs to the counter can return the same number; never in DynamoDB). The outcome asserted is
 * the same either way: one conditional write wins, the other is refused; each registration gets its own
 * version.
 */
async function race<T>(writes: readonly (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
  if (aws.emulator !== 'moto') return Promise.allSettled(writes.map((write) => write()));
  const results: PromiseSettledResult<T>[] = [];
  for (const write of writes) results.push(...(await Promise.allSettled([write()])));
  return results;
}

describe(`model registry (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  const name = 'churn';

  it('allocates distinct versions to concurrent registrations', async () => {
    const settled = await race(
      [1, 2, 3, 4].map(
        (seed) => () =>
          registerModel(deps, { name, onnx: onnx(seed), metadata: metadata(), baseline: { seed } }),
      ),
    );
    const registered = settled.map((result) => {
      if (result.status === 'rejected') throw result.reason;
      return result.value;
    });
    expect(registered.map((m) => m.version).sort()).toEqual(['v1', 'v2', 'v3', 'v4']);
    const listed = await listVersions(deps, name);
    expect(listed.map((v) => v.version)).toEqual(['v1', 'v2', 'v3', 'v4']);
    const v2 = await readMetadata(deps, name, 'v2');
    expect(v2.artifact.bytes).toBe(256);
    expect(v2.feature_set.fingerprint).toBe(fingerprint);
  });

  it('validates metadata with the schema, naming each bad field', async () => {
    const bad = metadata({ metrics: { auc: 1.5, logloss: -1, accuracy: 0.5 }, threshold: 2 });
    const error = await registerModel(deps, { name, onnx: onnx(9), metadata: bad }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'metrics.auc' }),
        expect.objectContaining({ path: 'metrics.logloss' }),
        expect.objectContaining({ path: 'threshold' }),
      ]),
    );
    expect((await listVersions(deps, name)).length).toBe(4);
  });

  it('says which version is unknown', async () => {
    await expect(getVersion(deps, name, 'v99')).rejects.toThrow(UnknownEntityError);
    await expect(getVersion(deps, name, 'latest')).rejects.toThrow(/not a version/);
  });

  it('lets exactly one of two concurrent promotions from the same champion win', async () => {
    await promote(deps, {
      name,
      version: 'v1',
      expected: null,
      reason: 'first',
      actor,
    });
    const results = await race([
      () => promote(deps, { name, version: 'v2', expected: 'v1', reason: 'a', actor }),
      () => promote(deps, { name, version: 'v3', expected: 'v1', reason: 'b', actor }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(ConflictError);
    expect(String(lost[0]!.reason.message)).toMatch(/moved: expected v1, it is now v[23]/);
    const winner = (won[0] as PromiseFulfilledResult<{ to: string }>).value.to;
    expect(await getChampion(deps, name)).toBe(winner);
    expect((await history(deps, name)).map((d) => d.to)).toEqual(['v1', winner]);
  });

  it('serves a version registered without its definition only while its fingerprint is this code’s, even forced', async () => {
    const { version: old } = await registerModel(deps, {
      name: 'old-metadata',
      onnx: onnx(4),
      metadata: metadata(),
    });
    expect((await loadVerifiedModel(deps, { name: 'old-metadata', version: old })).featureSet).toBe(
      FEATURE_SET,
    );
    const foreign = await registerModel(deps, {
      name: 'old-metadata',
      onnx: onnx(5),
      metadata: metadata({ feature_set: { version: '0.9.0', fingerprint: otherFingerprint, names: ['a'] } }),
    });
    const refusal = new RegExp(
      `old-metadata ${foreign.version} was registered without its feature definition, and its feature set ` +
        `${otherFingerprint} is not the one this code defines`,
    );
    for (const force of [false, true]) {
      const error = await promote(deps, {
        name: 'old-metadata',
        version: foreign.version,
        reason: 'try',
        actor,
        force,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FingerprintMismatchError);
      expect((error as Error).message).toMatch(refusal);
    }
    await expect(loadVerifiedModel(deps, { name: 'old-metadata', version: foreign.version })).rejects.toThrow(
      refusal,
    );
    await promote(deps, { name: 'old-metadata', version: old, reason: 'current features', actor });
    expect(await getChampion(deps, 'old-metadata')).toBe(old);
  });

  it('promotes, rolls out and rolls back across versions of different definitions, each served with its own', async () => {
    const model = 'definitions';
    const { version: current } = await registerModel(deps, {
      name: model,
      onnx: onnx(1),
      metadata: trainedOn(FEATURE_SET),
    });
    const { version: extra } = await registerModel(deps, {
      name: model,
      onnx: onnx(2),
      metadata: trainedOn(EXTRA_FEATURE_SET),
    });
    const loaded = await loadVerifiedModel(deps, { name: model, version: extra });
    expect(loaded.featureSet.fingerprint).toBe(EXTRA_FEATURE_SET.fingerprint);
    expect(loaded.featureSet.names).toEqual([...FEATURE_SET.names, 'log_orders']);
    expect(loaded.metadata.feature_set.definition).toEqual(EXTRA_FEATURE_SET.definition);
    expect((await loadVerifiedModel(deps, { name: model, version: current })).featureSet).toBe(FEATURE_SET);

    await promote(deps, { name: model, version: current, reason: 'ship', actor });
    const { rollout } = await startRollout(deps, {
      name: model,
      version: extra,
      mode: 'canary',
      percent: 10,
      bakeSeconds: 60,
      reason: 'new features',
      actor,
    });
    await promote(deps, {
      name: model,
      version: extra,
      expected: rollout.champion,
      reason: 'baked',
      actor,
      rollout,
    });
    expect(await rollback(deps, { name: model, reason: 'undo', actor })).toMatchObject({
      from: extra,
      to: current,
      kind: 'rollback',
    });
    await promote(deps, { name: model, version: extra, reason: 'again', actor });
    expect(await getAliases(deps, model)).toEqual({ champion: extra, rollout: undefined });
  });

  it('refuses a version whose stored definition was altered or cannot be computed, naming it, even forced', async () => {
    const model = 'bad-definitions';
    await registerModel(deps, { name: model, onnx: onnx(1), metadata: trainedOn(FEATURE_SET) });
    await promote(deps, { name: model, version: 'v1', reason: 'ship', actor });
    const stored = featureSetMetadata(EXTRA_FEATURE_SET);
    const definition = EXTRA_FEATURE_SET.definition;
    const bad = [
      // One constant changed after training: the definition no longer hashes to the fingerprint.
      {
        definition: {
          ...definition,
          missing: { ...definition.missing, support_tickets_90d: { kind: 'impute', value: 1 } },
        },
        message: /stored feature definition hashes to sha256:[0-9a-f]{64}, not the stored fingerprint/,
      },
      {
        definition: {
          ...definition,
          features: [{ name: 'root', expr: { op: 'sqrt', of: { op: 'const', value: 2 } } }],
        },
        message: /stored feature definition does not parse: features\.0\.expr/,
      },
    ];
    for (const [i, { definition: altered, message }] of bad.entries()) {
      const { version } = await registerModel(deps, {
        name: model,
        onnx: onnx(2 + i),
        metadata: metadata({ feature_set: { ...stored, definition: altered } }),
      });
      const attempts = [
        () => promote(deps, { name: model, version, reason: 'try', actor }),
        () => promote(deps, { name: model, version, reason: 'I know', actor, force: true }),
        () =>
          startRollout(deps, { name: model, version, mode: 'shadow', bakeSeconds: 60, reason: 'try', actor }),
        () => loadVerifiedModel(deps, { name: model, version }),
      ];
      for (const attempt of attempts) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error, `${version}`).toBeInstanceOf(FingerprintMismatchError);
        expect((error as Error).message).toMatch(new RegExp(`^${model} ${version}: `));
        expect((error as Error).message).toMatch(message);
      }
    }
    expect(await getAliases(deps, model)).toEqual({ champion: 'v1', rollout: undefined });
  });

  it('refuses a version requiring a raw field the store lacks, naming the field, unless forced with a reason', async () => {
    const model = 'store-fields';
    const later = featureSetOf(laterFieldDefinition({ kind: 'required' }));
    const imputed = featureSetOf(laterFieldDefinition({ kind: 'impute', value: 0 }));
    await registerModel(deps, { name: model, onnx: onnx(1), metadata: trainedOn(FEATURE_SET) });
    const { version } = await registerModel(deps, { name: model, onnx: onnx(2), metadata: trainedOn(later) });
    const { version: optional } = await registerModel(deps, {
      name: model,
      onnx: onnx(3),
      metadata: trainedOn(imputed),
    });
    await promote(deps, { name: model, version: 'v1', reason: 'ship', actor });
    const withoutField = new Set<string>(FEATURE_FIELD_NAMES);
    for (const storeFields of [withoutField, undefined]) {
      // Each refusal is caught as it is made: the second may reject while the first is awaited.
      const refusals = [
        promote(deps, { name: model, version, reason: 'try', actor, storeFields }),
        startRollout(deps, {
          name: model,
          version,
          mode: 'shadow',
          bakeSeconds: 60,
          reason: 'try',
          actor,
          storeFields,
        }),
      ].map((attempt) => attempt.catch((e: unknown) => e));
      for (const refusal of refusals) {
        const error = await refusal;
        expect(error).toBeInstanceOf(FieldNotInStoreError);
        expect((error as FieldNotInStoreError).message).toMatch(
          new RegExp(
            `^${model} ${version} requires the raw field ${LATER_FIELD}, which the online store does not have yet`,
          ),
        );
        expect((error as FieldNotInStoreError).details).toEqual({ fields: [LATER_FIELD] });
      }
    }
    // An imputed field need not be in the store: absent, it is imputed.
    await promote(deps, {
      name: model,
      version: optional,
      reason: 'imputes',
      actor,
      storeFields: withoutField,
    });
    await expect(
      promote(deps, { name: model, version, reason: ' ', actor, storeFields: withoutField, force: true }),
    ).rejects.toThrow(/a forced promotion needs a reason/);
    await promote(deps, {
      name: model,
      version,
      reason: 'the field lands with tonight’s load',
      actor,
      storeFields: withoutField,
      force: true,
    });
    // A rollback checks the store as a promotion does: the imputing version needs nothing it lacks.
    await rollback(deps, { name: model, reason: 'back', actor, storeFields: withoutField });
    expect(await getChampion(deps, model)).toBe(optional);
    await promote(deps, {
      name: model,
      version,
      reason: 'the store has it now',
      actor,
      storeFields: new Set([...withoutField, LATER_FIELD]),
    });
    expect(await getChampion(deps, model)).toBe(version);
  });

  it('verifies the artifact hash on every load and refuses a tampered one', async () => {
    const { version } = await registerModel(deps, { name, onnx: onnx(7), metadata: metadata() });
    const loaded = await loadVerifiedModel(deps, { name, version });
    expect(Array.from(loaded.onnx)).toEqual(Array.from(onnx(7)));
    const tampered = onnx(7);
    tampered[10] = (tampered[10]! + 1) % 256;
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: `models/churn/${version}/model.onnx`,
        Body: tampered,
      }),
    );
    await expect(loadVerifiedModel(deps, { name, version })).rejects.toThrow(ArtifactIntegrityError);
  });

  it('rolls back through the history, answers what was live when, and refuses with no history', async () => {
    const model = 'rollback-demo';
    for (const seed of [1, 2, 3])
      await registerModel(deps, { name: model, onnx: onnx(seed), metadata: metadata() });
    await expect(rollback(deps, { name: model, reason: 'r', actor })).rejects.toThrow(/no champion yet/);
    for (const version of ['v1', 'v2', 'v3']) {
      await promote(deps, {
        name: model,
        version,
        reason: `ship ${version}`,
        actor,
      });
    }
    const back1 = await rollback(deps, {
      name: model,
      reason: 'bad v3',
      actor,
    });
    expect(back1).toMatchObject({ from: 'v3', to: 'v2', kind: 'rollback', reason: 'bad v3' });
    const back2 = await rollback(deps, {
      name: model,
      reason: 'bad v2',
      actor,
    });
    expect(back2).toMatchObject({ from: 'v2', to: 'v1' });
    await expect(rollback(deps, { name: model, reason: 'r', actor })).rejects.toThrow(/no earlier champion/);
    const log = await history(deps, model);
    expect(log.map((d) => `${d.from ?? '-'}>${d.to}:${d.kind}`)).toEqual([
      '->v1:promote',
      'v1>v2:promote',
      'v2>v3:promote',
      'v3>v2:rollback',
      'v2>v1:rollback',
    ]);
    expect(log.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(championAt(log, new Date(Date.parse(log[0]!.at) - 1))).toBeUndefined();
    expect(championAt(log, new Date(log[2]!.at))).toBe('v3');
    expect(championAt(log, new Date(Date.parse(log[3]!.at) + 1))).toBe('v2');
    await expect(promote(deps, { name: model, version: 'v1', reason: 'again', actor })).rejects.toThrow(
      /already the champion/,
    );
  });

  it('restores a log entry lost between the alias move and the log write', async () => {
    const model = 'crash-demo';
    await registerModel(deps, { name: model, onnx: onnx(1), metadata: metadata() });
    await promote(deps, {
      name: model,
      version: 'v1',
      reason: 'ship',
      actor,
    });
    await aws.clients.dynamo.send(
      new DeleteCommand({ TableName: deps.table, Key: { pk: `MODEL#${model}`, sk: 'LOG#000000001' } }),
    );
    const log = await history(deps, model);
    expect(log).toEqual([expect.objectContaining({ seq: 1, from: null, to: 'v1', reason: 'ship' })]);
    expect(await history(deps, model)).toEqual(log);
  });

  describe('rollouts', () => {
    const model = 'rollout-demo';
    const start = (version: string, request: { mode: 'shadow' | 'canary'; percent?: number }) =>
      startRollout(deps, {
        name: model,
        version,
        ...request,
        bakeSeconds: 3600,
        reason: `try ${version}`,
        actor,
      });

    beforeAll(async () => {
      for (const seed of [1, 2, 3])
        await registerModel(deps, { name: model, onnx: onnx(seed), metadata: metadata() });
    });

    it('needs a champion, another version, a canary share of 1–50 and a bake period', async () => {
      await expect(start('v2', { mode: 'canary', percent: 20 })).rejects.toThrow(/no champion to compare v2/);
      await promote(deps, {
        name: model,
        version: 'v1',
        reason: 'ship',
        actor,
      });
      await expect(start('v1', { mode: 'shadow' })).rejects.toThrow(/already the champion/);
      for (const percent of [0, 51, 12.5, undefined]) {
        const error = await start('v2', { mode: 'canary', percent }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).details).toEqual([expect.objectContaining({ path: 'percent' })]);
      }
      await expect(start('v2', { mode: 'shadow', percent: 10 })).rejects.toThrow(/no percent/);
      await expect(
        startRollout(deps, {
          name: model,
          version: 'v2',
          mode: 'shadow',
          bakeSeconds: 0,
          reason: 'r',
          actor,
        }),
      ).rejects.toThrow(/bake period/);
      const unservable = await registerModel(deps, {
        name: model,
        onnx: onnx(4),
        metadata: metadata({
          feature_set: { version: '0.9.0', fingerprint: otherFingerprint, names: ['a'] },
        }),
      });
      await expect(
        startRollout(deps, {
          name: model,
          version: unservable.version,
          mode: 'shadow',
          bakeSeconds: 60,
          reason: 'r',
          actor,
        }),
      ).rejects.toThrow(FingerprintMismatchError);
      expect(await getAliases(deps, model)).toEqual({ champion: 'v1', rollout: undefined });
    });

    it('holds one rollout at a time, blocks plain promotions meanwhile, and ends it with the champion kept', async () => {
      const { rollout, deployment } = await start('v2', { mode: 'canary', percent: 20 });
      expect(rollout).toMatchObject({
        version: 'v2',
        champion: 'v1',
        mode: 'canary',
        percent: 20,
        bake_seconds: 3600,
      });
      expect(Date.parse(rollout.bake_ends_at) - Date.parse(rollout.started_at)).toBe(3_600_000);
      expect(deployment).toMatchObject({
        kind: 'rollout-start',
        from: 'v1',
        to: 'v2',
        rollout: { id: rollout.id },
      });
      expect((await getAliases(deps, model)).rollout).toEqual(rollout);

      await expect(start('v3', { mode: 'shadow' })).rejects.toThrow(
        /canary of v2 \(20%\) is already running/,
      );
      await expect(promote(deps, { name: model, version: 'v3', reason: 'r', actor })).rejects.toThrow(
        /canary of v2 \(20%\) is running: end it first/,
      );

      const ended = await endRollout(deps, {
        name: model,
        rolloutId: rollout.id,
        reason: 'p99 too high',
        actor,
      });
      expect(ended).toMatchObject({ kind: 'rollout-end', from: 'v2', to: 'v1', reason: 'p99 too high' });
      expect(await getAliases(deps, model)).toEqual({ champion: 'v1', rollout: undefined });
      await expect(
        endRollout(deps, { name: model, rolloutId: rollout.id, reason: 'again', actor }),
      ).rejects.toThrow(ConflictError);

      const log = await history(deps, model);
      const during = new Date(Date.parse(deployment.at) + 1);
      expect(championAt(log, during)).toBe('v1');
      // "What answered customer X at time t": the canary group of the rollout that ran then.
      const customers = Array.from({ length: 400 }, (_, i) => `c-${String(i + 1).padStart(6, '0')}`);
      const answers = customers.map((c) => answeredBy(log, c, during));
      const canary = answers.filter((a) => a?.variant === 'canary');
      expect(canary.every((a) => a?.version === 'v2')).toBe(true);
      expect(canary.length / customers.length).toBeGreaterThan(0.12);
      expect(canary.length / customers.length).toBeLessThan(0.28);
      // Starts and ends of rollouts are not champions to roll back to.
      await expect(rollback(deps, { name: model, reason: 'r', actor })).rejects.toThrow(
        'no earlier champion to roll back to (champions: v1)',
      );
      for (const [i, customer] of customers.entries()) {
        expect(answers[i]?.variant).toBe(variantFor(rollout, customer));
        expect(answeredBy(log, customer, new Date(Date.parse(ended.at) + 1))).toEqual({
          version: 'v1',
          variant: 'champion',
        });
      }
    });

    it('promotes the challenger only while its rollout runs: a decision and an abort cannot both act', async () => {
      const { rollout } = await start('v3', { mode: 'shadow' });
      const results = await race([
        () =>
          promote(deps, {
            name: model,
            version: 'v3',
            expected: 'v1',
            reason: 'bake passed',
            actor,
            rollout,
          }),
        () => endRollout(deps, { name: model, rolloutId: rollout.id, reason: 'aborted', actor }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const aliases = await getAliases(deps, model);
      expect(aliases.rollout).toBeUndefined();
      expect(aliases.champion).toBe(results[0]!.status === 'fulfilled' ? 'v3' : 'v1');
      const log = await history(deps, model);
      expect(log.map((d) => d.seq)).toEqual(log.map((_, i) => i + 1));
      expect(log.at(-1)).toMatchObject({
        rollout: { id: rollout.id, mode: 'shadow', percent: null, version: 'v3' },
      });
      if (aliases.champion === 'v3') {
        // A rollback returns to the champion before the rollout, skipping the rollout's own entries.
        const back = await rollback(deps, {
          name: model,
          reason: 'undo',
          actor,
        });
        expect(back).toMatchObject({ from: 'v3', to: 'v1', kind: 'rollback' });
      }
    });
  });
});
