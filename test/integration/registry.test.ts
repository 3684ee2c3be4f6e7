import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, UnknownEntityError, ValidationError } from '#shared/errors.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import type { NewModelMetadata } from '#shared/registry/metadata.ts';
import {
  ArtifactIntegrityError,
  answeredBy,
  championAt,
  endRollout,
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

describe(`model registry (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  const name = 'churn';

  it('allocates distinct versions to concurrent registrations', async () => {
    const registered = await Promise.all(
      [1, 2, 3, 4].map((seed) =>
        registerModel(deps, { name, onnx: onnx(seed), metadata: metadata(), baseline: { seed } }),
      ),
    );
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
    const results = await Promise.allSettled([
      promote(deps, {
        name,
        version: 'v2',
        expected: 'v1',
        reason: 'a',
        actor,
      }),
      promote(deps, {
        name,
        version: 'v3',
        expected: 'v1',
        reason: 'b',
        actor,
      }),
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

  it('refuses a version trained on another feature set unless forced with a reason', async () => {
    const foreign = await registerModel(deps, {
      name,
      onnx: onnx(5),
      metadata: metadata({ feature_set: { version: '0.9.0', fingerprint: otherFingerprint, names: ['a'] } }),
    });
    await expect(
      promote(deps, {
        name,
        version: foreign.version,
        reason: 'try',
        actor,
      }),
    ).rejects.toThrow(FingerprintMismatchError);
    await expect(loadVerifiedModel(deps, { name, version: foreign.version })).rejects.toThrow(
      FingerprintMismatchError,
    );
    await expect(
      promote(deps, {
        name,
        version: foreign.version,
        reason: ' ',
        actor,
        force: true,
      }),
    ).rejects.toThrow(/needs a reason/);
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
      await expect(
        startRollout(deps, {
          name: model,
          version: 'v2',
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
      const results = await Promise.allSettled([
        promote(deps, {
          name: model,
          version: 'v3',
          expected: 'v1',
          reason: 'bake passed',
          actor,
          rollout,
        }),
        endRollout(deps, { name: model, rolloutId: rollout.id, reason: 'aborted', actor }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const aliases = await getAliases(deps, model);
      expect(aliases.rollout).toBeUndefined();
      expect(aliases.champion).toBe(results[0].status === 'fulfilled' ? 'v3' : 'v1');
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
