import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { PREDICT_ROUTES } from '#lib/constructs/predict-api.ts';
import { type ErrorCode, HTTP_STATUS } from '#shared/errors.ts';
import { API_ROUTES, servedFrom } from '#shared/inference/api.ts';
import { openApiDocument, REQUEST_MODELS, requestModelSchema } from '#shared/inference/openapi.ts';
import { resolveRef, validateJson } from '../../support/json-schema.ts';

type Json = Record<string, unknown>;
const SERVER = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1';
const document = openApiDocument(SERVER) as Json & { paths: Record<string, Record<string, Json>> };

function* walk(node: unknown, path = '$'): Generator<[string, Json]> {
  if (typeof node !== 'object' || node === null) return;
  yield [path, node as Json];
  for (const [key, child] of Object.entries(node)) yield* walk(child, `${path}.${key}`);
}

/** Every media type object that has a schema: [where, schema, named examples]. */
function mediaTypes(): [string, Json, Record<string, { value: unknown }>][] {
  return [...walk(document.paths, 'paths')]
    .filter(([path, node]) => path.endsWith('.application/json') && 'schema' in node)
    .map(([path, node]) => [
      path,
      node.schema as Json,
      (node.examples ?? {}) as Record<string, { value: unknown }>,
    ]);
}

/** Status codes of the contract (docs/architecture.md, "Inference API") per route; 403 and 429 are API Gateway's own, in AWS. */
const CONTRACT: Record<string, string[]> = {
  'POST /predict': ['200', '400', '403', '404', '413', '422', '429', '500', '503'],
  'POST /predict/batch': ['200', '400', '403', '413', '429', '500', '503'],
  'GET /health': ['200', '403', '429', '500', '503'],
  'GET /openapi.json': ['200', '403', '429', '500'],
};

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.0 with every route of the router and of API Gateway, and only those', () => {
    expect(document.openapi).toBe('3.0.3');
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual([...API_ROUTES].sort());
    expect(PREDICT_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(documented.sort());
  });

  it('lists every status code and error code of the contract for each route', () => {
    for (const [route, statuses] of Object.entries(CONTRACT)) {
      const [method, path] = route.split(' ') as [string, string];
      const responses = document.paths[path]![method.toLowerCase()]!.responses as Record<string, Json>;
      expect(Object.keys(responses).sort(), route).toEqual(statuses);
    }
    const predict = document.paths['/predict']!.post!.responses as Record<string, Json>;
    const codesOf = (status: string) =>
      Object.keys((predict[status]!.content as Record<string, Json>)['application/json']!.examples as Json);
    expect(codesOf('503').sort()).toEqual(['NoModel', 'Unavailable']);
    expect(codesOf('400')).toEqual(['ValidationError']);
    expect(codesOf('404')).toEqual(['UnknownEntity']);
    expect(codesOf('413')).toEqual(['PayloadTooLarge']);
    expect(codesOf('422')).toEqual(['IncompleteFeatures']);
    expect(codesOf('500')).toEqual(['Internal']);
  });

  it('resolves every $ref', () => {
    const refs = [...walk(document)].filter(([, node]) => typeof node.$ref === 'string');
    expect(refs.length).toBeGreaterThan(10);
    for (const [path, node] of refs)
      expect(() => resolveRef(document, node.$ref as string), path).not.toThrow();
  });

  it('has examples, each valid against its schema', () => {
    const withExamples = mediaTypes().filter(([, , examples]) => Object.keys(examples).length > 0);
    expect(withExamples.length).toBeGreaterThan(15);
    for (const [where, schema, examples] of withExamples) {
      for (const [name, { value }] of Object.entries(examples)) {
        expect(validateJson(document, schema, value), `${where} example ${name}`).toEqual([]);
        // Each contract error example is named by its code and sits under that code's status.
        const status = where.split('.').find((part) => /^\d{3}$/.test(part));
        if (status && status !== '200' && status !== '403' && status !== '429') {
          expect(HTTP_STATUS[name as ErrorCode], `${where} example ${name}`).toBe(Number(status));
          expect((value as { error: Json }).error.code).toBe(name);
        }
      }
    }
  });

  it('request schemas accept and refuse what the handler’s zod schemas do', () => {
    const bodies: [keyof typeof REQUEST_MODELS, unknown][] = [
      ['PredictRequest', { customerId: 'c-000001' }],
      ['PredictRequest', { customerId: 'c-000001', attributes: { age: 40, plan: 'basic', orders: 3 } }],
      ['PredictRequest', { customerId: 'c-000001', attributes: { age: 17 } }],
      ['PredictRequest', { customerId: 'c-000001', attributes: { orders: 2.5 } }],
      ['PredictRequest', { customerId: 'c-000001', attributes: { plan: 'Gold!' } }],
      ['PredictRequest', { customerId: 'c-000001', attributes: { favourite_colour: 'red' } }],
      ['PredictRequest', { customerId: '' }],
      ['PredictRequest', { customerId: 'c-1', extra: 1 }],
      ['PredictRequest', {}],
      ['PredictRequest', []],
      ['BatchPredictRequest', { items: [{ customerId: 'c-1' }, 42] }],
      ['BatchPredictRequest', { items: [] }],
      ['BatchPredictRequest', { items: Array.from({ length: 101 }, () => ({})) }],
      ['BatchPredictRequest', { items: 'c-1' }],
    ];
    let refused = 0;
    for (const [name, body] of bodies) {
      const zodOk = REQUEST_MODELS[name].safeParse(body).success;
      const schemaErrors = validateJson(document, requestModelSchema(name), body);
      expect(schemaErrors.length === 0, `${name} ${JSON.stringify(body).slice(0, 80)}: ${schemaErrors}`).toBe(
        zodOk,
      );
      if (!zodOk) refused++;
    }
    expect(refused).toBe(11);
  });

  it('gives API Gateway draft-4 schemas, the same as the document’s components', () => {
    const components = (document.components as { schemas: Record<string, Json> }).schemas;
    for (const name of Object.keys(REQUEST_MODELS) as (keyof typeof REQUEST_MODELS)[]) {
      const { $schema, ...schema } = requestModelSchema(name);
      expect($schema).toBe('http://json-schema.org/draft-04/schema#');
      expect(schema).toEqual(components[name]);
    }
  });

  it('has one server: the one it is given, where it was served from', () => {
    expect(document.servers).toEqual([{ url: SERVER, description: 'the API that served this document' }]);
  });
});

describe('where the API was reached (the document’s server)', () => {
  /** The request context fields API Gateway (REST, Lambda proxy) sets that say where the client called. */
  const event = (context: { domainName?: string; path: string }, headers: Record<string, string> = {}) =>
    ({
      path: '/openapi.json',
      headers,
      requestContext: { ...context, resourcePath: '/openapi.json', stage: 'v1' },
    }) as unknown as APIGatewayProxyEvent;

  it('is the stage URL behind API Gateway: https, its domain, the stage before the route', () => {
    const domainName = 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';
    const headers = { Host: domainName, 'X-Forwarded-Proto': 'https' };
    expect(servedFrom(event({ domainName, path: '/v1/openapi.json' }, headers))).toBe(SERVER);
    expect(servedFrom(event({ domainName, path: '/v1/openapi.json/' }, headers))).toBe(SERVER);
  });

  it('is the host the client named on a plain local server', () => {
    expect(servedFrom(event({ path: '/openapi.json' }, { host: '127.0.0.1:3100' }))).toBe(
      'http://127.0.0.1:3100',
    );
    expect(servedFrom(event({ domainName: '[::1]:3100', path: '/openapi.json' }))).toBe('http://[::1]:3100');
  });

  it('is relative (/) without a usable host', () => {
    expect(servedFrom(event({ path: '/openapi.json' }))).toBe('/');
    expect(servedFrom(event({ path: '/openapi.json' }, { host: 'a b/c' }))).toBe('/');
  });
});
