import { z } from 'zod';
import { attributesSchema, customerIdSchema } from '#shared/features/index.ts';
import { errorBodySchema } from '#shared/http/responses.ts';

/**
 * The inference API's bodies (docs/architecture.md, "Contracts"), as zod schemas: the handler validates with them and the
 * OpenAPI document is generated from them. Unknown keys are rejected, naming the key.
 */
export const MAX_BATCH_ITEMS = 100;

export const predictRequestSchema = z
  .strictObject({
    customerId: customerIdSchema,
    attributes: attributesSchema.optional(),
  })
  .check((ctx) => {
    const named = ctx.value.attributes?.customer_id;
    if (named !== undefined && named !== ctx.value.customerId) {
      ctx.issues.push({
        code: 'custom',
        input: named,
        path: ['attributes', 'customer_id'],
        message: `names another customer than customerId (${ctx.value.customerId})`,
      });
    }
  });
export type PredictRequest = z.infer<typeof predictRequestSchema>;

/** Items are validated one by one, so one bad item becomes one `{error}` result, not a failed batch. */
export const batchRequestSchema = z.strictObject({
  items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS),
});

export const modelRefSchema = z.object({ name: z.string(), version: z.string() });

/**
 * The model that answered: its version, and which side of a rollout it is (`champion`, or `canary`
 * for a canary challenger; a shadow never answers). Always `champion` when no rollout runs.
 */
export const answeringModelSchema = modelRefSchema.extend({ variant: z.enum(['champion', 'canary']) });

export const predictResponseSchema = z.object({
  customerId: z.string(),
  prediction: z.union([z.literal(0), z.literal(1)]),
  probability: z.number().min(0).max(1),
  model: answeringModelSchema,
  featureSet: z.object({ version: z.string(), fingerprint: z.string() }),
  requestId: z.string(),
  /** Present only when something about the input deserves attention (stale record, imputed or unseen values). */
  warnings: z.array(z.string()).optional(),
});
export type PredictResponse = z.infer<typeof predictResponseSchema>;

export const batchResponseSchema = z.object({
  results: z.array(z.union([predictResponseSchema, errorBodySchema])),
});

export const healthResponseSchema = z.object({
  status: z.literal('ok'),
  model: modelRefSchema,
  /** Present while this process serves a rollout's challenger beside the champion. */
  rollout: z
    .object({
      id: z.string(),
      mode: z.enum(['shadow', 'canary']),
      version: z.string(),
      percent: z.number().nullable(),
    })
    .optional(),
});
export type HealthResponse = z.infer<typeof healthResponseSchema>;
