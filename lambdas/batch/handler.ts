import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import {
  type BatchDeps,
  type BatchPlan,
  finalizeBatch,
  planBatch,
  scoreSegment,
} from '#shared/batch/batch.ts';
import { captureSampleRate } from '#shared/inference/config.ts';
import { metrics } from '#shared/observability.ts';
import { pipelineContext } from '#shared/pipelines/config.ts';
import { step } from '#shared/pipelines/step.ts';

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

const segmentSchema = z.object({
  segment: z.number().int().min(0),
  start: z.number().int().min(0).optional(),
  end: z.number().int().min(0).optional(),
  firstRow: z.number().int().min(1).optional(),
});

const planSchema = z.object({
  runId: z.string().min(1),
  runDate: z.string(),
  model: z.object({ name: z.string(), version: z.string(), threshold: z.number() }),
  outputPrefix: z.string().min(1),
  totalSegments: z.number().int().min(1).max(1_000_000),
  segments: z.array(segmentSchema),
  input: z.object({ key: z.string().min(1), header: z.string().min(1), labeled: z.boolean() }).optional(),
});

/**
 * Pins the champion version and splits the work: the online store into parallel-scan segments, or a
 * given raw CSV (`inputKey`) into byte ranges of whole lines.
 */
export const plan = step(
  z.object({
    segments: z.number().int().min(1).max(10_000).optional(),
    inputKey: z.string().min(1).optional(),
    chunkRows: z.number().int().min(1).optional(),
  }),
  (input) => planBatch(deps, { name: ctx.modelName, ...input }),
);

/** Scores one segment (one Distributed Map item). */
export const score = step(
  z.object({ plan: planSchema.omit({ segments: true }), segment: segmentSchema }),
  (input) => scoreSegment(deps, { ...input.plan, segments: [] } as BatchPlan, input.segment),
);

/** Totals, manifest and the run's metrics (rows scored, positive rate). */
export const finalize = step(
  z.object({
    plan: planSchema,
    results: z.array(
      z.object({
        segment: z.number().int(),
        rows: z.number().int(),
        positives: z.number().int(),
        skipped: z.number().int(),
        key: z.string(),
      }),
    ),
  }),
  async (input) => {
    const report = await finalizeBatch(deps, input.plan, input.results);
    metrics.addMetadata('ModelVersion', report.model.version);
    metrics.addMetric('BatchRowsScored', MetricUnit.Count, report.rows);
    metrics.addMetric('BatchPositiveRate', MetricUnit.NoUnit, report.positiveRate);
    metrics.addMetric('BatchRowsSkipped', MetricUnit.Count, report.skipped);
    metrics.publishStoredMetrics();
    return report;
  },
);
