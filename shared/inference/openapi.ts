import { z } from 'zod';
import { type ErrorCode, HTTP_STATUS } from '#shared/errors.ts';
import { errorBodySchema } from '#shared/http/responses.ts';
import { DEFAULT_MODEL_NAME } from '#shared/registry/metadata.ts';
import {
  batchRequestSchema,
  batchResponseSchema,
  healthResponseSchema,
  MAX_BATCH_ITEMS,
  predictRequestSchema,
  predictResponseSchema,
} from './schemas.ts';

/**
 * The OpenAPI 3.0 document of the inference API (docs/architecture.md, "Inference API"), generated from the zod
 * schemas the handler validates with, so the document cannot drift from the code. Request bodies are
 * JSON Schema draft 4, the dialect of API Gateway models: the same objects become the REST API's
 * request models (lib/constructs/predict-api.ts), so the document, the gateway and the handler agree.
 */
export type JsonSchema = Record<string, unknown>;

export const REQUEST_MODELS = {
  PredictRequest: predictRequestSchema,
  BatchPredictRequest: batchRequestSchema,
} as const;
export type RequestModelName = keyof typeof REQUEST_MODELS;

const DRAFT4 = 'http://json-schema.org/draft-04/schema#';

/** The draft-4 JSON schema of a request body, as API Gateway takes it (with `$schema`). */
export function requestModelSchema(name: RequestModelName): JsonSchema {
  return z.toJSONSchema(REQUEST_MODELS[name], { target: 'draft-4', io: 'input' }) as JsonSchema;
}

/** A component schema: draft 4 without `$schema`, which OpenAPI 3.0 schema objects do not take. */
function component(schema: JsonSchema): JsonSchema {
  const { $schema, ...rest } = schema;
  if ($schema !== undefined && $schema !== DRAFT4)
    throw new Error(`unexpected JSON Schema dialect ${$schema}`);
  return rest;
}

const responseSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'openapi-3.0' }) as JsonSchema;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema, examples?: Record<string, { summary?: string; value: unknown }>) => ({
  'application/json': { schema, ...(examples ? { examples } : {}) },
});

/** What each error code means on this API (docs/architecture.md, "Inference API"), with an example body. */
const ERROR_EXAMPLES: Record<Exclude<ErrorCode, 'Conflict'>, { summary: string; value: unknown }> = {
  ValidationError: {
    summary: 'the body is invalid; details list every bad field by path',
    value: {
      error: {
        code: 'ValidationError',
        message: 'the request body is invalid',
        details: [{ path: 'attributes.age', message: 'Too small: expected number to be >=18' }],
      },
    },
  },
  UnknownEntity: {
    summary: 'the customer is not in the online store and no attributes were given',
    value: {
      error: {
        code: 'UnknownEntity',
        message: 'customer c-999999 is not in the online store; send its fields in "attributes"',
      },
    },
  },
  PayloadTooLarge: {
    summary: 'the body is over the size limit',
    value: {
      error: { code: 'PayloadTooLarge', message: 'the body has 2000000 bytes; the limit is 1048576' },
    },
  },
  IncompleteFeatures: {
    summary: 'fields the answering model’s features need are missing; the message names them',
    value: {
      error: {
        code: 'IncompleteFeatures',
        message: 'missing fields for c-000123: income, plan (required by feature set 1.0.0)',
        details: { missing: ['income', 'plan'] },
      },
    },
  },
  NoModel: {
    summary: 'no model is promoted yet',
    value: {
      error: { code: 'NoModel', message: 'no churn model is promoted yet: train one and promote it' },
    },
  },
  Unavailable: {
    summary: 'a dependency is down; retry (see Retry-After)',
    value: { error: { code: 'Unavailable', message: 'the online store did not answer' } },
  },
  Internal: {
    summary: 'an unexpected error; no internals are returned',
    value: {
      error: { code: 'Internal', message: 'internal error (request 7c1e2a40-0000-4000-8000-000000000000)' },
    },
  },
};

/** Errors API Gateway itself answers in AWS, before the handler runs (the same error body). */
const GATEWAY_ERRORS = {
  '403': {
    summary: 'AWS only: the request is not signed (SigV4) by a principal allowed to invoke the API',
    value: { error: { code: 'MISSING_AUTHENTICATION_TOKEN', message: 'Missing Authentication Token' } },
  },
  '429': {
    summary: 'AWS only: the stage or usage-plan throttle was exceeded',
    value: { error: { code: 'THROTTLED', message: 'Too Many Requests' } },
  },
} as const;

function errorResponses(codes: readonly Exclude<ErrorCode, 'Conflict'>[]) {
  const byStatus = new Map<number, typeof codes extends readonly (infer C)[] ? C[] : never>();
  for (const code of codes)
    byStatus.set(HTTP_STATUS[code], [...(byStatus.get(HTTP_STATUS[code]) ?? []), code]);
  const responses: Record<string, unknown> = {};
  for (const [status, group] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: group.join(' or '),
      ...(status === 503 ? { headers: { 'Retry-After': { schema: { type: 'integer' } } } } : {}),
      content: json(ref('ErrorBody'), Object.fromEntries(group.map((code) => [code, ERROR_EXAMPLES[code]]))),
    };
  }
  for (const [status, example] of Object.entries(GATEWAY_ERRORS)) {
    responses[status] = {
      description: example.summary,
      content: json(ref('ErrorBody'), { [status === '403' ? 'Unauthorized' : 'Throttled']: example }),
    };
  }
  return responses;
}

const MODEL_EXAMPLE = { name: DEFAULT_MODEL_NAME, version: 'v3' };

const PREDICT_EXAMPLE = {
  customerId: 'c-000123',
  prediction: 1,
  probability: 0.81,
  model: { ...MODEL_EXAMPLE, variant: 'champion' },
  featureSet: { version: '1.0.0', fingerprint: `sha256:${'0'.repeat(64)}` },
  requestId: '7c1e2a40-0000-4000-8000-000000000000',
};

const PREDICT_REQUEST_EXAMPLES = {
  stored: { summary: 'a customer in the online store', value: { customerId: 'c-000123' } },
  override: {
    summary: 'stored fields overridden by attributes',
    value: { customerId: 'c-000123', attributes: { plan: 'premium', support_tickets_90d: 4 } },
  },
};

/**
 * Builds the document (a fresh object each call) for the API at `serverUrl`: its one server is the one
 * that serves it, so a client generated from it calls that API (the handler passes where it was reached).
 */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'Keel inference API',
      version: '1',
      description:
        'Churn predictions from the champion model of the Keel registry. Locally served by `keel up` ' +
        'without authentication; in AWS every request is signed with SigV4 (IAM).',
    },
    servers: [{ url: serverUrl, description: 'the API that served this document' }],
    security: [{ sigv4: [] }],
    paths: {
      '/predict': {
        post: {
          operationId: 'predict',
          summary: 'Churn prediction for one customer',
          requestBody: { required: true, content: json(ref('PredictRequest'), PREDICT_REQUEST_EXAMPLES) },
          responses: {
            '200': {
              description: 'the prediction, with the model version and feature set that made it',
              content: json(ref('PredictResponse'), { prediction: { value: PREDICT_EXAMPLE } }),
            },
            ...errorResponses([
              'ValidationError',
              'UnknownEntity',
              'PayloadTooLarge',
              'IncompleteFeatures',
              'Internal',
              'NoModel',
              'Unavailable',
            ]),
          },
        },
      },
      '/predict/batch': {
        post: {
          operationId: 'predictBatch',
          summary: `Predictions for 1 to ${MAX_BATCH_ITEMS} customers; a bad item gets an error in its place`,
          requestBody: {
            required: true,
            content: json(ref('BatchPredictRequest'), {
              two: { value: { items: [{ customerId: 'c-000123' }, { customerId: 'c-000124' }] } },
            }),
          },
          responses: {
            '200': {
              description: 'one result per item, in order: a prediction or an error body',
              content: json(ref('BatchPredictResponse'), {
                mixed: {
                  value: {
                    results: [
                      PREDICT_EXAMPLE,
                      {
                        error: {
                          code: 'UnknownEntity',
                          message: 'customer c-000124 is not in the online store',
                        },
                      },
                    ],
                  },
                },
              }),
            },
            ...errorResponses(['ValidationError', 'PayloadTooLarge', 'Internal', 'NoModel', 'Unavailable']),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Whether a model is loaded, and which',
          responses: {
            '200': {
              description: 'a champion is loaded',
              content: json(ref('HealthResponse'), {
                ok: { value: { status: 'ok', model: MODEL_EXAMPLE } },
              }),
            },
            ...errorResponses(['Internal', 'NoModel', 'Unavailable']),
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          responses: {
            '200': { description: 'the OpenAPI 3.0 document', content: json({ type: 'object' }) },
            ...errorResponses(['Internal']),
          },
        },
      },
    },
    components: {
      schemas: {
        PredictRequest: component(requestModelSchema('PredictRequest')),
        BatchPredictRequest: component(requestModelSchema('BatchPredictRequest')),
        PredictResponse: responseSchema(predictResponseSchema),
        BatchPredictResponse: responseSchema(batchResponseSchema),
        HealthResponse: responseSchema(healthResponseSchema),
        ErrorBody: responseSchema(errorBodySchema),
      },
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description: 'AWS Signature Version 4 (IAM); not checked by the local platform',
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
    },
  };
}
