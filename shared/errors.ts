/**
 * Keel's named errors. Each carries an API error code (docs/architecture.md, "Inference API"); the HTTP status for each code is
 * decided in one place ({@link HTTP_STATUS}), and only 4xx details ever leave the process.
 */
export const HTTP_STATUS = {
  ValidationError: 400,
  UnknownEntity: 404,
  Conflict: 409,
  PayloadTooLarge: 413,
  IncompleteFeatures: 422,
  Internal: 500,
  NoModel: 503,
  Unavailable: 503,
} as const;
export type ErrorCode = keyof typeof HTTP_STATUS;

export abstract class KeelError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: unknown;

  constructor(message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details;
  }
}

/** A path-qualified problem with an input field. */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/** A failed zod parse's issues as field issues, their paths under `prefix` (`(body)` for the root). */
export function issuesOf(
  error: { issues: { path: PropertyKey[]; message: string }[] },
  prefix = '',
): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: issue.message,
  }));
}

export class ValidationError extends KeelError {
  readonly code = 'ValidationError';
  constructor(message: string, issues: FieldIssue[], options: { cause?: unknown } = {}) {
    super(message, { ...options, details: issues });
  }
}

export class UnknownEntityError extends KeelError {
  readonly code = 'UnknownEntity';
}

export class ConflictError extends KeelError {
  readonly code = 'Conflict';
}

export class PayloadTooLargeError extends KeelError {
  readonly code = 'PayloadTooLarge';
}

export class IncompleteFeaturesError extends KeelError {
  readonly code = 'IncompleteFeatures';
}

export class NoModelError extends KeelError {
  readonly code = 'NoModel';
}

/** A dependency (S3, DynamoDB, a local server) did not answer; the caller may retry. */
export class UnavailableError extends KeelError {
  readonly code = 'Unavailable';
}

/** Misconfiguration found at start-up (a missing environment variable, a bad setting). */
export class ConfigError extends KeelError {
  readonly code = 'Internal';
}
