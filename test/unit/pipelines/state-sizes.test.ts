import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { StateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import '#local/promise-polyfill.ts';
import { loadLocalDeployment } from '#local/deployment/deployment.ts';
import { pipelineDefinitions } from '#local/pipelines.ts';
import { type AslDefinition, inlineDistributedMaps } from '#local/state-machines.ts';
import {
  type BatchPlan,
  batchRunOf,
  finalizeBatch,
  MAX_BATCH_SEGMENTS,
  type SegmentResult,
  summarizeBatchReport,
} from '#shared/batch/batch.ts';
import {
  countFieldIssues,
  countUnseenCategories,
  type DataQuality,
  emptyDataQuality,
} from '#shared/etl/data-quality.ts';
import {
  type EtlChunkResult,
  etlRunOf,
  finalizeEtl,
  MAX_ETL_CHUNKS,
  planEtl,
  summarizeEtlReport,
  TooManyChunksError,
} from '#shared/etl/etl.ts';
import { CSV_COLUMNS, CSV_HEADER } from '#shared/features/index.ts';
import { PIPELINES, type PipelineName } from '#shared/pipelines/definitions.ts';

/**
 * Step Functions refuses any state input or output, Map item input or collected Map result over
 * 256 KiB (States.DataLimitExceeded, which no Catch can handle). The largest plans the planners accept
 * are run through the synthesized definitions, each task answering what its step returns at that size,
 * and every piece of state data is measured as Step Functions measures it (UTF-8 bytes of the JSON).
 */
const LIMIT = 256 * 1024;
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value ?? null));

/**
 * The largest data-quality counts a chunk can report: every field failed with three long example values, and
 * more unseen values (of the longest a category may be) than are kept.
 */
function worstQuality(chunk: number): DataQuality {
  const quality = emptyDataQuality();
  const issues = CSV_COLUMNS.map((path) => ({ path, message: `${path}: ${'a long reason '.repeat(8)}` }));
  for (let example = 0; example < 5; example++) {
    const row = Object.fromEntries(CSV_COLUMNS.map((column) => [column, `${example}${'x'.repeat(200)}`]));
    countFieldIssues(quality, issues, row);
  }
  for (let value = 0; value < 25; value++) {
    const category = `${chunk}-${value}-`.padEnd(32, 'v');
    countUnseenCategories(quality, { plan: category, region: category });
  }
  return quality;
}

let definitions: Record<PipelineName, AslDefinition>;
beforeAll(async () => {
  definitions = pipelineDefinitions(await loadLocalDeployment());
}, 120_000);

/** A raw file of `rows` lines of `lineBytes` each (a 100M-row file is ~10 GB: offsets of 11 digits). */
function rawFile(rows: number, lineBytes: number): S3Client {
  const line = Buffer.alloc(lineBytes, 'x');
  line[lineBytes - 1] = 0x0a;
  return {
    send: async () => ({
      Body: Readable.from(
        (function* () {
          yield Buffer.from(`${CSV_HEADER}\n`);
          for (let i = 0; i < rows; i++) yield line;
        })(),
      ),
    }),
  } as unknown as S3Client;
}

type StateEvent = {
  type: string;
  index?: number;
  state: { name: string; input: unknown; output?: unknown };
  Error?: string;
  Cause?: unknown;
};

/** Runs `pipeline`'s definition with each task answering `answers[state](input)`; returns every measured piece. */
async function measure(
  pipeline: PipelineName,
  input: Record<string, unknown>,
  answers: Record<string, (input: Record<string, unknown>) => unknown>,
): Promise<Map<string, number>> {
  const largest = new Map<string, number>();
  const note = (what: string, value: unknown) =>
    largest.set(what, Math.max(largest.get(what) ?? 0, bytes(value)));
  const machine = new StateMachine(inlineDistributedMaps(definitions[pipeline]) as never, {
    validationOptions: { checkArn: false },
  });
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries(
        Object.entries(answers).map(([state, answer]) => [
          state,
          async (taskInput: unknown) => {
            note(`${state}: task input`, taskInput);
            const output = answer(taskInput as Record<string, unknown>);
            note(`${state}: task result`, output);
            return output as never;
          },
        ]),
      ),
    },
  });
  const iterationOutputs = new Map<string, unknown[]>();
  const collect = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<StateEvent>) {
      if (event.type === 'StateEntered') note(`${event.state.name}: input`, event.state.input);
      if (event.type === 'StateExited') {
        note(`${event.state.name}: output`, event.state.output);
        if (event.index !== undefined) {
          const outputs = iterationOutputs.get(event.state.name) ?? [];
          outputs[event.index] = event.state.output;
          iterationOutputs.set(event.state.name, outputs);
        }
      }
      if (event.type === 'ExecutionFailed') throw new Error(`${event.Error}: ${String(event.Cause)}`);
    }
  })();
  await execution.result;
  await collect;
  // What a Map collects before its ResultPath: the output of each item's last state (Keel's item processors
  // have one state each).
  for (const [state, outputs] of iterationOutputs) note(`${state}: outputs collected by its Map`, outputs);
  return largest;
}

function expectAllUnderLimit(sizes: Map<string, number>) {
  const over = [...sizes].filter(([, size]) => size >= LIMIT).map(([what, size]) => `${what}: ${size} B`);
  expect(over).toEqual([]);
}

describe('the planners’ maxima', () => {
  it('are explicit: 2,000 ETL chunks (the capacity plan needs 1,000) and 10,000 batch segments', () => {
    expect(MAX_ETL_CHUNKS).toBe(2_000);
    expect(MAX_BATCH_SEGMENTS).toBe(10_000);
  });

  it('refuse a plan with more chunks than that, saying which chunkRows would do', async () => {
    const deps = { s3: rawFile(MAX_ETL_CHUNKS + 1, 10), rawBucket: 'raw' };
    const error = await planEtl(deps, { inputKey: 'raw/x.csv', chunkRows: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooManyChunksError);
    expect((error as Error).message).toMatch(
      /2001 chunks of 1, more than the 2000 a run may have; give chunkRows of at least 2/,
    );
    const plan = await planEtl(
      { s3: rawFile(MAX_ETL_CHUNKS, 10), rawBucket: 'raw' },
      { inputKey: 'raw/x.csv', chunkRows: 1 },
    );
    expect(plan.chunks).toHaveLength(MAX_ETL_CHUNKS);
  });
});

describe('state data at the largest plans stays under 256 KiB', () => {
  it('ETL: plan, each chunk item, the Map result and finalize at 2,000 chunks of a 10 GB file', async () => {
    const plan = await planEtl(
      { s3: rawFile(MAX_ETL_CHUNKS, 5_000_000), rawBucket: 'raw' },
      { inputKey: 'raw/20261201T000000Z-customers-100000000.csv', chunkRows: 1, runDate: '2026-12-01' },
    );
    expect(plan.chunks.at(-1)!.end).toBeGreaterThan(9_999_999_999);
    const runPlan = etlRunOf(plan);
    // Every chunk quarantined rows: the longest report there can be.
    const results: EtlChunkResult[] = plan.chunks.map((chunk) => ({
      index: chunk.index,
      rows: chunk.rows,
      valid: 0,
      quarantined: chunk.rows,
      onlineWritten: 0,
      featureKey: `${plan.featurePrefix}part-${String(chunk.index).padStart(5, '0')}.csv`,
      quarantineKey: `quarantine/run_date=2026-12-01/x/part-${String(chunk.index).padStart(5, '0')}.jsonl`,
      quality: worstQuality(chunk.index),
      imputed: { support_tickets_90d: chunk.rows },
    }));
    const report = finalizeEtl(plan, results, { maxBadRowShare: 1, featuresBucket: 'features' });
    expect(bytes(report)).toBeGreaterThan(LIMIT); // what the dataset's manifest holds, not the state
    const s = PIPELINES.etl.states;
    const sizes = await measure(
      'etl',
      { inputKey: plan.inputKey, chunkRows: 1 },
      {
        [s.plan]: () => runPlan,
        [s.chunk]: (input) => results[input.index as number],
        [s.finalize]: () => summarizeEtlReport(report),
      },
    );
    expect(sizes.get(`${s.chunk}: outputs collected by its Map`)).toBeGreaterThan(0);
    expect(sizes.get(`${s.chunk}: input`)).toBeGreaterThan(0);
    expectAllUnderLimit(sizes);
  }, 120_000);

  it('batch scoring: plan, each segment item, the Map result and finalize at 10,000 byte ranges of a file', async () => {
    const runId = '20261201T020000Z-0a1b2c3d';
    const outputPrefix = `predictions/run_date=2026-12-01/${runId}/`;
    const plan: BatchPlan = {
      runId,
      runDate: '2026-12-01',
      model: { name: 'churn', version: 'v12345', threshold: 0.123456789 },
      featureSet: { version: '12.345.678-with-a-long-name', fingerprint: `sha256:${'f'.repeat(64)}` },
      outputPrefix,
      totalSegments: MAX_BATCH_SEGMENTS,
      segments: Array.from({ length: MAX_BATCH_SEGMENTS }, (_, segment) => ({
        segment,
        start: 10_000_000_000 + segment * 1_000_000,
        end: 10_000_000_000 + (segment + 1) * 1_000_000,
        firstRow: segment * 10_000 + 1,
      })),
      input: { key: 'raw/20261201T000000Z-customers-100000000.csv', header: CSV_HEADER, labeled: false },
    };
    const runPlan = batchRunOf(plan);
    const results: SegmentResult[] = plan.segments.map(({ segment }) => ({
      segment,
      rows: 10_000,
      positives: 1_234,
      skipped: 12,
      key: `${outputPrefix}part-${String(segment).padStart(5, '0')}.csv`,
    }));
    const report = await finalizeBatch(
      { s3: { send: async () => ({}) } as unknown as S3Client, outputsBucket: 'outputs' },
      plan,
      results,
    );
    expect(bytes(report)).toBeGreaterThan(LIMIT); // what the run's manifest holds, not the state
    const s = PIPELINES.batch.states;
    const sizes = await measure(
      'batch',
      { inputKey: plan.input!.key },
      {
        [s.plan]: () => runPlan,
        [s.score]: (input) => results[input.index as number],
        [s.finalize]: () => summarizeBatchReport(report),
      },
    );
    expect(sizes.get(`${s.score}: outputs collected by its Map`)).toBeGreaterThan(0);
    expectAllUnderLimit(sizes);
  }, 300_000);
});
