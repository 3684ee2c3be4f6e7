import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { importCsvFile, importKey } from '#shared/data/import-file.ts';
import { ValidationError } from '#shared/errors.ts';
import { SchemaChangeError } from '#shared/features/header.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';

let aws: TestAws;
let dir: string;
beforeAll(async () => {
  aws = await startTestAws();
  dir = await mkdtemp(join(tmpdir(), 'keel-import-'));
});
afterAll(async () => {
  await aws?.close();
  await rm(dir, { recursive: true, force: true });
});

const NOW = new Date('2026-12-06T02:00:00.123Z');
const records = [...generateRecords({ rows: 500, seed: 3, asOf: NOW })];

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function keys(prefix: string): Promise<string[]> {
  const page = await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: aws.names.raw, Prefix: prefix }));
  return (page.Contents ?? []).map((object) => object.Key!);
}

describe('keel data import (importCsvFile)', () => {
  it('streams a customer file byte for byte under a time-ordered raw/ key, counting its rows', async () => {
    const text = `${[CSV_HEADER, ...records.map(toCsvLine)].join('\n')}\n`;
    const path = await file('customers november.csv', text);
    const summary = await importCsvFile(aws.clients.s3, aws.names.raw, { path, kind: 'customers', now: NOW });
    expect(summary).toEqual({
      bucket: aws.names.raw,
      key: 'raw/20261206T020000Z-customers-november.csv',
      kind: 'customers',
      rows: 500,
      bytes: Buffer.byteLength(text),
    });
    const object = await aws.clients.s3.send(
      new GetObjectCommand({ Bucket: aws.names.raw, Key: summary.key }),
    );
    expect(await object.Body!.transformToString()).toBe(text);
  });

  it('takes a spreadsheet export (byte-order mark, CRLF, no final newline) and counts its last row', async () => {
    const text = `\uFEFF${[CSV_HEADER, ...records.slice(0, 3).map(toCsvLine)].join('\r\n')}`;
    const path = await file('export.csv', text);
    const summary = await importCsvFile(aws.clients.s3, aws.names.raw, { path, kind: 'customers', now: NOW });
    expect(summary.rows).toBe(3);
  });

  it('puts outcomes under outcomes/, checked against the outcome columns', async () => {
    const path = await file(
      'outcomes.csv',
      'customer_id,churned,observed_at\nc-000001,1,2026-12-01T00:00:00Z\n',
    );
    const summary = await importCsvFile(aws.clients.s3, aws.names.raw, { path, kind: 'outcomes', now: NOW });
    expect(summary).toMatchObject({ key: 'outcomes/20261206T020000Z-outcomes.csv', rows: 1 });
    const wrong = await file('wrong-kind.csv', `${CSV_HEADER}\n`);
    await expect(
      importCsvFile(aws.clients.s3, aws.names.raw, { path: wrong, kind: 'outcomes' }),
    ).rejects.toThrow(
      /does not match the outcome record: missing column observed_at; unexpected columns age, income, /,
    );
  });

  it('refuses a renamed column before sending anything, naming both columns', async () => {
    const before = await keys('raw/');
    const path = await file(
      'renamed.csv',
      `${CSV_HEADER.replace('income', 'annual_income')}\n${toCsvLine(records[0]!)}\n`,
    );
    const error = await importCsvFile(aws.clients.s3, aws.names.raw, { path, kind: 'customers' }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(SchemaChangeError);
    expect(error.message).toContain(
      'missing column income (renamed to annual_income?); unexpected column annual_income',
    );
    expect(await keys('raw/')).toEqual(before);
  });

  it('names the file argument when it is missing or empty', async () => {
    for (const [path, message] of [
      [join(dir, 'nope.csv'), 'no such file'],
      [await file('empty.csv', ''), 'empty file'],
    ] as const) {
      const error = await importCsvFile(aws.clients.s3, aws.names.raw, { path, kind: 'customers' }).catch(
        (e) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.details).toEqual([{ path: 'FILE', message }]);
    }
  });

  it('makes keys safe whatever the file is called', () => {
    expect(importKey('customers', '/tmp/März Kunden (final).CSV', NOW)).toBe(
      'raw/20261206T020000Z-M-rz-Kunden-final-.csv',
    );
    expect(importKey('customers', '/tmp/.csv', NOW)).toBe('raw/20261206T020000Z-import.csv');
  });
});
