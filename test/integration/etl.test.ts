import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { BadRowShareError, type EtlDeps, newestRawKey, runEtl } from '#shared/etl/etl.ts';
import { CSV_HEADER, encodeFeatures, FEATURE_COUNT, toCsvLine } from '#shared/features/index.ts';
import { readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { getRecord, getRecords } from '#shared/online-store/store.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';

let aws: TestAws;
let deps: EtlDeps;
beforeAll(async () => {
  aws = await startTestAws();
  deps = {
    s3: aws.clients.s3,
    dynamo: aws.clients.dynamo,
    rawBucket: aws.names.raw,
    featuresBucket: aws.names.features,
    onlineTable: aws.names.onlineFeatures,
  };
});
afterAll(async () => {
  await aws?.close();
});

const asOf = new Date('2026-11-01T00:00:00Z');
const ROWS = 3_000;

async function putRaw(key: string, lines: string[]) {
  await aws.clients.s3.send(
    new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: `${lines.join('\n')}\n` }),
  );
}

async function countOnline(): Promise<number> {
  let count = 0;
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await aws.clients.dynamo.send(
      new ScanCommand({ TableName: aws.names.onlineFeatures, Select: 'COUNT', ExclusiveStartKey }),
    );
    count += page.Count ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return count;
}

describe('ETL: raw CSV → offline features + online store', () => {
  const records = [...generateRecords({ rows: ROWS, seed: 11, asOf })];
  const lines = [CSV_HEADER, ...records.map(toCsvLine)];
  // Bad rows at known data-row positions (1-based, after the header).
  const bad: Record<number, string> = {
    5: lines[5]!.replace(/,basic,|,standard,|,premium,/, ',,'),
    100: lines[100]!.replace(/^c-000100,\d+,/, 'c-000100,17,'),
    2500: 'c-002500,not,a,row',
  };
  for (const [row, line] of Object.entries(bad)) lines[Number(row)] = line;

  it('validates every row, quarantines bad ones with row and reason, and fills both stores', async () => {
    await putRaw('raw/20261101T000000Z-n3000-s11.csv', lines);
    expect(await newestRawKey(aws.clients.s3, aws.names.raw)).toBe('raw/20261101T000000Z-n3000-s11.csv');
    const report = await runEtl(deps, {
      inputKey: 'raw/20261101T000000Z-n3000-s11.csv',
      runDate: '2026-11-01',
      partRows: 1000,
    });
    expect(report).toMatchObject({
      rowsRead: ROWS,
      valid: ROWS - 3,
      quarantined: 3,
      onlineWritten: ROWS - 3,
      labeled: true,
    });
    expect(report.featureParts).toHaveLength(3);

    const quarantine = await aws.clients.s3.send(
      new GetObjectCommand({ Bucket: aws.names.features, Key: report.quarantineKey! }),
    );
    const entries = (await quarantine.Body!.transformToString())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { row: number; reason: string[] });
    expect(entries.map((e) => e.row)).toEqual([5, 100, 2500]);
    expect(entries[0]!.reason.join()).toContain('plan');
    expect(entries[1]!.reason.join()).toContain('age');

    const dataset = await readFeatureDataset(aws.clients.s3, aws.names.features, report.featurePrefix);
    expect(dataset.rows).toBe(ROWS - 3);
    const first = encodeFeatures(records[0]!);
    if (!first.ok) throw new Error('unexpected');
    expect(Array.from(dataset.x.subarray(0, FEATURE_COUNT))).toEqual(Array.from(first.vector, Math.fround));
    expect(dataset.y[0]).toBe(records[0]!.churned);

    expect(await countOnline()).toBe(ROWS - 3);
    const { churned: _label, ...stored } = records[41]!;
    expect(
      await getRecord({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures }, 'c-000042'),
    ).toEqual(stored);
    const many = await getRecords({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures }, [
      ...records.slice(0, 250).map((r) => r.customer_id),
      'c-999999',
    ]);
    expect(many.size).toBe(248); // c-000005 and c-000100 were quarantined, c-999999 never existed
  });

  it('is idempotent: the same input again gives the same outputs and counts', async () => {
    const report = await runEtl(deps, {
      inputKey: 'raw/20261101T000000Z-n3000-s11.csv',
      runDate: '2026-11-01',
      partRows: 1000,
    });
    expect(report).toMatchObject({ valid: ROWS - 3, quarantined: 3 });
    expect(await countOnline()).toBe(ROWS - 3);
    const dataset = await readFeatureDataset(aws.clients.s3, aws.names.features, report.featurePrefix);
    expect(dataset.rows).toBe(ROWS - 3);
  });

  it('fails above the allowed bad-row share, reporting the counts', async () => {
    const mostlyBad = [CSV_HEADER, ...records.slice(0, 10).map((r) => toCsvLine({ ...r, age: 5 }))];
    mostlyBad.push(toCsvLine(records[10]!));
    await putRaw('raw/bad.csv', mostlyBad);
    const error = await runEtl(deps, { inputKey: 'raw/bad.csv', maxBadRowShare: 0.5 }).catch((e) => e);
    expect(error).toBeInstanceOf(BadRowShareError);
    expect(error.message).toMatch(/10 of 11 rows are bad/);
  });
});
