import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { isTransientAwsError } from '#shared/aws/errors.ts';
import { issuesOf, KeelError, UnavailableError, ValidationError } from '#shared/errors.ts';
import { logger } from '#shared/observability.ts';

/**
 * A state machine task: zod parses the state's input at the edge, the domain function does the work,
 * and a thrown error keeps its class name, which is what the state machine's Retry and Catch match on.
 */
export type StepHandler<O> = (input: unknown, context?: Context) => Promise<O>;

export function step<S extends z.ZodType, O>(
  schema: S,
  work: (input: z.infer<S>) => Promise<O>,
): StepHandler<O> {
  const handler = middy(async (event: unknown) => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) throw new ValidationError('the step input is invalid', issuesOf(parsed.error));
    try {
      return await work(parsed.data);
    } catch (error) {
      // The state machine retries UnavailableError; a bare SDK error (ECONNREFUSED) would fail the run at once.
      if (!(error instanceof KeelError) && isTransientAwsError(error)) {
        throw new UnavailableError(`a dependency is unavailable: ${(error as Error).message}`, {
          cause: error,
        });
      }
      throw error;
    }
  }).use(injectLambdaContext(logger));
  return (input, context) => handler(input, context ?? ({} as Context));
}
