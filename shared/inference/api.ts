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

/** Built on first request, not at init: most cold starts never serve it. */
let openApiJson: string | undefined;

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
  'GET /openapi.json': async () => {
    openApiJson ??= JSON.stringify(openApiDocument());
    return { ...jsonResponse(200, null), body: openApiJson };
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
