import { ConfigError } from './errors.ts';

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The variables through which a deployment configures Keel's handlers: written by the stacks (`lib/`)
 * and by `keel up` for the local stage, read by the handlers. One name each, for both ends. Resource
 * names travel in `RESOURCE_ENV` (shared/resources.ts), SDK endpoints in `AWS_TARGET_ENV`
 * (shared/aws/clients.ts).
 */
export const KEEL_ENV = {
  /** Registry name of the model served, retrained, scored and watched. */
  modelName: 'KEEL_MODEL_NAME',
  /** Where the predict process evaluates the model: `onnx` or `sagemaker`. */
  modelBackend: 'KEEL_MODEL_BACKEND',
  /** The SageMaker endpoint, with the `sagemaker` backend. */
  sagemakerEndpoint: 'KEEL_SAGEMAKER_ENDPOINT',
  /** Share of predictions (API or batch) captured for the drift job, 0..1. */
  captureSampleRate: 'KEEL_CAPTURE_SAMPLE_RATE',
  /** How often the predict process checks the champion alias, in seconds. */
  modelRefreshSeconds: 'KEEL_MODEL_REFRESH_SECONDS',
  /** Age in hours past which the predict process warns that a customer's stored record is stale. */
  maxRecordAgeHours: 'KEEL_MAX_RECORD_AGE_HOURS',
  /** The stage's alarm options as JSON, for the drift job and the local alarms. */
  alarmOptions: 'KEEL_ALARM_OPTIONS',
  /** The on-call SNS topic the drift job sends its notice to (absent: no notice) and a rollout's page goes to. */
  onCallTopicArn: 'KEEL_ONCALL_TOPIC_ARN',
  /** The deployment stage, for functions that name its alarms (`alarmName(stage, id)`). */
  stage: 'KEEL_STAGE',
  /** The ETL finalize task's default bad-row share, for runs whose input sets none. */
  etlMaxBadRowShare: 'KEEL_ETL_MAX_BAD_ROW_SHARE',
} as const;

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
