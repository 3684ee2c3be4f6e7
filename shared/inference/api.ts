import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { UnknownEntityError } from '#shared/errors.ts';
import { errorBody, jsonResponse, parseJsonBody } from '#shared/http/responses.ts';
import { openApiDocument } from './openapi.ts';
import { health, type InferenceDeps, type Prediction, predictBatch, predictOne } from './service.ts';

/** What the API reports to metrics and logs for each request, beside its response. */
export interface Observer {
  prediction(prediction: Prediction): void;
}

type Route = (
  event: APIGatewayProxyEvent,
  deps: InferenceDeps,
  requestId: string,
  observer: Observer,
) => Promise<APIGatewayProxyResult>;

/** Built on first request, not at init: most cold starts never serve it; kept for the server it names. */
let openApiJson: { server: string; json: string } | undefined;

/** A host as the Host header or API Gateway's domain names it: name or address, and port. */
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  for (const [key, value] of Object.entries(event.headers ?? {}))
    if (key.toLowerCase() === name && value) return value.split(',')[0]!.trim();
  return undefined;
}

/**
 * The base URL the client reached this API at, for the document's `servers`: API Gateway's domain and
 * the path before the route (the stage, `/v1`; empty locally), over the scheme the client used (API
 * Gateway says https in X-Forwarded-Proto; the local server is plain http). Without a usable host the
 * URL is `/`, which OpenAPI resolves against where the document was fetched.
 */
export function servedFrom(event: APIGatewayProxyEvent): string {
  // Typed as always there, but a hand-made event (a test's, a console invoke) may lack them.
  const context: Partial<APIGatewayProxyEvent['requestContext']> = event.requestContext ?? {};
  const host = context.domainName ?? header(event, 'host');
  if (!host || !HOST.test(host)) return '/';
  const scheme = header(event, 'x-forwarded-proto') === 'https' ? 'https' : 'http';
  const route = context.resourcePath ?? event.resource ?? '';
  const path = (context.path ?? '').replace(/(.)\/+$/, '$1');
  const base = route && path.endsWith(route) ? path.slice(0, path.length - route.length) : '';
  return `${scheme}://${host}${base}`;
}

const ROUTES: Record<string, Route> = {
  'POST /predict': async (event, deps, requestId, observer) => {
    const prediction = await predictOne(deps, parseJsonBody(event.body, event.isBase64Encoded), requestId);
    observer.prediction(prediction);
    return jsonResponse(200, prediction.body);
  },
  'POST /predict/batch': async (event, deps, requestId, observer) => {
    const results = await predictBatch(deps, parseJsonBody(event.body, event.isBase64Encoded), requestId);
    return jsonResponse(200, {
      results: results.map((result) => {
        // A failed item gets the body its error would get as a whole response.
        if (!result.ok) return errorBody(result.error, requestId).body;
        observer.prediction(result.prediction);
        return result.prediction.body;
      }),
    });
  },
  'GET /health': async (_event, deps) => jsonResponse(200, await health(deps)),
  'GET /openapi.json': async (event) => {
    const server = servedFrom(event);
    if (openApiJson?.server !== server)
      openApiJson = { server, json: JSON.stringify(openApiDocument(server)) };
    return { ...jsonResponse(200, null), body: openApiJson.json };
  },
};

export const API_ROUTES = Object.keys(ROUTES);

/** Routes an API Gateway proxy event; errors propagate to the one error mapping (see httpErrors). */
export async function routeApiRequest(
  event: APIGatewayProxyEvent,
  deps: InferenceDeps,
  requestId: string,
  observer: Observer,
): Promise<APIGatewayProxyResult> {
  const path = event.path.length > 1 ? event.path.replace(/\/+$/, '') : event.path;
  const route = ROUTES[`${event.httpMethod} ${path}`];
  if (!route) {
    throw new UnknownEntityError(`no route ${event.httpMethod} ${path}; routes: ${API_ROUTES.join(', ')}`);
  }
  return route(event, deps, requestId, observer);
}
