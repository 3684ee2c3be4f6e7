import { type Readable, Transform } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeRuntime } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import { generateOutcomes, generateRecords } from '#shared/data/generate.ts';
import { writeOutcomes } from '#shared/data/raw-data.ts';
import { type OutcomeDeps, readOutcomes } from '#shared/quality/outcomes.ts';
import { publishRuntime, startTestAws, type TestAws } from '../support/aws.ts';
import { runKeel } from '../support/cli.ts';

/**
 * The quality job's outcome intake against the test's S3: every file under `outcomes/`, bad rows to the
 * quarantine once per file, a file with the wrong header refused whole; and `keel data generate --kind
 * outcomes` writing a file the intake reads back.
 */
let aws: TestAws;
let deps: OutcomeDeps;
beforeAll(async () => {
  aws = await startTestAws();
  deps = { s3: aws.clients.s3, rawBucket: aws.names.raw, featuresBucket: aws.names.features };
});
afterAll(async () => {
  await aws?.close();
});

const HEADER = 'customer_id,churned,observed_at';
const DAY = 86_400_000;
const T = Date.parse('2026-12-02T00:00:00Z');

async function put(key: string, body: string): Promise<void> {
  await aws.clients.s3.send(
    new PutObjectCommand({
      Bucket: aws.names.raw,
      Key: key,
      Body: body,
      ContentLength: Buffer.byteLength(body),
    }),
  );
}

async function text(bucket: string, key: string): Promise<string> {
  const object = await aws.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return object.Body!.transformToString();
}

async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  const page = await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((object) => object.Key!);
}

async function clearOutcomes(): Promise<void> {
  for (const [bucket, prefix] of [
    [aws.names.raw, 'outcomes/'],
    [aws.names.features, 'quarantine/outcomes/'],
  ] as const) {
    const keys = await keysUnder(bucket, prefix);
    if (keys.length === 0) continue;
    await aws.clients.s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }),
    );
  }
}

const ID_MESSAGE = 'customer_id: customer id: 1-64 letters, digits or _.:- (e.g. c-000123)';

describe('readOutcomes', () => {
  it('indexes good rows, quarantines each kind of bad row once per file and refuses a bad header', async () => {
    await clearOutcomes();
    // A spreadsheet export: byte-order mark, CRLF, columns in another order, no final newline.
    await put(
      'outcomes/20261203T000000Z-crm.csv',
      `\uFEFFobserved_at,customer_id,churned\r\n2026-12-03T00:00:00Z,c-1,1\r\n2026-12-01T00:00:00Z,c-1,0\r\n2026-12-02T12:00:00+01:00,c-2,0`,
    );
    await put(
      'outcomes/20261204T000000Z-mixed.csv',
      [
        HEADER,
        'c-3,1,2026-12-02T00:00:00Z',
        'c 4,1,2026-12-02T00:00:00Z',
        ',0,2026-12-02T00:00:00Z',
        'c-5,2,2026-12-02T00:00:00Z',
        'c-6,,2026-12-02T00:00:00Z',
        'c-7,1,yesterday',
        'c-8,1,2026-12-02',
        'c-9,1',
        'c-10,1,2026-12-02T00:00:00Z,extra',
        '',
        '"c-11",0,2026-12-04T00:00:00.500Z',
        'bad id!,x,',
      ].join('\n'),
    );
    await put(
      'outcomes/20261205T000000Z-renamed.csv',
      `customer_id,churn,observed_at\nc-12,1,2026-12-02T00:00:00Z\n`,
    );
    await put('outcomes/20261205T000001Z-empty.csv', '');
    await put('outcomes/folder/', '');

    const reading = await readOutcomes(deps);
    expect(reading.intake).toEqual({ files: 4, rows: 3 + 12, quarantined: 10 });
    expect(Object.fromEntries(reading.index)).toEqual({
      'c-1': [
        { observedAt: Date.parse('2026-12-01T00:00:00Z'), churned: 0 },
        { observedAt: Date.parse('2026-12-03T00:00:00Z'), churned: 1 },
      ],
      'c-2': [{ observedAt: Date.parse('2026-12-02T11:00:00Z'), churned: 0 }],
      'c-3': [{ observedAt: T, churned: 1 }],
      'c-11': [{ observedAt: Date.parse('2026-12-04T00:00:00.500Z'), churned: 0 }],
    });
    expect(reading.refusedFiles).toEqual([
      {
        key: 'outcomes/20261205T000000Z-renamed.csv',
        reason: `s3://${aws.names.raw}/outcomes/20261205T000000Z-renamed.csv: the header does not match the outcome record: missing column churned (renamed to churn?); unexpected column churn`,
      },
      {
        key: 'outcomes/20261205T000001Z-empty.csv',
        reason: `s3://${aws.names.raw}/outcomes/20261205T000001Z-empty.csv: empty file, no header line`,
      },
    ]);
    expect(reading.quarantineKeys).toEqual(['quarantine/outcomes/20261204T000000Z-mixed.jsonl']);

    const raw = (customer_id: string, churned: string, observed_at: string) => ({
      customer_id,
      churned,
      observed_at,
    });
    const quarantine = (await text(aws.names.features, reading.quarantineKeys[0]!))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(quarantine).toEqual([
      { row: 2, reason: [ID_MESSAGE], raw: raw('c 4', '1', '2026-12-02T00:00:00Z') },
      { row: 3, reason: [ID_MESSAGE], raw: raw('', '0', '2026-12-02T00:00:00Z') },
      { row: 4, reason: ['churned: must be 0 or 1'], raw: raw('c-5', '2', '2026-12-02T00:00:00Z') },
      { row: 5, reason: ['churned: must be 0 or 1'], raw: raw('c-6', '', '2026-12-02T00:00:00Z') },
      { row: 6, reason: ['observed_at: Invalid ISO datetime'], raw: raw('c-7', '1', 'yesterday') },
      { row: 7, reason: ['observed_at: Invalid ISO datetime'], raw: raw('c-8', '1', '2026-12-02') },
      { row: 8, reason: ['row: 2 cells, the header has 3'] },
      { row: 9, reason: ['row: 4 cells, the header has 3'] },
      { row: 10, reason: ['row: empty line'] },
      {
        row: 12,
        reason: [ID_MESSAGE, 'churned: must be 0 or 1', 'observed_at: Invalid ISO datetime'],
        raw: raw('bad id!', 'x', ''),
      },
    ]);

    // The job runs again (every day): the same quarantine object, not a second one, and the same intake.
    const before = await text(aws.names.features, reading.quarantineKeys[0]!);
    const again = await readOutcomes(deps);
    expect(again.intake).toEqual(reading.intake);
    expect(await keysUnder(aws.names.features, 'quarantine/outcomes/')).toEqual(reading.quarantineKeys);
    expect(await text(aws.names.features, reading.quarantineKeys[0]!)).toBe(before);
  });

  it('indexes only the outcomes observed in [observedFrom, observedBefore), counting all', async () => {
    const reading = await readOutcomes(deps, {
      observedFrom: new Date('2026-12-02T00:00:00Z'),
      observedBefore: new Date('2026-12-03T00:00:00Z'),
    });
    expect([...reading.index.keys()].sort()).toEqual(['c-2', 'c-3']);
    expect(reading.intake.rows).toBe(15);
    await expect(readOutcomes(deps, { observedFrom: new Date('soon') })).rejects.toThrow(
      /observedFrom must be a valid date/,
    );
  });

  it('refuses a large file with a wrong header after reading its first piece only', async () => {
    await clearOutcomes();
    const big = `customer,churned,observed_at\n${'c-000001,1,2026-12-02T00:00:00Z\n'.repeat(150_000)}`;
    await put('outcomes/big-renamed.csv', big);
    const s3 = createS3Client(aws.target);
    let bytesRead = 0;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'GetObjectCommand') return result;
        const output = result.output as { Body: Readable };
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            bytesRead += chunk.byteLength;
            done(null, chunk);
          },
        });
        // The reader gives the body up by destroying it: so is the response under the counter.
        const response = output.Body;
        counter.on('close', () => response.destroy());
        output.Body = response.pipe(counter);
        return result;
      },
      { step: 'initialize' },
    );
    try {
      const reading = await readOutcomes({ ...deps, s3 });
      expect(reading.refusedFiles.map((file) => file.key)).toEqual(['outcomes/big-renamed.csv']);
      expect(reading.intake).toEqual({ files: 1, rows: 0, quarantined: 0 });
    } finally {
      s3.destroy();
    }
    expect(Buffer.byteLength(big)).toBeGreaterThan(4_000_000);
    expect(bytesRead).toBeGreaterThan(0);
    expect(bytesRead).toBeLessThan(256 * 1024);
  });

  it('reads back a generated outcome file (streamed both ways) as the generator made it', async () => {
    await clearOutcomes();
    const options = { rows: 30_000, seed: 4, observedAt: new Date(T), conceptShift: 0.5 };
    const summary = await writeOutcomes(aws.clients.s3, aws.names.raw, options, { now: new Date(T + DAY) });
    expect(summary).toMatchObject({
      key: 'outcomes/20261203T000000Z-n30000-s4-shift-0.5.csv',
      rows: 30_000,
      conceptShift: 0.5,
      observedAt: '2026-12-02T00:00:00.000Z',
    });
    const reading = await readOutcomes(deps);
    expect(reading.intake).toEqual({ files: 1, rows: 30_000, quarantined: 0 });
    let churned = 0;
    for (const outcome of generateOutcomes(options)) {
      expect(reading.index.get(outcome.customer_id)).toEqual([{ observedAt: T, churned: outcome.churned }]);
      churned += outcome.churned;
    }
    expect(summary.churnRate).toBeCloseTo(churned / 30_000, 10);
  });
});

describe('keel data generate --kind outcomes', () => {
  it('writes the outcomes of the generated customers under outcomes/, and names bad flags', async () => {
    await clearOutcomes();
    // What `keel up` publishes for other terminals: this test's servers.
    await publishRuntime(aws);
    const env = { KEEL_HOME: aws.home };
    try {
      const flags = ['--rows', '500', '--seed', '5', '--kind', 'outcomes'];
      const result = await runKeel(
        [
          '--json',
          'data',
          'generate',
          ...flags,
          '--concept-shift',
          '1',
          '--observed-at',
          '2026-12-06T02:00:00Z',
        ],
        env,
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout) as { key: string; rows: number; conceptShift: number };
      expect(summary).toMatchObject({
        bucket: aws.names.raw,
        rows: 500,
        conceptShift: 1,
        observedAt: '2026-12-06T02:00:00.000Z',
      });
      expect(summary.key).toMatch(/^outcomes\/\d{8}T\d{6}Z-n500-s5-shift-1\.csv$/);
      const expected = [
        HEADER,
        ...[
          ...generateOutcomes({
            rows: 500,
            seed: 5,
            observedAt: new Date('2026-12-06T02:00:00Z'),
            conceptShift: 1,
          }),
        ].map((o) => `${o.customer_id},${o.churned},${o.observed_at}`),
      ];
      expect(await text(aws.names.raw, summary.key)).toBe(`${expected.join('\n')}\n`);

      // New customers' outcomes: the same --first-id names the same customers.
      const later = await runKeel(['--json', 'data', 'generate', ...flags, '--first-id', '20001'], env);
      expect(later.code, later.stderr).toBe(0);
      const laterSummary = JSON.parse(later.stdout) as { key: string; customerIds: unknown };
      expect(laterSummary.customerIds).toEqual({ first: 'c-020001', last: 'c-020500' });
      expect(laterSummary.key).toMatch(/-n500-s5-first20001\.csv$/);
      const laterLines = (await text(aws.names.raw, laterSummary.key)).trimEnd().split('\n').slice(1);
      const customers = [...generateRecords({ rows: 500, seed: 5, firstId: 20_001, asOf: new Date() })];
      expect(laterLines.map((line) => line.split(',').slice(0, 2).join(','))).toEqual(
        customers.map((c) => `${c.customer_id},${c.churned}`),
      );

      const human = await runKeel(['data', 'generate', ...flags], env);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(
        /wrote s3:\/\/\S+\/outcomes\/\S+-n500-s5\.csv\n {2}outcomes 500 \(c-000001 … c-000500\), observed at /,
      );

      for (const [args, message] of [
        [['--concept-shift', '0'], '--concept-shift must be a number greater than 0 and at most 1'],
        [['--observed-at', 'yesterday'], '--observed-at must be an ISO 8601 time with a zone'],
        [
          ['--as-of', '2026-12-01T00:00:00Z'],
          "--as-of dates the customers' events; outcomes take --observed-at",
        ],
      ] as const) {
        const bad = await runKeel(['data', 'generate', ...flags, ...args], env);
        expect(bad.code, args.join(' ')).not.toBe(0);
        expect(bad.stderr).toContain(message);
      }
      const outcomesOnly = await runKeel(
        ['data', 'generate', '--rows', '5', '--observed-at', '2026-12-06T02:00:00Z'],
        env,
      );
      expect(outcomesOnly.code).toBe(1);
      expect(outcomesOnly.stderr).toContain('--observed-at is for --kind outcomes');
    } finally {
      await removeRuntime(aws.home);
    }
  }, 120_000);
});
