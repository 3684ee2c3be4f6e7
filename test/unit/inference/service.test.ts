import type { BatchGetItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import {
  IncompleteFeaturesError,
  NoModelError,
  UnavailableError,
  UnknownEntityError,
  ValidationError,
} from '#shared/errors.ts';
import {
  encodeFeatures,
  FEATURE_COUNT,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  featureIndex,
  featureSetOf,
  type RawRecord,
} from '#shared/features/index.ts';
import { ModelHolder } from '#shared/inference/model-holder.ts';
import { MAX_BATCH_ITEMS } from '#shared/inference/schemas.ts';
import {
  type BatchResult,
  health,
  type InferenceDeps,
  predictBatch,
  predictOne,
} from '#shared/inference/service.ts';
import { coalescingScorer } from '#shared/model/scorer.ts';
import { toItem } from '#shared/online-store/items.ts';
import { coalescedReader } from '#shared/online-store/store.ts';
import { LATER_FIELD, laterFieldDefinition } from '../../support/feature-definitions.ts';
import { connectionRefused, fakeRegistry, fakeScorer, modelMetadata } from '../../support/model.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const DAY_MS = 86_400_000;
const [stored, other, unstored] = [...generateRecords({ rows: 3, seed: 7, asOf: NOW })].map(
  ({ churned: _, ...record }) => record as RawRecord,
);

/** Every feature field of `record`: a request that needs no stored record. */
const fieldsOf = (record: RawRecord) =>
  Object.fromEntries(FEATURE_FIELD_NAMES.map((name) => [name, record[name]]));

/** A probability that differs by customer (age), so each answer can be traced to its own row. */
const byAge = (row: Float32Array) => (row[featureIndex('age')]! % 10) / 10;

/** The online store over an in-memory table: answers BatchGetItem, and keeps the ids of each read. */
function fakeStore(records: readonly object[], down?: Error) {
  const table = new Map(records.map((record) => [(record as RawRecord).customer_id, record]));
  const reads: string[][] = [];
  const dynamo = {
    async send(command: BatchGetItemCommand) {
      const ids = command.input.RequestItems!.online!.Keys!.map((key) => key.customer_id!.S!);
      reads.push(ids);
      if (down) throw down;
      return {
        Responses: {
          online: ids.flatMap((id) => (table.has(id) ? [toItem(table.get(id) as RawRecord)] : [])),
        },
      };
    },
  };
  return { store: { dynamo: dynamo as unknown as DynamoDBDocumentClient, table: 'online' }, reads };
}

/**
 * The service over a registry whose champion is v4 (threshold 0.5, scoring by age), or that has none
 * (`promoted: false`), and a store holding `records` (default: `stored`).
 */
function service(
  options: {
    promoted?: boolean;
    records?: readonly object[];
    storeDown?: Error;
    /** The definition v4 was trained on (default: this code's, stored without its definition). */
    featureSet?: FeatureSet;
    /** Serve through coalescingScorer, as a predict process does. */
    coalesce?: boolean;
  } = {},
) {
  const registry = fakeRegistry({ v4: modelMetadata('v4', 0.5, options.featureSet) });
  if (options.promoted !== false) registry.champion = 'v4';
  const scorer = fakeScorer(byAge, options.featureSet?.count);
  const models = new ModelHolder({
    registry,
    name: 'churn',
    refreshIntervalMs: 60_000,
    createScorer: async () => (options.coalesce ? coalescingScorer(scorer) : scorer),
  });
  const { store, reads } = fakeStore(options.records ?? [stored!], options.storeDown);
  const deps: InferenceDeps = {
    models,
    readRecords: coalescedReader(store),
    maxRecordAgeMs: 30 * DAY_MS,
    now: () => NOW,
  };
  return { deps, scorer, reads };
}

/** The float32 features of `record`, as the model should see them. */
const float32Features = (record: RawRecord) => {
  const encoded = encodeFeatures(record);
  if (!encoded.ok) throw new Error('incomplete record');
  return Float32Array.from(encoded.vector);
};

const okResult = (result: BatchResult | undefined) => {
  if (!result?.ok) throw new Error(`expected a prediction, got ${result?.error.message}`);
  return result.prediction;
};
const predictions = (results: BatchResult[]) => results.map(okResult);
const errorOf = (result: BatchResult | undefined) => {
  if (!result || result.ok) throw new Error('expected an error');
  return result.error;
};

describe('predictOne', () => {
  it('scores a stored customer with the served model and its threshold', async () => {
    const { deps, scorer } = service();
    const { body, facts, vector } = await predictOne(deps, { customerId: stored!.customer_id }, 'r-1');
    const probability = byAge(float32Features(stored!));
    expect(body).toEqual({
      customerId: stored!.customer_id,
      prediction: probability >= 0.5 ? 1 : 0,
      probability,
      model: { name: 'churn', version: 'v4', variant: 'champion' },
      featureSet: { version: FEATURE_SET.version, fingerprint: FEATURE_SET.fingerprint },
      requestId: 'r-1',
    });
    expect(facts).toEqual({ imputed: 0, unseen: 0, stale: false });
    // What capture keeps is what the model scored.
    expect(vector).toEqual(float32Features(stored!));
    expect(scorer.calls).toEqual([{ x: vector, rows: 1 }]);
  });

  it('lets attributes override the stored record, and reads no store when they are complete', async () => {
    const { deps, reads } = service();
    const prediction = await predictOne(deps, { customerId: 'c-new', attributes: fieldsOf(other!) }, 'r-1');
    expect(prediction.vector).toEqual(float32Features(other!));
    expect(reads).toEqual([]);

    const overridden = await predictOne(
      deps,
      { customerId: stored!.customer_id, attributes: { age: other!.age } },
      'r-2',
    );
    expect(overridden.vector).toEqual(float32Features({ ...stored!, age: other!.age }));
    expect(reads).toEqual([[stored!.customer_id]]);
  });

  it('shares one store read among concurrent requests, each answered for its own customer', async () => {
    const { deps, reads } = service({ records: [stored!, other!] });
    const [a, b, c] = await Promise.all(
      [stored!, other!, stored!].map((record, i) =>
        predictOne(deps, { customerId: record.customer_id }, `r-${i}`),
      ),
    );
    expect(reads).toHaveLength(1);
    expect(reads[0]!.sort()).toEqual([stored!.customer_id, other!.customer_id].sort());
    expect([a!.vector, b!.vector, c!.vector]).toEqual([stored!, other!, stored!].map(float32Features));
  });

  it('scores the requests one shared read answered in one model call, each with its own row', async () => {
    const { deps, scorer } = service({ records: [stored!, other!], coalesce: true });
    await deps.models.require();
    const answers = await Promise.all(
      [stored!, other!, stored!].map((record, i) =>
        predictOne(deps, { customerId: record.customer_id }, `r-${i}`),
      ),
    );
    expect(scorer.calls.map((call) => call.rows)).toEqual([3]);
    // The two customers score differently, so a row answered with another's probability would show.
    expect(new Set(answers.map((a) => a.body.probability)).size).toBe(2);
    expect(answers.map((a) => a.body.probability)).toEqual(
      [stored!, other!, stored!].map((record) => byAge(float32Features(record))),
    );
  });

  it('warns of an imputed field, an unseen category and a stale record', async () => {
    const old = { ...stored!, event_time: new Date(NOW.getTime() - 31 * DAY_MS).toISOString() };
    const { deps } = service({ records: [old] });
    const { support_tickets_90d: _, ...withoutTickets } = fieldsOf(other!);
    const { body, facts } = await predictOne(
      deps,
      { customerId: 'c-new', attributes: { ...withoutTickets, plan: 'platinum' } },
      'r-1',
    );
    expect(body.warnings).toEqual(['imputed: support_tickets_90d', 'unseen category in: plan']);
    expect(facts).toEqual({ imputed: 1, unseen: 1, stale: false });

    const stale = await predictOne(deps, { customerId: stored!.customer_id }, 'r-2');
    expect(stale.facts).toEqual({ imputed: 0, unseen: 0, stale: true });
    expect(stale.body.warnings).toEqual([
      `stored record is stale: event_time ${old.event_time} is older than the freshness limit`,
    ]);
  });

  it('accepts a full raw record in attributes, scores only its features and dates it by its event_time', async () => {
    const { deps, scorer } = service();
    const { body } = await predictOne(
      deps,
      { customerId: unstored!.customer_id, attributes: unstored },
      'r-1',
    );
    expect(body.customerId).toBe(unstored!.customer_id);
    expect(scorer.calls.at(-1)).toEqual({ x: float32Features(unstored!), rows: 1 });
    expect(body.warnings).toBeUndefined();

    const old = new Date(NOW.getTime() - 31 * DAY_MS).toISOString();
    const dated = await predictOne(
      deps,
      { customerId: stored!.customer_id, attributes: { event_time: old } },
      'r-2',
    );
    expect(dated.facts.stale).toBe(true);
    expect(dated.body.warnings).toEqual([
      `attributes are stale: event_time ${old} is older than the freshness limit`,
    ]);
    expect(dated.body.probability).toBe(
      (await predictOne(deps, { customerId: stored!.customer_id }, 'r-3')).body.probability,
    );
  });

  it.each([
    ['customer_id', { customer_id: 'c-other' }, 'names another customer than customerId (c-000001)'],
    ['event_time', { event_time: 'yesterday' }, 'Invalid ISO datetime'],
    ['churned', { churned: 1 }, 'Unrecognized key: "churned"'],
  ])("refuses attributes.%s that is not the raw record's, naming it", async (field, attributes, message) => {
    const { deps } = service();
    const error = await predictOne(deps, { customerId: 'c-000001', attributes }, 'r-1').catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.details).toEqual([
      { path: field === 'churned' ? 'attributes' : `attributes.${field}`, message },
    ]);
  });

  it.each([
    ['an unknown key', { customerId: 'c-1', extra: 1 }, ValidationError],
    ['an unknown customer without attributes', { customerId: 'c-999999' }, UnknownEntityError],
    [
      'attributes missing a required field',
      { customerId: 'c-999999', attributes: { age: 40 } },
      IncompleteFeaturesError,
    ],
  ])('refuses %s with its error class', async (_what, body, errorClass) => {
    const { deps } = service();
    await expect(predictOne(deps, body, 'r-1')).rejects.toThrow(errorClass);
  });

  it('validates the request before it needs a model', async () => {
    const { deps } = service({ promoted: false });
    await expect(predictOne(deps, {}, 'r-1')).rejects.toThrow(ValidationError);
  });
});

describe('predictBatch', () => {
  it('answers each item with its prediction or its own error, in order, with one store read and one model call', async () => {
    const { deps, scorer, reads } = service({ records: [stored!, other!] });
    const items = [
      { customerId: stored!.customer_id },
      { customerId: 'c-1', extra: true },
      { customerId: unstored!.customer_id },
      { customerId: unstored!.customer_id, attributes: fieldsOf(unstored!) },
      { customerId: 'c-999999', attributes: { age: 40 } },
      { customerId: other!.customer_id },
    ];
    const results = await predictBatch(deps, { items }, 'r-1');
    expect(results.map((result) => result.ok)).toEqual([true, false, false, true, false, true]);

    const invalid = errorOf(results[1]);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid.details).toEqual([{ path: 'items.1', message: expect.stringContaining('extra') }]);
    expect(errorOf(results[2])).toBeInstanceOf(UnknownEntityError);
    expect(errorOf(results[4])).toBeInstanceOf(IncompleteFeaturesError);

    // Each prediction is the one its item gets alone.
    for (const [index, record] of [
      [0, stored],
      [3, unstored],
      [5, other],
    ] as const) {
      const alone = await predictOne(service({ records: [stored!, other!] }).deps, items[index], 'r-1');
      expect(okResult(results[index])).toEqual(alone);
      expect(okResult(results[index]).vector).toEqual(float32Features(record!));
    }
    // Only the items that need a stored record are read; the model scores the good rows at once.
    expect(reads).toEqual([[stored!.customer_id, unstored!.customer_id, 'c-999999', other!.customer_id]]);
    expect(scorer.calls.map((call) => call.rows)).toEqual([3]);
  });

  it('scores nothing when no item is good', async () => {
    const { deps, scorer, reads } = service();
    const results = await predictBatch(deps, { items: [{}, { customerId: 'c-999999' }] }, 'r-1');
    expect(results.map((result) => result.ok)).toEqual([false, false]);
    expect(reads).toEqual([['c-999999']]);
    expect(scorer.calls).toEqual([]);
  });

  it.each([
    ['no items', { items: [] }],
    ['too many items', { items: Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => ({ customerId: 'c-1' })) }],
    ['no items list', { customerId: 'c-1' }],
  ])('refuses a batch with %s as a whole', async (_what, body) => {
    const { deps } = service();
    await expect(predictBatch(deps, body, 'r-1')).rejects.toThrow(ValidationError);
  });

  it('fails as a whole when there is no model or the store is down: every item would', async () => {
    const items = [{ customerId: stored!.customer_id }];
    await expect(predictBatch(service({ promoted: false }).deps, { items }, 'r-1')).rejects.toThrow(
      NoModelError,
    );
    await expect(
      predictBatch(service({ storeDown: connectionRefused() }).deps, { items }, 'r-1'),
    ).rejects.toThrow(UnavailableError);
  });
});

describe('health', () => {
  it('names the served model', async () => {
    await expect(health(service().deps)).resolves.toEqual({
      status: 'ok',
      model: { name: 'churn', version: 'v4' },
    });
  });
});

describe('a version whose definition reads a raw field this code does not know', () => {
  const imputing = featureSetOf(laterFieldDefinition({ kind: 'impute', value: 0 }));
  const requiring = featureSetOf(laterFieldDefinition({ kind: 'required' }));
  const stamp = (featureSet: FeatureSet) => ({
    version: featureSet.version,
    fingerprint: featureSet.fingerprint,
  });

  it('is served from store records carrying the field, and imputes it per its policy where absent', async () => {
    const carrying = { ...stored!, [LATER_FIELD]: 12 };
    const { deps, scorer } = service({ featureSet: imputing, records: [carrying, other!] });
    const [withField, withoutField] = predictions(
      await predictBatch(
        deps,
        { items: [{ customerId: stored!.customer_id }, { customerId: other!.customer_id }] },
        'r-1',
      ),
    );
    expect(withField!.body.featureSet).toEqual(stamp(imputing));
    expect(withField!.vector).toHaveLength(FEATURE_COUNT + 1);
    expect(withField!.vector.at(-1)).toBe(Math.fround(Math.log1p(12)));
    expect(Array.from(withField!.vector.subarray(0, FEATURE_COUNT))).toEqual(
      Array.from(float32Features(stored!)),
    );
    expect(withField!.body.warnings).toBeUndefined();
    expect(withoutField!.vector.at(-1)).toBe(0);
    expect(withoutField!.body.warnings).toEqual([`imputed: ${LATER_FIELD}`]);
    expect(withoutField!.facts).toEqual({ imputed: 1, unseen: 0, stale: false });
    expect(scorer.calls).toEqual([{ x: expect.any(Float32Array), rows: 2 }]);
    expect(scorer.calls[0]!.x).toHaveLength(2 * (FEATURE_COUNT + 1));
  });

  it('reads the store although the attributes hold every field this code knows', async () => {
    const { deps, reads } = service({ featureSet: imputing, records: [{ ...stored!, [LATER_FIELD]: 4 }] });
    const prediction = await predictOne(
      deps,
      { customerId: stored!.customer_id, attributes: fieldsOf(stored!) },
      'r-1',
    );
    expect(reads).toEqual([[stored!.customer_id]]);
    expect(prediction.vector.at(-1)).toBe(Math.fround(Math.log1p(4)));
  });

  it('names the field its definition requires when a record lacks it', async () => {
    const { deps } = service({ featureSet: requiring, records: [stored!, { ...other!, [LATER_FIELD]: 1 }] });
    const error = await predictOne(deps, { customerId: stored!.customer_id }, 'r-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteFeaturesError);
    expect((error as IncompleteFeaturesError).message).toBe(
      `missing fields for ${stored!.customer_id}: ${LATER_FIELD} (required by feature set ${requiring.version})`,
    );
    expect((error as IncompleteFeaturesError).details).toEqual({ missing: [LATER_FIELD] });
    const answered = await predictOne(deps, { customerId: other!.customer_id }, 'r-1');
    expect(answered.body.featureSet).toEqual(stamp(requiring));
  });
});
