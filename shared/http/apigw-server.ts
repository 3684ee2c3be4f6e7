import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { PayloadTooLargeError, ValidationError } from '#shared/errors.ts';
import { errorResponse } from './responses.ts';

/**
 * Serves an API Gateway (REST, proxy integration) handler over plain HTTP: each request becomes the
 * event API Gateway would send, and the handler's result becomes the response. The local platform and
 * the ECS container run the Lambda's own handler this way, so all three answer alike.
 */
export type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

export interface ApiServerOptions {
  readonly handler: ProxyHandler;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** API Gateway's own payload limit (10 MB): bigger bodies get 413 before the handler runs. */
  readonly maxBodyBytes?: number;
  readonly stage?: string;
  readonly functionName?: string;
}

export interface ApiServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function send(res: ServerResponse, result: APIGatewayProxyResult, requestId: string): void {
  const headers: Record<string, string | number | boolean> = {
    ...result.headers,
    'x-amzn-requestid': requestId,
  };
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {}))
    headers[name] = values.join(', ');
  const body = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '');
  res.writeHead(result.statusCode, { ...headers, 'content-length': body.byteLength });
  res.end(body);
}

/**
 * The request target as a URL. Read as a path on this host, never as a URL of its own: `//[` or
 * `//host/x` would otherwise throw or lose their first segment (and a throw here ended the server).
 */
function requestUrl(target = '/'): URL {
  const href = `http://localhost${target.startsWith('/') ? '' : '/'}${target}`;
  if (!URL.canParse(href)) {
    throw new ValidationError('the request target is not a valid path', [
      { path: '(path)', message: 'invalid' },
    ]);
  }
  return new URL(href);
}

/** The stage name API Gateway sends in X-Forwarded-Prefix (its pattern: letters, digits, `_`, `-`). */
const FORWARDED_PREFIX = /^\/?([A-Za-z0-9_-]{1,128})$/;

/**
 * Where the client reached the API, as API Gateway puts it in a Lambda event's request context: the
 * domain, and the path with the stage before the route. Behind API Gateway (the Fargate service's
 * VPC-link integration) the gateway sends them as X-Forwarded-Host and X-Forwarded-Prefix, since the
 * request it forwards is addressed to the load balancer; served directly (`keel up`) the API is at the
 * root of the host the client named.
 */
function reachedAt(req: IncomingMessage, pathname: string): { domainName?: string; path: string } {
  const first = (name: string) => {
    const value = req.headers[name];
    return (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim() || undefined;
  };
  const prefix = FORWARDED_PREFIX.exec(first('x-forwarded-prefix') ?? '')?.[1];
  const domainName = first('x-forwarded-host') ?? first('host');
  return { ...(domainName ? { domainName } : {}), path: `${prefix ? `/${prefix}` : ''}${pathname}` };
}

function toEvent(req: IncomingMessage, body: Buffer, requestId: string, stage: string): APIGatewayProxyEvent {
  const url = requestUrl(req.url);
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    headers[name] = values.join(', ');
    multiValueHeaders[name] = values;
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.at(-1)!;
    multiQuery[key] = values;
  }
  // Like API Gateway, text passes as a string and anything that is not valid UTF-8 as base64.
  let text: string | null = null;
  let isBase64Encoded = false;
  if (body.byteLength > 0) {
    try {
      text = STRICT_UTF8.decode(body);
    } catch {
      text = body.toString('base64');
      isBase64Encoded = true;
    }
  }
  const method = req.method ?? 'GET';
  return {
    resource: url.pathname,
    path: url.pathname,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: url.searchParams.size > 0 ? query : null,
    multiValueQueryStringParameters: url.searchParams.size > 0 ? multiQuery : null,
    pathParameters: null,
    stageVariables: null,
    body: text,
    isBase64Encoded,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: method,
      identity: {
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      } as APIGatewayProxyEvent['requestContext']['identity'],
      ...reachedAt(req, url.pathname),
      stage,
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: url.pathname,
    },
  };
}

function lambdaContext(functionName: string, requestId: string): Context {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const limit = options.maxBodyBytes ?? API_GATEWAY_MAX_BODY_BYTES;
  const stage = options.stage ?? 'local';
  const functionName = options.functionName ?? 'keel-predict';
  const server: Server = createServer((req, res) => {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    req.on('data', (chunk: Buffer) => {
      if (rejected) return;
      size += chunk.byteLength;
      if (size > limit) {
        rejected = true;
        res.setHeader('connection', 'close');
        send(
          res,
          errorResponse(new PayloadTooLargeError(`request body exceeds ${limit} bytes`), requestId),
          requestId,
        );
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (rejected) return;
      Promise.resolve()
        .then(() =>
          options.handler(
            toEvent(req, Buffer.concat(chunks), requestId, stage),
            lambdaContext(functionName, requestId),
          ),
        )
        .then((result) => send(res, result, requestId))
        .catch((error: unknown) => send(res, errorResponse(error, requestId), requestId));
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
