import { ConfigError } from './errors.ts';

type Environment = Readonly<Record<string, string | undefined>>;

/** The one way to read configuration from the environment: fail fast, naming the variable. */
export function requireEnv(name: string, env: Environment = process.env): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new ConfigError(`environment variable ${name} is not set`);
  }
  return value;
}

export function optionalEnv(name: string, fallback: string, env: Environment = process.env): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

/** An integer setting within [min, max]; the fallback applies when the variable is unset. */
export function intEnv(
  name: string,
  fallback: number,
  { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {},
  env: Environment = process.env,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `environment variable ${name} must be an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

/** A number within [min, max], or undefined when the variable is unset. */
export function numberEnv(
  name: string,
  { min = -Number.MAX_VALUE, max = Number.MAX_VALUE } = {},
  env: Environment = process.env,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(
      `environment variable ${name} must be a number from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}
