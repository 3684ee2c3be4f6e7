import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { BadRowShareError, type EtlDeps, newestRawKey, planEtl, runEtl } from '#shared/etl/etl.ts';
import { CSV_HEADER, encodeFeatures, FEATURE_COUNT, toCsvLine } from '#shared/features/index.ts';
import { readFeatureDataset } from '#shared/offline/features-dataset.ts';
import { getRecord, getRecords } from '#shared/online-store/store.ts';
import { etlDepsOf, startTestAws, type TestAws } from '../support/aws.ts';

let aws: TestAws;
let deps: EtlDeps;
beforeAll(async () => {
  aws = await startTestAws();
  deps = etlDepsOf(aws);
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
      chunkRows: 1000,
    });
    expect(report).toMatchObject({
      rowsRead: ROWS,
      valid: ROWS - 3,
      quarantined: 3,
      onlineWritten: ROWS - 3,
      labeled: true,
    });
    expect(report.featureParts).toHaveLength(3);

    // Rows 5 and 100 are in chunk 0, row 2500 in chunk 2: one quarantine part per chunk with bad rows.
    expect(report.quarantineKeys.map((key) => key.slice(-16))).toEqual([
      'part-00000.jsonl',
      'part-00002.jsonl',
    ]);
    const entries: { row: number; reason: string[] }[] = [];
    for (const Key of report.quarantineKeys) {
      const part = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.features, Key }));
      for (const line of (await part.Body!.transformToString()).trim().split('\n'))
        entries.push(JSON.parse(line));
    }
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
      chunkRows: 1000,
    });
    expect(report).toMatchObject({ valid: ROWS - 3, quarantined: 3 });
    expect(await countOnline()).toBe(ROWS - 3);
    const dataset = await readFeatureDataset(aws.clients.s3, aws.names.features, report.featurePrefix);
    expect(dataset.rows).toBe(ROWS - 3);
  });

  it('fails above the allowed bad-row share, reporting the counts', async () => {
    const mostlyBad = [
      CSV_HEADER,
      ...records.slice(0, 5).map((r) => toCsvLine({ ...r, age: 5 })),
      ...records.slice(5, 10).map((r) => toCsvLine({ ...r, orders: -1 })),
    ];
    mostlyBad.push(toCsvLine(records[10]!));
    await putRaw('raw/bad.csv', mostlyBad);
    const error = await runEtl(deps, { inputKey: 'raw/bad.csv', maxBadRowShare: 0.5 }).catch((e) => e);
    expect(error).toBeInstanceOf(BadRowShareError);
    expect(error.message).toMatch(/10 of 11 rows are bad/);
  });

  it('plans chunks of whole lines with exact row numbers, with or without a final newline', async () => {
    const body = [CSV_HEADER, ...records.slice(0, 2500).map(toCsvLine)].join('\n');
    for (const [key, text] of [
      ['raw/plan-a.csv', `${body}\n`],
      ['raw/plan-b.csv', body],
    ] as const) {
      await aws.clients.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: text }));
      const plan = await planEtl(deps, { inputKey: key, chunkRows: 1000 });
      expect(plan.totalRows).toBe(2500);
      expect(plan.chunks.map((c) => [c.firstRow, c.rows])).toEqual([
        [1, 1000],
        [1001, 1000],
        [2001, 500],
      ]);
      expect(plan.chunks.at(-1)!.end).toBe(Buffer.byteLength(text));
      expect(plan.header).toBe(CSV_HEADER);
      expect(plan.labeled).toBe(true);
      const report = await runEtl(deps, { inputKey: key, chunkRows: 1000 });
      expect(report).toMatchObject({ rowsRead: 2500, valid: 2500, quarantined: 0 });
    }
  });

  it('fails a file with a header and no rows', async () => {
    await putRaw('raw/empty.csv', [CSV_HEADER]);
    await expect(runEtl(deps, { inputKey: 'raw/empty.csv' })).rejects.toThrow(/0 of 0 rows are bad/);
  });
});
