import { z } from 'zod';
import { KEEL_ENV, numberEnv } from '#shared/env.ts';
import { ValidationError } from '#shared/errors.ts';
import {
  completeEtlRun,
  type EtlDeps,
  etlRunSchema,
  newestRawKey,
  planEtlRun,
  processEtlRunChunk,
} from '#shared/etl/etl.ts';
import { step } from '#shared/pipelines/step.ts';
import { pipelineContext } from '#shared/pipelines/task-context.ts';

const ctx = pipelineContext();
const deps: EtlDeps = {
  s3: ctx.clients.s3,
  dynamo: ctx.clients.dynamo,
  rawBucket: ctx.names.raw,
  featuresBucket: ctx.names.features,
  onlineTable: ctx.names.onlineFeatures,
};

/**
 * Plan: the input key (default: the newest raw file) cut into row chunks; the plan goes to S3, the Map
 * state gets the chunk numbers.
 */
export const plan = step(
  z.object({
    inputKey: z.string().min(1).optional(),
    runDate: etlRunSchema.shape.runDate.optional(),
    chunkRows: z.number().int().min(1).optional(),
  }),
  async (input) => {
    const inputKey = input.inputKey ?? (await newestRawKey(deps.s3, deps.rawBucket));
    if (!inputKey) {
      throw new ValidationError('the raw bucket has no CSV file to process', [
        { path: 'inputKey', message: 'none found' },
      ]);
    }
    return planEtlRun(deps, { ...input, inputKey });
  },
);

/** One chunk: validate, quarantine, its part of the offline records, online store; its result goes to S3. */
export const chunk = step(z.object({ run: etlRunSchema, index: z.number().int().min(0) }), (input) =>
  processEtlRunChunk(deps, input.run, input.index),
);

/** The stage's share (its config's etl.maxBadRowShare), for runs whose input sets none. */
const stageMaxBadRowShare = numberEnv(KEEL_ENV.etlMaxBadRowShare, { min: 0, max: 1 });

/**
 * Totals and checks over the chunks' results (read from S3); fails the execution when rows were lost or
 * too many were bad, else records the fields loaded (online-store/fields.json) and marks the dataset
 * complete.
 */
export const finalize = step(
  z.object({
    plan: z.object({ run: etlRunSchema }),
    maxBadRowShare: z.number().min(0).max(1).optional(),
  }),
  (input) => completeEtlRun(deps, input.plan.run, input.maxBadRowShare ?? stageMaxBadRowShare),
);
