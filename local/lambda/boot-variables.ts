/** What `service.ts` tells an environment process (`environment.ts`) to run, besides Lambda's own variables. */
export const BOOT_VARIABLES = {
  /** The handler's module, relative to `LAMBDA_TASK_ROOT`. */
  entry: 'KEEL_LAMBDA_ENTRY',
  /** The module's export that handles invocations. */
  handler: 'KEEL_LAMBDA_HANDLER',
  /** The function's ARN, for the invocation context. */
  functionArn: 'KEEL_LAMBDA_FUNCTION_ARN',
} as const;
