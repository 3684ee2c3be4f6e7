/**
 * Request fixtures with no project imports (the cold-start child loads this before the handler): a
 * minimal API Gateway (REST, proxy integration) event and Lambda context for invoking the middy handler
 * without HTTP, and the environment a predict process runs with.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';

/** The customer every Keel request names (in the online store). */
export const BENCH_CUSTOMER = 'c-000123';

/** Keel's usual request: the features come from the online store. */
export const KEEL_ID_BODY = JSON.stringify({ customerId: BENCH_CUSTOMER });

export function apiGatewayEvent(method: string, path: string, body: string | null): APIGatewayProxyEvent {
  const requestId = randomUUID();
  return {
    resource: path,
    path,
    httpMethod: method,
    headers: { 'content-type': 'application/json', host: '127.0.0.1' },
    multiValueHeaders: { 'content-type': ['application/json'], host: ['127.0.0.1'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: { sourceIp: '127.0.0.1' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: `/bench${path}`,
      stage: 'bench',
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'bench',
      resourcePath: path,
    },
  };
}

export function lambdaContext(functionName = 'keel-predict'): Context {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Environment a predict process reads (handler config, Powertools), as `keel up` sets it. */
export function servingEnvironment(): Record<string, string> {
  return {
    POWERTOOLS_SERVICE_NAME: 'keel-predict',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_TRACE_ENABLED: 'false',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}
