import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import {
  type BatchDeps,
  batchRunSchema,
  completeBatchRun,
  MAX_BATCH_SEGMENTS,
  planBatchRun,
  scoreBatchRunSegment,
} from '#shared/batch/batch.ts';
import { captureSampleRate } from '#shared/inference/predict-environment.ts';
import { metrics } from '#shared/observability.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';

const ctx = pipelineContext();
const deps: BatchDeps = {
  registry: ctx.registry,
  dynamo: ctx.clients.dynamo,
  s3: ctx.clients.s3,
  onlineTable: ctx.names.onlineFeatures,
  outputsBucket: ctx.names.outputs,
  rawBucket: ctx.names.raw,
  // Scored rows are captured for the drift job as the API's predictions are.
  capture: { sampleRate: captureSampleRate() },
};

/**
 * Pins the champion version and splits the work: the online store into parallel-scan segments, or a
 * given raw CSV (`inputKey`) into byte ranges of whole lines.
 */
export const plan = step(
  z.object({
    segments: z.number().int().min(1).max(MAX_BATCH_SEGMENTS).optional(),
    inputKey: z.string().min(1).optional(),
    chunkRows: z.number().int().min(1).optional(),
  }),
  (input) => planBatchRun(deps, { name: ctx.modelName, ...input }),
);

/** Scores one segment (one Distributed Map item); its result goes to S3. */
export const score = step(z.object({ run: batchRunSchema, index: z.number().int().min(0) }), (input) =>
  scoreBatchRunSegment(deps, input.run, input.index),
);

/** Totals over the segments' results (read from S3), manifest and the run's metrics (rows scored, positive rate). */
export const finalize = step(z.object({ run: batchRunSchema }), async (input) => {
  const report = await completeBatchRun(deps, input.run);
  metrics.addMetadata('ModelVersion', report.model.version);
  metrics.addMetric('BatchRowsScored', MetricUnit.Count, report.rows);
  metrics.addMetric('BatchPositiveRate', MetricUnit.NoUnit, report.positiveRate);
  metrics.addMetric('BatchRowsSkipped', MetricUnit.Count, report.skipped);
  metrics.publishStoredMetrics();
  return report;
});
