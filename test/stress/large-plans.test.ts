import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import type { BatchRunSummary } from '#shared/batch/batch.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { type EtlRunSummary, MAX_ETL_CHUNKS } from '#shared/etl/etl.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';

/**
 * The pipelines at plan sizes where their state used to outgrow Step Functions' 256 KiB (the ETL at
 * ~760–965 chunks, batch scoring at ~1,225 segments), through the local runner, which fails a state
 * over 256 KiB with States.DataLimitExceeded as Step Functions does (before the fix, both runs failed so).
 * Small rows keep the runs short: the state's size depends on the number of chunks and segments, not on
 * the rows in each. Batch scoring's largest plan (10,000 segments) takes too long here: 2,500, twice the
 * old limit, runs locally; test/unit/pipelines/state-sizes.test.ts measures 10,000.
 */
let aws: TestAws;
let runner: PipelineRunner;
/** One row a chunk: the largest ETL plan there may be. */
const ROWS = MAX_ETL_CHUNKS;
const SEGMENTS = 2_500;
const customers = [...generateRecords({ rows: ROWS, seed: 53, asOf: new Date() })];

beforeAll(async () => {
  aws = await startTestAws();
  runner = await createPipelineRunner({ home: aws.home, target: aws.target, names: aws.names });
}, 120_000);
afterAll(async () => {
  await aws?.close();
});

/** The largest output of each task state of a run (the plan step's is what grew with the plan). */
function largestOutputs() {
  const sizes = new Map<string, number>();
  const onTaskDone = (state: string, output: unknown) =>
    sizes.set(state, Math.max(sizes.get(state) ?? 0, Buffer.byteLength(JSON.stringify(output ?? null))));
  return { sizes, onTaskDone };
}

describe('plans past the old limits', () => {
  it('ETL: the most chunks a plan may have (2,000 of one row) SUCCEEDS and stores every row once', async () => {
    const inputKey = 'raw/20261201T000000Z-large-plan.csv';
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: aws.names.raw,
        Key: inputKey,
        Body: `${[CSV_HEADER, ...customers.map(toCsvLine)].join('\n')}\n`,
      }),
    );
    const { sizes, onTaskDone } = largestOutputs();
    const run = await runner.run<EtlRunSummary>('etl', { inputKey, chunkRows: 1 }, onTaskDone);
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({
      rowsRead: ROWS,
      valid: ROWS,
      onlineWritten: ROWS,
      featurePartCount: ROWS,
    });
    // The chunk numbers, not the chunks: about 7 bytes each.
    expect(sizes.get(PIPELINES.etl.states.plan)).toBeLessThan(16 * 1024);
  }, 600_000);

  it('batch scoring: 2,500 segments of the store SUCCEED and score every customer once', async () => {
    const { version } = await registerTrainedModel(aws, customers, { seed: 5, nTrees: 5 });
    await promoteVersion(aws, version);
    const { sizes, onTaskDone } = largestOutputs();
    const run = await runner.run<BatchRunSummary>('batch', { segments: SEGMENTS }, onTaskDone);
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({ rows: ROWS, partCount: SEGMENTS });
    expect(sizes.get(PIPELINES.batch.states.plan)).toBeLessThan(16 * 1024);
  }, 900_000);
});
