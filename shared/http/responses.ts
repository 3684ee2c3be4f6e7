import type { APIGatewayProxyResult } from 'aws-lambda';
import { z } from 'zod';
import { HTTP_STATUS, KeelError, PayloadTooLargeError, ValidationError } from '#shared/errors.ts';

/** The body of every error response (and of a failed batch item). */
export const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/**
 * The one mapping from errors to HTTP: Keel errors keep their code and status; 4xx carry their message
 * and details, 5xx a message only (no internals); anything unexpected is a 500 `Internal`.
 */
export function errorBody(error: unknown, requestId: string): { status: number; body: ErrorBody } {
  if (error instanceof KeelError) {
    const status = HTTP_STATUS[error.code];
    if (status >= 500 && error.code === 'Internal') {
      return {
        status,
        body: { error: { code: 'Internal', message: `internal error (request ${requestId})` } },
      };
    }
    const details = status < 500 && error.details !== undefined ? { details: error.details } : {};
    return { status, body: { error: { code: error.code, message: error.message, ...details } } };
  }
  return {
    status: 500,
    body: { error: { code: 'Internal', message: `internal error (request ${requestId})` } },
  };
}

export function errorResponse(error: unknown, requestId: string): APIGatewayProxyResult {
  const { status, body } = errorBody(error, requestId);
  return jsonResponse(status, body, status === 503 ? { 'retry-after': '1' } : {});
}

/** Largest request body the handler accepts (a full batch of 100 items is ~50 KB). */
export const MAX_BODY_BYTES = 1024 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON request body; malformed, oversized or absent bodies are 4xx with the contract body. */
export function parseJsonBody(body: string | null, isBase64Encoded: boolean): unknown {
  if (body === null || body === '') {
    throw new ValidationError('the request needs a JSON body', [{ path: '(body)', message: 'required' }]);
  }
  const bytes = isBase64Encoded ? Buffer.from(body, 'base64') : undefined;
  const size = bytes ? bytes.byteLength : Buffer.byteLength(body);
  if (size > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`the body has ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  let text = body;
  if (bytes) {
    try {
      text = STRICT_UTF8.decode(bytes);
    } catch (cause) {
      throw new ValidationError(
        'the body is not valid UTF-8',
        [{ path: '(body)', message: 'invalid UTF-8' }],
        { cause },
      );
    }
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    // Also catches a stack overflow from absurdly deep nesting: still the client's malformed input.
    const message = cause instanceof SyntaxError ? cause.message : 'nesting too deep';
    throw new ValidationError('the body is not valid JSON', [{ path: '(body)', message }], { cause });
  }
}
