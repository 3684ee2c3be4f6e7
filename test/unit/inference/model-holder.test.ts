import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NoModelError, UnavailableError } from '#shared/errors.ts';
import { FEATURE_COUNT, FEATURE_SET, type FeatureSet } from '#shared/features/index.ts';
import { type ModelEvent, ModelHolder, type ModelHolderDeps } from '#shared/inference/model-holder.ts';
import { ModelFormatError } from '#shared/model/scorer.ts';
import { ArtifactIntegrityError, FingerprintMismatchError } from '#shared/registry/registry.ts';
import { EXTRA_FEATURE_SET } from '../../support/feature-definitions.ts';
import {
  connectionRefused,
  type FakeRegistry,
  type FakeScorer,
  fakeRegistry,
  fakeScorer,
  modelMetadata,
} from '../../support/model.ts';

const REFRESH_MS = 30_000;
const RELEASE_MS = 5_000;

/** A holder of model `churn` over `registry`, with a scorer of its own per version and its events kept. */
function holderOf(registry: FakeRegistry, options: Partial<ModelHolderDeps> = {}) {
  const scorers = new Map<string, FakeScorer>();
  const events: ModelEvent[] = [];
  const models = new ModelHolder({
    registry,
    name: 'churn',
    refreshIntervalMs: REFRESH_MS,
    releaseDelayMs: RELEASE_MS,
    createScorer: async (_onnx, metadata) => {
      const scorer = fakeScorer();
      scorers.set(metadata.version, scorer);
      return scorer;
    },
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { models, scorers, events };
}

/** A holder serving v1 of a registry that has v1 (threshold 0.3) and v2 (threshold 0.6). */
async function servingV1(options: Partial<ModelHolderDeps> = {}) {
  const registry = fakeRegistry({ v1: modelMetadata('v1', 0.3), v2: modelMetadata('v2', 0.6) });
  registry.champion = 'v1';
  const holder = holderOf(registry, options);
  expect((await holder.models.require()).version).toBe('v1');
  return { registry, ...holder };
}

const nextCheck = () => vi.advanceTimersByTime(REFRESH_MS);

beforeEach(() => {
  // The holder's clock (Date.now) and its release timer both follow the fake time.
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('ModelHolder', () => {
  it('answers NoModel until a version is promoted, then serves it with its threshold', async () => {
    const registry = fakeRegistry({ v1: modelMetadata('v1', 0.3) });
    const { models, events } = holderOf(registry);
    await expect(models.require()).rejects.toThrow(NoModelError);
    expect(models.current()).toBeUndefined();

    registry.champion = 'v1';
    nextCheck();
    const model = await models.require();
    expect(model).toMatchObject({ name: 'churn', version: 'v1', threshold: 0.3 });
    expect(model.metadata.version).toBe('v1');
    expect(models.current()).toBe(model);
    expect(events).toEqual([{ type: 'loaded', version: 'v1', previous: null, loadMs: expect.any(Number) }]);
  });

  it('reads the alias at most once per interval; concurrent requests wait for the one read and load', async () => {
    const registry = fakeRegistry({ v1: modelMetadata('v1') });
    registry.champion = 'v1';
    const { models } = holderOf(registry);
    const first = await Promise.all([models.require(), models.require(), models.require()]);
    expect(first.map((model) => model.version)).toEqual(['v1', 'v1', 'v1']);
    await models.require();
    expect(registry.checks).toBe(1);

    nextCheck();
    await Promise.all([models.require(), models.require()]);
    expect(registry.checks).toBe(2);
    expect(registry.loads).toEqual(['v1']);
  });

  it('serves a newly promoted version from the first check after the promotion', async () => {
    const { registry, models, events } = await servingV1();
    registry.champion = 'v2';
    vi.advanceTimersByTime(REFRESH_MS - 1);
    expect((await models.require()).version).toBe('v1');

    vi.advanceTimersByTime(1);
    expect(await models.require()).toMatchObject({ version: 'v2', threshold: 0.6 });
    expect(events.at(-1)).toEqual({
      type: 'loaded',
      version: 'v2',
      previous: 'v1',
      loadMs: expect.any(Number),
    });
  });

  it('releases the replaced scorer only after the release delay, for requests still using it', async () => {
    const { registry, models, scorers } = await servingV1();
    const inFlight = await models.require();
    registry.champion = 'v2';
    nextCheck();
    expect((await models.require()).version).toBe('v2');

    vi.advanceTimersByTime(RELEASE_MS - 1);
    expect(scorers.get('v1')!.released).toBe(false);
    await expect(inFlight.scorer.scoreOne(new Float32Array(FEATURE_COUNT))).resolves.toBe(0.8);

    vi.advanceTimersByTime(1);
    expect(scorers.get('v1')!.released).toBe(true);
    expect(scorers.get('v2')!.released).toBe(false);
  });

  it('keeps a replaced scorer open for 10 s unless told otherwise', async () => {
    const { registry, models, scorers } = await servingV1({ releaseDelayMs: undefined });
    registry.champion = 'v2';
    nextCheck();
    await models.require();
    vi.advanceTimersByTime(9_999);
    expect(scorers.get('v1')!.released).toBe(false);
    vi.advanceTimersByTime(1);
    expect(scorers.get('v1')!.released).toBe(true);
  });

  it.each([
    ['its artifact does not match the registry', new ArtifactIntegrityError('sha256 mismatch')],
    ['it was trained on another feature set', new FingerprintMismatchError('other fingerprint')],
  ])(
    'never serves a version whose load fails because %s: the previous one keeps serving',
    async (_why, error) => {
      const { registry, models, events } = await servingV1();
      registry.versions.set('v2', error);
      registry.champion = 'v2';
      nextCheck();
      expect((await models.require()).version).toBe('v1');
      expect(events.at(-1)).toEqual({ type: 'load-failed', version: 'v2', error });

      // Refused for good: later checks do not load it again.
      nextCheck();
      expect((await models.require()).version).toBe('v1');
      expect(registry.checks).toBe(3);
      expect(registry.loads).toEqual(['v1', 'v2']);

      // The next promotion is served.
      registry.versions.set('v3', modelMetadata('v3'));
      registry.champion = 'v3';
      nextCheck();
      expect((await models.require()).version).toBe('v3');
    },
  );

  it('never serves a version no scorer can be made of', async () => {
    const { registry, models, events } = await servingV1({
      createScorer: async (_onnx, metadata) => {
        if (metadata.version === 'v2') throw new ModelFormatError('not a model of 20 features');
        return fakeScorer();
      },
    });
    registry.champion = 'v2';
    nextCheck();
    expect((await models.require()).version).toBe('v1');
    nextCheck();
    await models.require();
    expect(registry.loads).toEqual(['v1', 'v2']);
    expect(events.at(-1)).toMatchObject({ type: 'load-failed', version: 'v2' });
  });

  it('serves each version with its own definition, and gives the scorer that definition', async () => {
    const given = new Map<string, FeatureSet>();
    const registry = fakeRegistry({
      v1: modelMetadata('v1', 0.3),
      v2: modelMetadata('v2', 0.6, EXTRA_FEATURE_SET),
    });
    registry.champion = 'v1';
    const { models } = holderOf(registry, {
      createScorer: async (_onnx, metadata, featureSet) => {
        given.set(metadata.version, featureSet);
        return fakeScorer(() => 0.5, featureSet.count);
      },
    });
    expect((await models.require()).featureSet).toBe(FEATURE_SET);
    registry.champion = 'v2';
    nextCheck();
    const v2 = await models.require();
    expect(v2.version).toBe('v2');
    expect(v2.featureSet.fingerprint).toBe(EXTRA_FEATURE_SET.fingerprint);
    expect(v2.scorer.featureCount).toBe(FEATURE_COUNT + 1);
    expect(Object.fromEntries([...given].map(([version, set]) => [version, set.fingerprint]))).toEqual({
      v1: FEATURE_SET.fingerprint,
      v2: EXTRA_FEATURE_SET.fingerprint,
    });
  });

  it('never serves a version whose scorer takes another number of features than its definition computes', async () => {
    const { registry, models, scorers, events } = await servingV1();
    // The scorer is made for this code's 20 features; v2's definition computes 21.
    registry.versions.set('v2', modelMetadata('v2', 0.6, EXTRA_FEATURE_SET));
    registry.champion = 'v2';
    nextCheck();
    expect((await models.require()).version).toBe('v1');
    expect(events.at(-1)).toMatchObject({ type: 'load-failed', version: 'v2' });
    const { error } = events.at(-1) as { error: Error };
    expect(error).toBeInstanceOf(ModelFormatError);
    expect(error.message).toBe(
      `churn v2 scores ${FEATURE_COUNT} features, but its feature set 2.0.0-test computes ${FEATURE_COUNT + 1}; refusing to serve it`,
    );
    expect(scorers.get('v2')?.released).toBe(true);
  });

  it('retries at once a version whose load found the registry unavailable', async () => {
    const { registry, models, events } = await servingV1();
    registry.versions.set('v2', connectionRefused());
    registry.champion = 'v2';
    nextCheck();
    expect((await models.require()).version).toBe('v1');
    const failed = events.at(-1);
    expect(failed).toMatchObject({ type: 'load-failed', version: 'v2' });
    expect((failed as { error: unknown }).error).toBeInstanceOf(UnavailableError);

    // No interval to wait: the next request checks again.
    registry.versions.set('v2', modelMetadata('v2'));
    expect((await models.require()).version).toBe('v2');
    expect(registry.loads).toEqual(['v1', 'v2', 'v2']);
  });

  it('keeps serving through a failed alias read, and checks again on the next request', async () => {
    const { registry, models, events } = await servingV1();
    registry.down = connectionRefused();
    nextCheck();
    expect((await models.require()).version).toBe('v1');
    const failed = events.at(-1);
    expect(failed?.type).toBe('check-failed');
    expect((failed as { error: unknown }).error).toBeInstanceOf(UnavailableError);

    registry.down = undefined;
    registry.champion = 'v2';
    expect((await models.require()).version).toBe('v2');
  });

  it('without a model, fails a request with the read or load that failed', async () => {
    const registry = fakeRegistry({ v1: new ArtifactIntegrityError('sha256 mismatch') });
    registry.champion = 'v1';
    registry.down = connectionRefused();
    const { models } = holderOf(registry);
    await expect(models.require()).rejects.toThrow(UnavailableError);

    registry.down = undefined;
    await expect(models.require()).rejects.toThrow(ArtifactIntegrityError);
    // The refused version is not tried again: there is no model to serve.
    nextCheck();
    await expect(models.require()).rejects.toThrow(NoModelError);
    expect(registry.loads).toEqual(['v1']);
  });

  it('releases its scorer on close', async () => {
    const { models, scorers } = await servingV1();
    await models.close();
    expect(scorers.get('v1')!.released).toBe(true);
    expect(models.current()).toBeUndefined();
  });
});
