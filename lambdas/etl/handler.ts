import { z } from 'zod';
import { ETL_MAX_BAD_ROW_SHARE_ENV } from '#shared/config/keel-config.ts';
import { numberEnv } from '#shared/env.ts';
import { ValidationError } from '#shared/errors.ts';
import { completeEtl, type EtlDeps, newestRawKey, planEtl, processEtlChunk } from '#shared/etl/etl.ts';
import { pipelineContext } from '#shared/pipelines/config.ts';
import { step } from '#shared/pipelines/step.ts';

const ctx = pipelineContext();
const deps: EtlDeps = {
  s3: ctx.clients.s3,
  dynamo: ctx.clients.dynamo,
  rawBucket: ctx.names.raw,
  featuresBucket: ctx.names.features,
  onlineTable: ctx.names.onlineFeatures,
};

const chunkSchema = z.object({
  index: z.number().int().min(0),
  start: z.number().int().min(0),
  end: z.number().int().min(0),
  firstRow: z.number().int().min(1),
  rows: z.number().int().min(0),
});
const planSchema = z.object({
  inputKey: z.string().min(1),
  runDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  header: z.string().min(1),
  labeled: z.boolean(),
  totalRows: z.number().int().min(0),
  featurePrefix: z.string().min(1),
});
const chunkResultSchema = z.object({
  index: z.number().int(),
  rows: z.number().int(),
  valid: z.number().int(),
  quarantined: z.number().int(),
  onlineWritten: z.number().int(),
  featureKey: z.string(),
  quarantineKey: z.string().nullable(),
});

/** Plan: the input key (default: the newest raw file) cut into row chunks for the Map state. */
export const plan = step(
  z.object({
    inputKey: z.string().min(1).optional(),
    runDate: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional(),
    chunkRows: z.number().int().min(1).optional(),
  }),
  async (input) => {
    const inputKey = input.inputKey ?? (await newestRawKey(deps.s3, deps.rawBucket));
    if (!inputKey) {
      throw new ValidationError('the raw bucket has no CSV file to process', [
        { path: 'inputKey', message: 'none found' },
      ]);
    }
    return planEtl(deps, { ...input, inputKey });
  },
);

/** One chunk: validate, quarantine, features part, online store. */
export const chunk = step(z.object({ plan: planSchema, chunk: chunkSchema }), (input) =>
  processEtlChunk(deps, input.plan, input.chunk),
);

/** The stage's share (its config's etl.maxBadRowShare), for runs whose input sets none. */
const stageMaxBadRowShare = numberEnv(ETL_MAX_BAD_ROW_SHARE_ENV, { min: 0, max: 1 });

/** Totals and checks; fails the execution when rows were lost or too many were bad, else marks the dataset complete. */
export const finalize = step(
  z.object({
    plan: planSchema,
    results: z.array(chunkResultSchema),
    maxBadRowShare: z.number().min(0).max(1).optional(),
  }),
  (input) => completeEtl(deps, input.plan, input.results, input.maxBadRowShare ?? stageMaxBadRowShare),
);
