import { type Readable, Transform } from 'node:stream';
import { type GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { type EtlReport, planEtl, runEtl } from '#shared/etl/etl.ts';
import { SchemaChangeError } from '#shared/features/header.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { ALARM_IDS, alarmDefinitions, unseenCategoryAlarmId } from '#shared/monitoring/alarm-definitions.ts';
import { parseEmf } from '#shared/monitoring/emf.ts';
import { type AlarmState, evaluateAlarm, periodDatapoints } from '#shared/monitoring/evaluate.ts';
import { etlDepsOf, startTestAws, type TestAws } from '../support/aws.ts';

/**
 * The ETL's data-quality metrics, as the alarms see them: the EMF lines a run publishes are read back
 * and evaluated by the catalog's definitions with the local evaluator (the same code that runs the
 * local platform's alarms).
 */
let aws: TestAws;
beforeAll(async () => {
  aws = await startTestAws();
});
afterAll(async () => {
  await aws?.close();
});

const NOW = new Date('2026-12-06T02:30:00Z');
const HOUR = 3_600_000;
const records = [...generateRecords({ rows: 400, seed: 21, asOf: NOW })];
const catalog = alarmDefinitions();

/** An ETL run of `lines` at NOW; returns its EMF lines and how it ended. */
async function etlOf(key: string, lines: string[]) {
  await aws.clients.s3.send(
    new PutObjectCommand({ Bucket: aws.names.raw, Key: key, Body: `${lines.join('\n')}\n` }),
  );
  const emitted: string[] = [];
  const outcome = await runEtl(
    { ...etlDepsOf(aws), clock: () => NOW, emit: (line) => emitted.push(line) },
    { inputKey: key },
  ).then(
    (report): { report?: EtlReport; error?: unknown } => ({ report }),
    (error: unknown): { report?: EtlReport; error?: unknown } => ({ error }),
  );
  return { emitted, ...outcome };
}

/** The alarm's state after the datapoints of `lines`, evaluated at the end of NOW's hour. */
function stateOf(id: string, lines: readonly string[]): AlarmState {
  const definition = catalog.alarms.find((alarm) => alarm.id === id)!;
  const end = Math.ceil(NOW.getTime() / HOUR) * HOUR;
  const datapoints = periodDatapoints(definition, lines.flatMap(parseEmf), {
    end,
    periods: definition.evaluationPeriods,
  });
  return evaluateAlarm(definition, datapoints);
}

describe('the header is checked first', () => {
  it('a renamed column stops the plan after the header: a few kilobytes of a 5 MB file are read', async () => {
    const rows = [...generateRecords({ rows: 70_000, seed: 22, asOf: NOW })].map(toCsvLine);
    const text = `${[CSV_HEADER.replace('income', 'annual_income'), ...rows].join('\n')}\n`;
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/dq-big-renamed.csv', Body: text }),
    );
    // The raw object's bytes as the planner pulls them from S3.
    let bytesRead = 0;
    const s3 = {
      async send(command: GetObjectCommand) {
        const output = await aws.clients.s3.send(command);
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            bytesRead += chunk.byteLength;
            done(null, chunk);
          },
        });
        return { ...output, Body: (output.Body as Readable).pipe(counter) };
      },
    } as unknown as S3Client;
    const error = await planEtl(
      { s3, rawBucket: aws.names.raw, emit: () => undefined },
      { inputKey: 'raw/dq-big-renamed.csv' },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(SchemaChangeError);
    expect(Buffer.byteLength(text)).toBeGreaterThan(5_000_000);
    expect(bytesRead).toBeGreaterThan(0);
    expect(bytesRead).toBeLessThan(256 * 1024);
  });
});

describe('ETL data-quality metrics and their alarms', () => {
  it('a renamed column raises the schema-change alarm; a good file publishes 0 and keeps it OK', async () => {
    const renamed = await etlOf('raw/dq-renamed.csv', [
      CSV_HEADER.replace('income', 'annual_income'),
      ...records.map(toCsvLine),
    ]);
    expect(renamed.error).toBeInstanceOf(SchemaChangeError);
    expect(stateOf(ALARM_IDS.etlSchemaChange, renamed.emitted)).toBe('ALARM');

    const good = await etlOf('raw/dq-good.csv', [CSV_HEADER, ...records.map(toCsvLine)]);
    expect(good.report).toBeDefined();
    expect(stateOf(ALARM_IDS.etlSchemaChange, good.emitted)).toBe('OK');
    expect(stateOf(unseenCategoryAlarmId('plan'), good.emitted)).toBe('OK');
  });

  it('a new plan value on 5% of the rows raises the plan alarm, not the region one, and the report names it', async () => {
    const lines = records.map((record, i) =>
      toCsvLine(i % 20 === 0 ? { ...record, plan: 'enterprise' } : record),
    );
    const run = await etlOf('raw/dq-new-plan.csv', [CSV_HEADER, ...lines]);
    expect(run.report!.quality.unseenCategories).toEqual({ plan: { enterprise: 20 } });
    expect(stateOf(unseenCategoryAlarmId('plan'), run.emitted)).toBe('ALARM');
    expect(stateOf(unseenCategoryAlarmId('region'), run.emitted)).toBe('OK');
  });
});
