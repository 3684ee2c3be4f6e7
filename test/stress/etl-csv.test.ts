import { readFile } from 'node:fs/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipelineRunner, notificationsFile, type PipelineRunner } from '#local/pipelines.ts';
import type { BatchReport, BatchRunSummary } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import {
  BadRowShareError,
  type EtlDeps,
  type EtlReport,
  type EtlRunSummary,
  runEtl,
} from '#shared/etl/etl.ts';
import { CSV_COLUMNS, CSV_HEADER, type LabeledRecord, toCsvLine } from '#shared/features/index.ts';
import { getRecords } from '#shared/online-store/store.ts';
import { getJson } from '#shared/pipelines/run-objects.ts';
import { etlDepsOf, startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';

/**
 * Generated raw CSV files with hostile rows through the real ETL: many files through the ETL's own
 * steps (fast), a few through the synthesized state machine. Never a crash; every bad row quarantined
 * with its row number and a reason; the online store holds exactly the valid rows.
 */
let aws: TestAws;
let deps: EtlDeps;
let runner: PipelineRunner;

beforeAll(async () => {
  aws = await startTestAws();
  deps = etlDepsOf(aws);
  runner = await createPipelineRunner({ home: aws.home, target: aws.target, names: aws.names });
});
afterAll(async () => {
  await runner?.close();
  await aws?.close();
});

const pool = [...generateRecords({ rows: 64, seed: 9, asOf: new Date() })];
const store = () => ({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures });
const lineOf = (record: LabeledRecord) => toCsvLine(record);
const cellsOf = (record: LabeledRecord) => lineOf(record).split(',');
const column = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
const NUMERIC = ['age', 'income', 'tenure_months', 'total_spend', 'orders', 'support_tickets_90d'] as const;

/** A row of the file to build: valid, or hostile in one way (each yields one or more bad lines). */
type RowSpec =
  | { kind: 'valid'; pick: number }
  | { kind: 'duplicate'; of: number }
  | { kind: 'badNumber'; field: (typeof NUMERIC)[number]; value: string; pick: number }
  | { kind: 'badEnum'; field: 'plan' | 'region'; value: string; pick: number }
  | { kind: 'missing'; drop: number; pick: number }
  | { kind: 'extra'; cells: string[]; pick: number }
  | { kind: 'quotedNewline'; pick: number }
  | { kind: 'quotedComma'; pick: number }
  | { kind: 'huge'; size: number; pick: number }
  | { kind: 'blank' }
  | { kind: 'garbage'; text: string };

const pick = fc.nat({ max: pool.length - 1 });
const rowSpec: fc.Arbitrary<RowSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('valid' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), of: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('badNumber' as const),
      field: fc.constantFrom(...NUMERIC),
      value: fc.constantFrom(
        'abc',
        'NaN',
        'Infinity',
        '-Infinity',
        '1e400',
        '-1',
        '0x10',
        ' 5',
        '5 ',
        '1_000',
        '½',
      ),
      pick,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badEnum' as const),
      field: fc.constantFrom('plan' as const, 'region' as const),
      value: fc.constantFrom('Gold', 'PREMIUM', '', '1x', 'a b', 'ü', '-', 'x'.repeat(33)),
      pick,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('missing' as const),
      drop: fc.integer({ min: 1, max: 11 }),
      pick,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extra' as const),
      cells: fc.array(fc.stringMatching(/^[a-z0-9]{0,6}$/), { minLength: 1, maxLength: 3 }),
      pick,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('quotedNewline' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('quotedComma' as const), pick }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('huge' as const),
      size: fc.integer({ min: 33, max: 300_000 }),
      pick,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'blank' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      text: fc.string({ minLength: 1, maxLength: 80 }).filter((t) => !/[\r\n]/.test(t)),
    }),
  },
);

interface BuiltFile {
  readonly body: string;
  readonly lines: number;
  /** Valid customer id → the record the store must hold (a later row of the same id wins across chunks). */
  readonly valid: Map<string, LabeledRecord>;
  readonly validRows: number;
  readonly badRows: number[];
  /** Ids that appear only in bad rows: never in the store. */
  readonly badIds: string[];
}

/** Builds the file and what the ETL must make of it. Ids are unique to the case (`<prefix>-<row>`). */
function buildFile(
  prefix: string,
  specs: readonly RowSpec[],
  chunkRows: number,
  { bom, crlf }: { bom: boolean; crlf: boolean },
): BuiltFile {
  const lines: string[] = [];
  const valid = new Map<string, LabeledRecord>();
  const firstRowInChunk = new Map<string, number>();
  const validIds: string[] = [];
  const badRows: number[] = [];
  const badIds: string[] = [];
  let validRows = 0;
  const chunkOf = (row: number) => Math.floor((row - 1) / chunkRows);
  const bad = (line: string, id?: string) => {
    lines.push(line);
    badRows.push(lines.length);
    if (id) badIds.push(id);
  };
  for (const spec of specs) {
    const id = `${prefix}-${lines.length + 1}`;
    const base = 'pick' in spec ? { ...pool[spec.pick]!, customer_id: id } : undefined;
    const cells = base ? cellsOf(base) : [];
    switch (spec.kind) {
      case 'valid':
      case 'duplicate': {
        const sameAs =
          spec.kind === 'duplicate' ? validIds[spec.of % Math.max(1, validIds.length)] : undefined;
        const record = {
          ...pool[spec.kind === 'valid' ? spec.pick : spec.of % pool.length]!,
          customer_id: sameAs ?? id,
        };
        lines.push(lineOf(record));
        const row = lines.length;
        const key = `${chunkOf(row)}/${record.customer_id}`;
        if (firstRowInChunk.has(key)) {
          badRows.push(row); // the ETL refuses the same customer twice in one chunk
          break;
        }
        firstRowInChunk.set(key, row);
        valid.set(record.customer_id, record);
        validIds.push(record.customer_id);
        validRows++;
        break;
      }
      case 'badNumber':
        cells[column(spec.field)] = spec.value;
        bad(cells.join(','), id);
        break;
      case 'badEnum':
        cells[column(spec.field)] = spec.value;
        bad(cells.join(','), id);
        break;
      case 'missing':
        bad(cells.slice(0, Math.max(1, cells.length - spec.drop)).join(','), id);
        break;
      case 'extra':
        bad([...cells, ...spec.cells].join(','), id);
        break;
      case 'quotedNewline': {
        cells[column('plan')] = `"${cells[column('plan')]!.slice(0, 2)}\n${cells[column('plan')]!.slice(2)}"`;
        const [first, second] = cells.join(',').split('\n');
        bad(first!, id);
        bad(second!);
        break;
      }
      case 'quotedComma':
        cells[column('region')] = `"${cells[column('region')]},x"`;
        bad(cells.join(','), id);
        break;
      case 'huge':
        cells[column('plan')] = 'p'.repeat(spec.size);
        bad(cells.join(','), id);
        break;
      case 'blank':
        bad('');
        break;
      case 'garbage':
        bad(spec.text);
        break;
    }
  }
  const newline = crlf ? '\r\n' : '\n';
  const body = `${bom ? '\uFEFF' : ''}${[CSV_HEADER, ...lines].join(newline)}${newline}`;
  return { body, lines: lines.length, valid, validRows, badRows, badIds };
}

async function quarantined(report: EtlReport): Promise<{ row: number; reason: string[] }[]> {
  const entries: { row: number; reason: string[] }[] = [];
  for (const Key of report.quarantineKeys) {
    const part = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.features, Key }));
    for (const line of (await part.Body!.transformToString()).trim().split('\n'))
      entries.push(JSON.parse(line));
  }
  return entries;
}

async function expectStoreHoldsExactly(file: BuiltFile) {
  const stored = await getRecords(store(), [...file.valid.keys()]);
  expect(stored.size).toBe(file.valid.size);
  for (const [id, { churned: _label, ...record }] of file.valid) expect(stored.get(id)).toEqual(record);
  expect((await getRecords(store(), file.badIds)).size).toBe(0);
}

let cases = 0;
describe('hostile CSV through the ETL steps', () => {
  it('quarantines every bad row with its number and reason, and stores exactly the valid rows', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(rowSpec, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.boolean(),
        async (specs, chunkRows, bom, crlf) => {
          const prefix = `k${++cases}`;
          const file = buildFile(prefix, specs, chunkRows, { bom, crlf });
          const inputKey = `raw/stress-${prefix}.csv`;
          await aws.clients.s3.send(
            new PutObjectCommand({ Bucket: aws.names.raw, Key: inputKey, Body: file.body }),
          );
          const report = await runEtl(deps, { inputKey, chunkRows, maxBadRowShare: 1 });
          expect(report).toMatchObject({
            rowsRead: file.lines,
            valid: file.validRows,
            quarantined: file.badRows.length,
            onlineWritten: file.validRows,
          });
          const entries = await quarantined(report);
          expect(entries.map((e) => e.row)).toEqual(file.badRows);
          for (const entry of entries) {
            expect(entry.reason.length).toBeGreaterThan(0);
            for (const reason of entry.reason) expect(reason).toMatch(/^[\w.]+: \S/);
          }
          await expectStoreHoldsExactly(file);
        },
      ),
      { numRuns: Number(process.env.KEEL_STRESS_CSV_FILES ?? 120) },
    );
  }, 300_000);

  it('fails cleanly on an empty file and on a header with no rows, storing nothing', async () => {
    for (const [name, body] of [
      ['empty', ''],
      ['header-only', CSV_HEADER],
      ['header-only-newline', `${CSV_HEADER}\n`],
      ['bom-header-only', `\uFEFF${CSV_HEADER}\r\n`],
    ] as const) {
      const inputKey = `raw/stress-${name}.csv`;
      await aws.clients.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: inputKey, Body: body }));
      const error = await runEtl(deps, { inputKey, maxBadRowShare: 1 }).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(BadRowShareError);
    }
  });

  it('a run failed for too many bad rows still leaves exactly the valid rows, never a part of them', async () => {
    const specs: RowSpec[] = Array.from({ length: 30 }, (_, i) =>
      i % 3 === 0 ? { kind: 'valid', pick: i } : { kind: 'badNumber', field: 'age', value: 'abc', pick: i },
    );
    const file = buildFile('share', specs, 4, { bom: false, crlf: false });
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/stress-share.csv', Body: file.body }),
    );
    const error = await runEtl(deps, { inputKey: 'raw/stress-share.csv', chunkRows: 4 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadRowShareError);
    expect((error as BadRowShareError).message).toMatch(/20 of 30 rows are bad/);
    await expectStoreHoldsExactly(file);
  });
});

describe('hostile CSV through the synthesized ETL state machine', () => {
  it('succeeds on a mixed file with exact row numbers, and fails with a notification on an empty one', async () => {
    const specs: RowSpec[] = [
      { kind: 'valid', pick: 0 },
      { kind: 'quotedNewline', pick: 1 },
      { kind: 'valid', pick: 2 },
      { kind: 'duplicate', of: 1 },
      { kind: 'blank' },
      { kind: 'extra', cells: ['x'], pick: 3 },
      { kind: 'huge', size: 200_000, pick: 4 },
      { kind: 'valid', pick: 5 },
      { kind: 'badNumber', field: 'income', value: '1e400', pick: 6 },
      { kind: 'valid', pick: 7 },
    ];
    const file = buildFile('sfn', specs, 3, { bom: true, crlf: true });
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/stress-sfn.csv', Body: file.body }),
    );
    const run = await runner.run<EtlRunSummary>('etl', {
      inputKey: 'raw/stress-sfn.csv',
      chunkRows: 3,
      maxBadRowShare: 1,
    });
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({
      rowsRead: 11,
      valid: file.validRows,
      quarantined: file.badRows.length,
    });
    // The state machine's output counts the quarantine parts; the dataset's manifest lists them.
    const manifest = await getJson<EtlReport>(aws.clients.s3, aws.names.features, run.output!.manifestKey);
    expect((await quarantined(manifest)).map((e) => e.row)).toEqual(file.badRows);
    await expectStoreHoldsExactly(file);

    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/stress-empty.csv', Body: '' }),
    );
    const empty = await runner.run('etl', { inputKey: 'raw/stress-empty.csv' });
    expect(empty.status).toBe('FAILED');
    const last = JSON.parse((await readFile(notificationsFile(aws.home), 'utf8')).trim().split('\n').at(-1)!);
    expect(last).toMatchObject({
      source: 'pipeline:etl',
      message: {
        status: 'FAILED',
        error: 'BadRowShareError',
        cause: expect.stringContaining('no header line'),
      },
    });
  });
});

describe('hostile CSV through batch scoring of a given file', () => {
  it('scores every valid row, counts every bad line as skipped, and never fails the run', async () => {
    const { version } = await registerTrainedModel(aws, pool, { seed: 1, nTrees: 5 });
    await promoteVersion(aws, version);
    const specs: RowSpec[] = [
      { kind: 'valid', pick: 10 },
      { kind: 'quotedNewline', pick: 11 },
      { kind: 'valid', pick: 12 },
      { kind: 'blank' },
      { kind: 'extra', cells: ['x'], pick: 13 },
      { kind: 'quotedComma', pick: 14 },
      { kind: 'valid', pick: 15 },
      { kind: 'garbage', text: 'a,"b' },
      { kind: 'valid', pick: 16 },
    ];
    const file = buildFile('bat', specs, 3, { bom: true, crlf: false });
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/stress-batch.csv', Body: file.body }),
    );
    const run = await runner.run<BatchRunSummary>('batch', {
      inputKey: 'raw/stress-batch.csv',
      chunkRows: 3,
    });
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({ rows: file.validRows, skipped: file.badRows.length });
    const scored: string[] = [];
    const { parts } = await getJson<BatchReport>(aws.clients.s3, aws.names.outputs, run.output!.manifestKey);
    for (const Key of parts) {
      const part = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.outputs, Key }));
      scored.push(
        ...(await part.Body!.transformToString())
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.split(',')[0]!),
      );
    }
    expect(scored.sort()).toEqual([...file.valid.keys()].sort());
  });
});
