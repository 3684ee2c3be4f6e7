import { KeelError, UnavailableError } from '#shared/errors.ts';

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'InternalServerError',
  'InternalError',
  'SlowDown',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** Whether an AWS SDK error means "the dependency is down or overloaded" (worth a retry later). */
export function isTransientAwsError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if ((e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  return e.cause !== undefined && e.cause !== error && isTransientAwsError(e.cause);
}

/** Runs a call to a dependency, turning "it is down" into {@link UnavailableError} (503, retryable). */
export async function callDependency<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof KeelError) throw error;
    if (isTransientAwsError(error))
      throw new UnavailableError(`${what} is unavailable; retry later`, { cause: error });
    throw error;
  }
}
