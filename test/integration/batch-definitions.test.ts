import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchDeps, finalizeBatch, planBatch, scoreSegment } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import {
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  featureSetOf,
  type LabeledRecord,
  type RawRecord,
} from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { forEachCapturedRecord } from '#shared/inference/capture-reader.ts';
import type { ChurnModel } from '#shared/model/model-types.ts';
import { createJsScorer } from '#shared/model/scorer.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { promote, type RegistryDeps, rollback } from '#shared/registry/registry.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { LATER_FIELD, laterFieldDefinition } from '../support/feature-definitions.ts';
import { registerModelOn, testRegistry } from '../support/model.ts';

/**
 * Batch scoring against the local servers (or moto) pins the champion and encodes every row with that
 * version's own feature definition, whatever this code defines: a champion trained on a later
 * definition (a raw field this code's schema does not know, imputed when absent) is scored from the
 * store's items as they are, and every row, capture and the run's summary carry its fingerprint;
 * rolled back, the same store is scored with the current definition again.
 */

let aws: TestAws;
let registry: RegistryDeps;
const later = featureSetOf(laterFieldDefinition({ kind: 'impute', value: 0 }));
// Every other customer carries the later field; it tells churners apart, so the later model reads it.
const customers = [...generateRecords({ rows: 300, seed: 21, asOf: new Date('2026-11-01T00:00:00Z') })].map(
  (customer, i): LabeledRecord & FieldValues =>
    i % 2 === 0 ? { ...customer, [LATER_FIELD]: customer.churned ? 0 : 20 + (i % 7) } : customer,
);
const stored = (customer: LabeledRecord & FieldValues) => {
  const { churned: _label, ...record } = customer;
  return record as RawRecord & FieldValues;
};
const models = new Map<string, ChurnModel>();

beforeAll(async () => {
  aws = await startTestAws();
  registry = testRegistry(aws);
  await writeRecords({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures }, customers.map(stored));
  for (const featureSet of [FEATURE_SET, later]) {
    const { version, model } = await registerModelOn(registry, featureSet, customers, {
      seed: 3,
      nTrees: 15,
    });
    models.set(version, model);
  }
  await promote(registry, { name: 'churn', version: 'v1', reason: 'current features', actor: 'test' });
  await promote(registry, {
    name: 'churn',
    version: 'v2',
    reason: 'the later field is loaded',
    actor: 'test',
    storeFields: new Set([...FEATURE_FIELD_NAMES, LATER_FIELD]),
  });
}, 120_000);
afterAll(async () => {
  await aws?.close();
});

const deps = (): BatchDeps => ({
  registry,
  dynamo: aws.clients.dynamo,
  s3: aws.clients.s3,
  onlineTable: aws.names.onlineFeatures,
  outputsBucket: aws.names.outputs,
  rawBucket: aws.names.raw,
  capture: { sampleRate: 1 },
});

/** Scores the whole store in two segments: the plan, the rows by customer and the run's summary. */
async function scoreStore() {
  const from = new Date();
  const plan = await planBatch(deps(), { name: 'churn', segments: 2 });
  const results = [];
  const rows = new Map<string, string[]>();
  for (const segment of plan.segments) {
    const result = await scoreSegment(deps(), plan, segment);
    results.push(result);
    const part = await aws.clients.s3.send(
      new GetObjectCommand({ Bucket: aws.names.outputs, Key: result.key }),
    );
    for (const line of (await part.Body!.transformToString()).trim().split('\n').slice(1)) {
      const cells = line.split(',');
      rows.set(cells[0]!, cells);
    }
  }
  const report = await finalizeBatch(deps(), plan, results);
  const captures: CaptureRecord[] = [];
  const source = { s3: aws.clients.s3, outputsBucket: aws.names.outputs, modelName: 'churn' };
  await forEachCapturedRecord(source, from, new Date(Date.now() + 1), (record) => {
    if (record.requestId === plan.runId) captures.push(record);
  });
  return { plan, rows, report, captures };
}

const stamp = (featureSet: FeatureSet) => ({
  version: featureSet.version,
  fingerprint: featureSet.fingerprint,
});

/** What `version`'s model gives the record encoded with `featureSet` (the trainer's own arithmetic). */
async function expected(version: string, featureSet: FeatureSet, record: FieldValues): Promise<number> {
  const encoded = featureSet.encode(record);
  if (!encoded.ok) throw new Error(`incomplete: ${encoded.missing.join(', ')}`);
  return createJsScorer(models.get(version)!).scoreOne(Float32Array.from(encoded.vector));
}

describe(`batch scoring with the champion's own definition (${process.env.KEEL_TEST_EMULATOR ?? 'embedded'})`, () => {
  it('encodes every stored item with the later definition, reading the field this code does not know', async () => {
    const { plan, rows, report, captures } = await scoreStore();
    expect(plan.model.version).toBe('v2');
    expect(plan.featureSet).toEqual(stamp(later));
    expect(report).toMatchObject({ featureSet: stamp(later), rows: 300, skipped: 0 });
    let readTheField = 0;
    for (const customer of customers) {
      const [, probability, , version, fingerprint] = rows.get(customer.customer_id)!;
      expect([version, fingerprint]).toEqual(['v2', later.fingerprint]);
      const record = stored(customer);
      expect(Number(probability)).toBeCloseTo(await expected('v2', later, record), 5);
      if (record[LATER_FIELD] !== undefined) {
        const { [LATER_FIELD]: _field, ...imputed } = record;
        if (Math.abs((await expected('v2', later, imputed)) - Number(probability)) > 1e-3) readTheField++;
      }
    }
    // Had the field been dropped on the way, these customers would score as if it were imputed.
    expect(readTheField).toBeGreaterThan(50);
    expect(captures).toHaveLength(300);
    const c0 = captures.find((c) => c.customerId === customers[0]!.customer_id)!;
    const encoded = later.encode(stored(customers[0]!));
    expect(c0.x).toEqual(Array.from(Float32Array.from(encoded.ok ? encoded.vector : [])));
  }, 120_000);

  it('scores the same store with the current definition once rolled back', async () => {
    await rollback(registry, { name: 'churn', reason: 'back to v1', actor: 'test' });
    const { plan, rows, report } = await scoreStore();
    expect(plan.model.version).toBe('v1');
    expect(report.featureSet).toEqual(stamp(FEATURE_SET));
    for (const customer of customers) {
      const [, probability, , version, fingerprint] = rows.get(customer.customer_id)!;
      expect([version, fingerprint]).toEqual(['v1', FEATURE_SET.fingerprint]);
      expect(Number(probability)).toBeCloseTo(await expected('v1', FEATURE_SET, stored(customer)), 5);
    }
  }, 120_000);
});
