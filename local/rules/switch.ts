import { optionalEnv } from '#shared/env.ts';

/** `KEEL_AWS_RULES=off` lets every local call through unchecked (for debugging only: AWS would not). */
export const AWS_RULES_ENV = 'KEEL_AWS_RULES';

export function awsRulesEnforced(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const value = optionalEnv(AWS_RULES_ENV, 'on', env);
  if (value !== 'on' && value !== 'off') {
    throw new Error(`${AWS_RULES_ENV} must be "on" or "off" (got "${value}")`);
  }
  return value === 'on';
}
