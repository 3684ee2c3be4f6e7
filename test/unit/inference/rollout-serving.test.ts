import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import {
  FEATURE_COUNT,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  featureSetOf,
  type RawRecord,
} from '#shared/features/index.ts';
import { type ModelEvent, ModelHolder } from '#shared/inference/model-holder.ts';
import {
  type BatchResult,
  health,
  type InferenceDeps,
  predictBatch,
  predictOne,
} from '#shared/inference/service.ts';
import { FingerprintMismatchError } from '#shared/registry/registry.ts';
import { type Rollout, variantFor } from '#shared/registry/rollout.ts';
import { EXTRA_FEATURE_SET, LATER_FIELD, laterFieldDefinition } from '../../support/feature-definitions.ts';
import { type FakeScorer, fakeRegistry, fakeScorer, modelMetadata } from '../../support/model.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const customers = [...generateRecords({ rows: 300, seed: 11, asOf: NOW })].map(
  ({ churned: _, ...record }) => record as RawRecord,
);
/** A request that carries every field: no store read, the routing is under test. */
const item = (record: RawRecord) => ({
  customerId: record.customer_id,
  attributes: Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, record[name]])),
});

const rolloutOf = (mode: Rollout['mode'], percent: number | null): Rollout => ({
  id: 'r-0123456789ab',
  version: 'v2',
  champion: 'v1',
  mode,
  percent,
  bake_seconds: 3600,
  started_at: NOW.toISOString(),
  bake_ends_at: new Date(NOW.getTime() + 3_600_000).toISOString(),
  reason: 'test',
  actor: 'test',
});

/**
 * v1 (champion, scores 0.2) and v2 (challenger, scores 0.9, trained on `challengerSet`, default this
 * code's definition), thresholds 0.5: every answer says who gave it. The aliases are read on every
 * request; the store holds `stored` (none: no store read expected).
 */
function serving(
  rollout: Rollout | undefined,
  options: {
    challenger?: Error;
    failingChallenger?: boolean;
    challengerSet?: FeatureSet;
    stored?: readonly RawRecord[];
  } = {},
) {
  const registry = fakeRegistry({
    v1: modelMetadata('v1', 0.5),
    v2: options.challenger ?? modelMetadata('v2', 0.5, options.challengerSet),
  });
  registry.champion = 'v1';
  registry.rollout = rollout;
  const scorers = new Map<string, FakeScorer>();
  const events: ModelEvent[] = [];
  const models = new ModelHolder({
    registry,
    name: 'churn',
    refreshIntervalMs: 0,
    releaseDelayMs: 0,
    createScorer: async (_onnx, metadata, featureSet) => {
      const scorer = fakeScorer(() => (metadata.version === 'v1' ? 0.2 : 0.9), featureSet.count);
      if (metadata.version === 'v2' && options.failingChallenger) {
        scorer.scoreOne = scorer.scoreBatch = async () => {
          throw new Error('the challenger cannot score');
        };
      }
      scorers.set(metadata.version, scorer);
      return scorer;
    },
    onEvent: (event) => events.push(event),
  });
  const store = new Map(options.stored?.map((record) => [record.customer_id, record]));
  const deps: InferenceDeps = {
    models,
    readRecords: async (ids) => {
      if (!options.stored) throw new Error('no store read expected');
      return new Map(ids.flatMap((id) => (store.has(id) ? [[id, store.get(id)!] as const] : [])));
    },
    maxRecordAgeMs: 30 * 86_400_000,
    now: () => NOW,
  };
  return { deps, registry, scorers, events, models };
}

const predictions = (results: BatchResult[]) =>
  results.map((result) => {
    if (!result.ok) throw new Error(result.error.message);
    return result.prediction;
  });

async function predictAll(deps: InferenceDeps) {
  const all = [];
  for (let i = 0; i < customers.length; i += 100) {
    all.push(
      ...predictions(await predictBatch(deps, { items: customers.slice(i, i + 100).map(item) }, 'req')),
    );
  }
  return all;
}

describe('serving a canary', () => {
  it("answers each customer with their stable variant, in the batch's order, and says who answered", async () => {
    const rollout = rolloutOf('canary', 20);
    const { deps } = serving(rollout);
    const answered = await predictAll(deps);
    expect(answered.map((p) => p.body.customerId)).toEqual(customers.map((c) => c.customer_id));
    for (const [i, prediction] of answered.entries()) {
      const expected = variantFor(rollout, customers[i]!.customer_id);
      expect(prediction.body.model).toEqual({
        name: 'churn',
        version: expected === 'canary' ? 'v2' : 'v1',
        variant: expected,
      });
      expect(prediction.body.probability).toBe(expected === 'canary' ? 0.9 : 0.2);
      expect(prediction.rollout).toEqual({
        id: rollout.id,
        mode: 'canary',
        scores: [
          {
            role: expected === 'canary' ? 'challenger' : 'champion',
            version: expected === 'canary' ? 'v2' : 'v1',
            probability: expected === 'canary' ? 0.9 : 0.2,
            prediction: expected === 'canary' ? 1 : 0,
            vector: prediction.vector,
            ms: expect.any(Number),
          },
        ],
      });
    }
    const share = answered.filter((p) => p.body.model.variant === 'canary').length / answered.length;
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.28);
    // One request at a time, the same customers get the same answers.
    for (const customer of customers.slice(0, 40)) {
      const again = await predictOne(deps, item(customer), 'req');
      expect(again.body.model.variant).toBe(variantFor(rollout, customer.customer_id));
    }
  });

  it('answers with the champion when the challenger fails, and records the failure, failing no request', async () => {
    const { deps } = serving(rolloutOf('canary', 50), { failingChallenger: true });
    const answered = await predictAll(deps);
    expect(answered.every((p) => p.body.model.version === 'v1' && p.body.model.variant === 'champion')).toBe(
      true,
    );
    const failed = answered.filter((p) => p.rollout?.scores.some((s) => s.role === 'challenger'));
    expect(failed.length).toBeGreaterThan(100);
    for (const prediction of failed) {
      expect(prediction.rollout?.scores).toEqual([
        { role: 'challenger', version: 'v2', ms: expect.any(Number) },
        {
          role: 'champion',
          version: 'v1',
          probability: 0.2,
          prediction: 0,
          vector: prediction.vector,
          ms: expect.any(Number),
        },
      ]);
    }
  });
});

describe('serving a shadow', () => {
  it('answers with the champion only, with both scores of every request', async () => {
    const { deps } = serving(rolloutOf('shadow', null));
    const answered = await predictAll(deps);
    for (const prediction of answered) {
      expect(prediction.body.model).toEqual({ name: 'churn', version: 'v1', variant: 'champion' });
      expect(prediction.body.probability).toBe(0.2);
      expect(prediction.rollout?.scores.map((s) => [s.role, s.version, s.probability])).toEqual([
        ['champion', 'v1', 0.2],
        ['challenger', 'v2', 0.9],
      ]);
    }
    expect(await health(deps)).toEqual({
      status: 'ok',
      model: { name: 'churn', version: 'v1' },
      rollout: { id: 'r-0123456789ab', mode: 'shadow', version: 'v2', percent: null },
    });
  });

  it('keeps answering when the shadow fails to score', async () => {
    const { deps } = serving(rolloutOf('shadow', null), { failingChallenger: true });
    const prediction = await predictOne(deps, item(customers[0]!), 'req');
    expect(prediction.body.model.version).toBe('v1');
    expect(prediction.rollout?.scores[1]).toEqual({
      role: 'challenger',
      version: 'v2',
      ms: expect.any(Number),
    });
  });
});

describe('the challenger in the model holder', () => {
  it('refuses a challenger that does not verify once, and serves the champion alone', async () => {
    const refusal = new FingerprintMismatchError('v2 was trained on other features');
    const { deps, registry, events } = serving(rolloutOf('canary', 50), { challenger: refusal });
    const answered = await predictAll(deps);
    expect(answered.every((p) => p.body.model.variant === 'champion' && p.rollout === undefined)).toBe(true);
    expect(events.filter((e) => e.type === 'challenger-refused')).toEqual([
      { type: 'challenger-refused', version: 'v2', rolloutId: 'r-0123456789ab', error: refusal },
    ]);
    expect(registry.loads.filter((v) => v === 'v2')).toHaveLength(1);
    expect(await health(deps)).toEqual({ status: 'ok', model: { name: 'churn', version: 'v1' } });
  });

  it('loads both models for a rollout running at start, and promotes the challenger without loading it again', async () => {
    const { deps, registry, scorers, events } = serving(rolloutOf('canary', 20));
    await predictOne(deps, item(customers[0]!), 'req');
    expect([...registry.loads].sort()).toEqual(['v1', 'v2']);
    expect(events.map((e) => e.type).sort()).toEqual(['challenger-loaded', 'loaded']);

    registry.champion = 'v2';
    registry.rollout = undefined;
    const after = await predictOne(deps, item(customers[1]!), 'req');
    expect(after.body.model).toEqual({ name: 'churn', version: 'v2', variant: 'champion' });
    expect(after.rollout).toBeUndefined();
    expect(registry.loads).toHaveLength(2);
    expect(events.at(-1)).toEqual({ type: 'loaded', version: 'v2', previous: 'v1', loadMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(scorers.get('v1')?.released).toBe(true);
    expect(scorers.get('v2')?.released).toBe(false);
  });

  it('drops the challenger when its rollout ends, keeping the champion', async () => {
    const { deps, registry, scorers } = serving(rolloutOf('shadow', null));
    await predictOne(deps, item(customers[0]!), 'req');
    registry.rollout = undefined;
    const after = await predictOne(deps, item(customers[0]!), 'req');
    expect(after.rollout).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(scorers.get('v2')?.released).toBe(true);
    expect(scorers.get('v1')?.released).toBe(false);
  });
});

describe('a challenger of another feature definition', () => {
  /** The float32 features of `record` as `featureSet` computes them. */
  const features = (featureSet: FeatureSet, record: object) => {
    const encoded = featureSet.encode(record as FieldValues);
    if (!encoded.ok) throw new Error(`incomplete: ${encoded.missing.join(', ')}`);
    return Float32Array.from(encoded.vector);
  };
  const stamp = (featureSet: FeatureSet) => ({
    version: featureSet.version,
    fingerprint: featureSet.fingerprint,
  });

  it('answers canary customers with the challenger’s own features and stamp, the others with the champion’s', async () => {
    const rollout = rolloutOf('canary', 30);
    const { deps, scorers } = serving(rollout, { challengerSet: EXTRA_FEATURE_SET });
    const answered = await predictAll(deps);
    const byVariant = { champion: 0, canary: 0 };
    for (const [i, prediction] of answered.entries()) {
      const { body, vector } = prediction;
      const set = body.model.variant === 'canary' ? EXTRA_FEATURE_SET : FEATURE_SET;
      byVariant[body.model.variant]++;
      expect(body.model.version).toBe(body.model.variant === 'canary' ? 'v2' : 'v1');
      expect(body.featureSet).toEqual(stamp(set));
      // What capture keeps is what the answering model scored: its own definition's vector.
      expect(vector).toEqual(features(set, customers[i]!));
      expect(prediction.rollout?.scores[0]?.vector).toBe(vector);
    }
    expect(byVariant.canary).toBeGreaterThan(50);
    expect(byVariant.champion).toBeGreaterThan(150);
    // Each model was called with rows of its own width.
    for (const call of scorers.get('v2')!.calls) expect(call.x.length).toBe(call.rows * (FEATURE_COUNT + 1));
    for (const call of scorers.get('v1')!.calls) expect(call.x.length).toBe(call.rows * FEATURE_COUNT);
  });

  it('scores a shadow with its own features beside the champion’s answer', async () => {
    const { deps } = serving(rolloutOf('shadow', null), { challengerSet: EXTRA_FEATURE_SET });
    const prediction = await predictOne(deps, item(customers[0]!), 'req');
    expect(prediction.body.featureSet).toEqual(stamp(FEATURE_SET));
    expect(prediction.vector).toEqual(features(FEATURE_SET, customers[0]!));
    const [champion, shadow] = prediction.rollout!.scores;
    expect(champion).toMatchObject({ role: 'champion', version: 'v1', vector: prediction.vector });
    expect(shadow).toMatchObject({ role: 'challenger', version: 'v2', probability: 0.9 });
    expect(shadow!.vector).toEqual(features(EXTRA_FEATURE_SET, customers[0]!));
  });

  it('leaves to the champion a canary customer lacking a field the challenger requires', async () => {
    const later = featureSetOf(laterFieldDefinition({ kind: 'required' }));
    const rollout = rolloutOf('canary', 50);
    const canaryCustomers = customers.filter((c) => variantFor(rollout, c.customer_id) === 'canary');
    const [without, withField] = canaryCustomers as [RawRecord, RawRecord];
    const stored = [without, { ...withField, [LATER_FIELD]: 3 }];
    const { deps } = serving(rollout, { challengerSet: later, stored });
    // The challenger reads a field no attributes can carry: the store is read for every request.
    const [lacking, having] = predictions(
      await predictBatch(deps, { items: stored.map((r) => ({ customerId: r.customer_id })) }, 'req'),
    );
    expect(lacking!.body.model).toEqual({ name: 'churn', version: 'v1', variant: 'champion' });
    expect(lacking!.body.featureSet).toEqual(stamp(FEATURE_SET));
    expect(lacking!.rollout?.scores).toEqual([
      { role: 'challenger', version: 'v2', ms: expect.any(Number) },
      expect.objectContaining({ role: 'champion', version: 'v1', probability: 0.2 }),
    ]);
    expect(having!.body.model).toEqual({ name: 'churn', version: 'v2', variant: 'canary' });
    expect(having!.body.featureSet).toEqual(stamp(later));
    expect(having!.vector.at(-1)).toBe(Math.fround(Math.log1p(3)));
  });
});
