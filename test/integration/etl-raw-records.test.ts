import type { ChildProcess } from 'node:child_process';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { type EtlReport, runEtl } from '#shared/etl/etl.ts';
import { SchemaChangeError } from '#shared/features/header.ts';
import {
  CSV_COLUMNS,
  FEATURE_SET,
  type FeatureSet,
  LABEL_COLUMN,
  type LabeledRecord,
} from '#shared/features/index.ts';
import { parseEmf } from '#shared/monitoring/emf.ts';
import { ETL_METRICS } from '#shared/monitoring/metrics.ts';
import {
  MissingRawFieldError,
  OfflineDatasetError,
  readFeatureDataset,
} from '#shared/offline/features-dataset.ts';
import {
  readStoreFields,
  recordStoreFields,
  STORE_FIELDS_KEY,
  type StoreFields,
} from '#shared/online-store/fields.ts';
import { getRecord, getRecords } from '#shared/online-store/store.ts';
import { etlDepsOf, startMoto, startTestAws, type TestAws } from '../support/aws.ts';
import { LOGINS_SET, TICKETS_LOG_SET } from '../support/other-definition.ts';

/**
 * The offline dataset holds validated raw records, so any version's features come from it; a raw file
 * may lack a column the schema imputes; each successful run records the fields it loaded.
 */
let aws: TestAws;
beforeAll(async () => {
  aws = await startTestAws();
});
afterAll(async () => {
  await aws?.close();
});

const asOf = new Date('2026-11-01T00:00:00Z');
const ROWS = 2_000;
const records = [...generateRecords({ rows: ROWS, seed: 41, asOf })];
const store = () => ({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures });

/** A raw CSV of `records` with exactly `columns` (in that order). */
function csvOf(columns: readonly string[], rows: readonly LabeledRecord[]): string {
  const line = (record: LabeledRecord) =>
    columns.map((column) => String((record as Record<string, unknown>)[column] ?? '')).join(',');
  return `${[columns.join(','), ...rows.map(line)].join('\n')}\n`;
}

async function etl(key: string, body: string, clock?: Date) {
  await aws.clients.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: body }));
  const emitted: string[] = [];
  const report = await runEtl(
    { ...etlDepsOf(aws), emit: (line) => emitted.push(line), ...(clock ? { clock: () => clock } : {}) },
    { inputKey: key, chunkRows: 700 },
  );
  return { report, emitted };
}

async function text(bucket: string, Key: string) {
  const object = await aws.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
  return object.Body!.transformToString();
}

const manifest = async () => JSON.parse(await text(aws.names.features, STORE_FIELDS_KEY)) as StoreFields;

/** `set`'s float32 vector of a record, as training and serving compute it. */
function vectorOf(set: FeatureSet, record: Partial<LabeledRecord>): number[] {
  const out = new Float32Array(set.count);
  expect(set.encodeInto(record, out, 0)).toBeUndefined();
  return Array.from(out);
}

const withoutTickets = CSV_COLUMNS.filter((c) => c !== 'support_tickets_90d');
const labeled = (columns: readonly string[]) => [...columns, LABEL_COLUMN];

describe('a raw file without a column the schema imputes', () => {
  let report: EtlReport;
  let emitted: string[];

  beforeAll(async () => {
    await aws.clients.s3.send(new DeleteObjectCommand({ Bucket: aws.names.features, Key: STORE_FIELDS_KEY }));
    ({ report, emitted } = await etl(
      'raw/20261101T000000Z-no-tickets.csv',
      csvOf(labeled(withoutTickets), records),
      new Date('2026-11-01T06:00:00.000Z'),
    ));
  });

  it('loads every row, counts the imputation per field and publishes its share', () => {
    expect(report).toMatchObject({ rowsRead: ROWS, valid: ROWS, quarantined: 0, onlineWritten: ROWS });
    expect(report.imputed).toEqual({ support_tickets_90d: ROWS });
    const shares = emitted
      .flatMap(parseEmf)
      .filter((sample) => sample.metricName === ETL_METRICS.imputedShare);
    expect(shares.map((s) => [s.dimensions.Feature, s.value])).toEqual([['support_tickets_90d', 1]]);
  });

  it('stores the records without the field, online and offline', async () => {
    const { churned: _label, support_tickets_90d: _tickets, ...stored } = records[9]!;
    expect(await getRecord(store(), records[9]!.customer_id)).toEqual(stored);
    const items = await getRecords(
      store(),
      records.slice(0, 100).map((r) => r.customer_id),
    );
    expect([...items.values()].filter((item) => 'support_tickets_90d' in item)).toEqual([]);

    const part = await text(aws.names.features, report.featureParts[0]!);
    const [header, first] = part.split('\n');
    expect(header).toBe(['customer_id', 'event_time', ...CSV_COLUMNS.slice(1, -1), LABEL_COLUMN].join(','));
    const cells = first!.split(',');
    expect(cells[header!.split(',').indexOf('support_tickets_90d')]).toBe('');
    expect(cells[header!.split(',').indexOf('plan')]).toBe(records[0]!.plan);
  });

  it('reads back as the matrix of any feature set, imputed by its policy', async () => {
    const current = await readFeatureDataset(aws.clients.s3, aws.names.features, report.featurePrefix);
    expect(current).toMatchObject({ featureSet: FEATURE_SET, rows: ROWS });
    const { support_tickets_90d: _t, ...first } = records[0]!;
    expect(Array.from(current.x.subarray(0, FEATURE_SET.count))).toEqual(vectorOf(FEATURE_SET, first));
    expect(current.x[FEATURE_SET.index('support_tickets_90d')]).toBe(0);
    expect(current.y[0]).toBe(records[0]!.churned);
  });

  it('records the fields the file carried in the store-fields manifest', async () => {
    expect(await readStoreFields(aws.clients.s3, aws.names.features)).toEqual(
      new Set(withoutTickets.slice(1, -1)),
    );
  });
});

describe('the store-fields manifest after a second run', () => {
  it('adds the fields new to it and moves the lastLoaded of the others, keeping their firstLoaded', async () => {
    const first = await manifest();
    await etl(
      'raw/20261102T000000Z-with-tickets.csv',
      csvOf(labeled(CSV_COLUMNS), records.slice(0, 300)),
      new Date('2026-11-02T06:00:00.000Z'),
    );
    const second = await manifest();
    expect(Object.keys(second.fields).sort()).toEqual(CSV_COLUMNS.slice(1, -1).sort());
    expect(second.fields.support_tickets_90d).toEqual({
      firstLoaded: '2026-11-02T06:00:00.000Z',
      lastLoaded: '2026-11-02T06:00:00.000Z',
    });
    expect(first.fields.age).toEqual({
      firstLoaded: '2026-11-01T06:00:00.000Z',
      lastLoaded: '2026-11-01T06:00:00.000Z',
    });
    expect(second.fields.age).toEqual({
      firstLoaded: '2026-11-01T06:00:00.000Z',
      lastLoaded: '2026-11-02T06:00:00.000Z',
    });
  });
});

describe('a raw file without a required column', () => {
  it('stops at the header with the schema-change error naming it: nothing quarantined, stored or recorded', async () => {
    const before = await manifest();
    const key = 'raw/20261103T000000Z-no-orders.csv';
    const stranger = records.slice(0, 50).map((r) => ({ ...r, customer_id: `x-${r.customer_id}` }));
    const error = await etl(key, csvOf(labeled(CSV_COLUMNS.filter((c) => c !== 'orders')), stranger)).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(SchemaChangeError);
    expect(error.message).toContain('missing column orders');
    expect(error.details.missing).toEqual([{ column: 'orders' }]);
    const quarantine = await aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: aws.names.features, Prefix: 'quarantine/' }),
    );
    expect(quarantine.KeyCount ?? 0).toBe(0);
    expect(await getRecord(store(), stranger[0]!.customer_id)).toBeUndefined();
    expect(await manifest()).toEqual(before);
  });
});

describe('the offline reader', () => {
  let prefix: string;
  beforeAll(async () => {
    ({
      report: { featurePrefix: prefix },
    } = await etl('raw/20261104T000000Z-all.csv', csvOf(labeled(CSV_COLUMNS), records)));
  });

  it('computes the features of another definition from the same records', async () => {
    const data = await readFeatureDataset(aws.clients.s3, aws.names.features, prefix, TICKETS_LOG_SET);
    expect(data).toMatchObject({ featureSet: TICKETS_LOG_SET, rows: ROWS });
    for (const row of [0, 777, ROWS - 1]) {
      const x = Array.from(data.x.subarray(row * TICKETS_LOG_SET.count, (row + 1) * TICKETS_LOG_SET.count));
      expect(x).toEqual(vectorOf(TICKETS_LOG_SET, records[row]!));
    }
    // The current definition's vectors are those training always saw: its columns, unchanged.
    const current = await readFeatureDataset(aws.clients.s3, aws.names.features, prefix, FEATURE_SET);
    expect(Array.from(data.x.subarray(0, FEATURE_SET.count))).toEqual(
      Array.from(current.x.subarray(0, FEATURE_SET.count)),
    );
  });

  it('reads only the rows asked for, in order', async () => {
    const rows = Uint32Array.from([3, 700, 1999]);
    const data = await readFeatureDataset(aws.clients.s3, aws.names.features, prefix, TICKETS_LOG_SET, {
      rows,
    });
    expect(data.customerIds).toEqual([...rows].map((r) => records[r]!.customer_id));
    expect(Array.from(data.x.subarray(TICKETS_LOG_SET.count, 2 * TICKETS_LOG_SET.count))).toEqual(
      vectorOf(TICKETS_LOG_SET, records[700]!),
    );
  });

  it('refuses a feature set requiring a field the dataset lacks, naming the field and the part', async () => {
    const error = await readFeatureDataset(aws.clients.s3, aws.names.features, prefix, LOGINS_SET).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(MissingRawFieldError);
    expect(error.message).toMatch(
      new RegExp(
        `^s3://${aws.names.features}/${prefix}part-00000\\.csv has no column logins_30d, which feature set 2\\.0\\.0`,
      ),
    );
    expect(error.details).toEqual({
      fields: ['logins_30d'],
      source: `s3://${aws.names.features}/${prefix}part-00000.csv`,
    });
  });

  it('tells to re-run the ETL for a part still holding feature values', async () => {
    const old = 'features/run_date=2026-10-01/old/';
    const vector = vectorOf(FEATURE_SET, records[0]!);
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.features,
        Key: `${old}part-00000.csv`,
        Body: `customer_id,event_time,${FEATURE_SET.names.join(',')},churned\nc-1,${records[0]!.event_time},${vector.join(',')},1\n`,
      }),
    );
    const error = await readFeatureDataset(aws.clients.s3, aws.names.features, old).catch((e) => e);
    expect(error).toBeInstanceOf(OfflineDatasetError);
    expect(error.message).toMatch(/holds feature values.*re-run the ETL/);
  });
});

describe('concurrent runs recording their fields (S3 conditional writes, on moto)', () => {
  // s3rver, the embedded S3, ignores If-Match and If-None-Match on PUT; moto enforces them as S3 does.
  let moto: { process: ChildProcess; s3: S3Client };
  beforeAll(async () => {
    const started = await startMoto();
    moto = { process: started.process, s3: createS3Client(started.target) };
    await moto.s3.send(new CreateBucketCommand({ Bucket: 'features' }));
  });
  afterAll(() => {
    moto?.s3.destroy();
    moto?.process.kill('SIGTERM');
  });

  it('keeps every run’s fields: a write that lost the race is merged again', async () => {
    const runs = Array.from({ length: 8 }, (_, i) => [`shared_field`, `field_${i}`]);
    await Promise.all(
      runs.map((fields, i) =>
        recordStoreFields(moto.s3, 'features', fields, new Date(Date.UTC(2026, 11, 1, i)), async () => {}),
      ),
    );
    const fields = await readStoreFields(moto.s3, 'features');
    expect([...fields!].sort()).toEqual(['shared_field', ...runs.map(([, own]) => own!)].sort());
  });
});
