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

interface Bounds {
  readonly min?: number;
  readonly max?: number;
}

function boundedNumber(
  name: string,
  kind: 'an integer' | 'a number',
  { min = -Number.MAX_VALUE, max = Number.MAX_VALUE }: Bounds,
  env: Environment,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  const valid = kind === 'an integer' ? Number.isInteger(value) : Number.isFinite(value);
  if (!valid || value < min || value > max) {
    throw new ConfigError(`environment variable ${name} must be ${kind} from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** An integer setting within [min, max]; the fallback applies when the variable is unset. */
export function intEnv(
  name: string,
  fallback: number,
  { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER }: Bounds = {},
  env: Environment = process.env,
): number {
  return boundedNumber(name, 'an integer', { min, max }, env) ?? fallback;
}

/** A number within [min, max], or undefined when the variable is unset. */
export function numberEnv(
  name: string,
  bounds: Bounds = {},
  env: Environment = process.env,
): number | undefined {
  return boundedNumber(name, 'a number', bounds, env);
}
