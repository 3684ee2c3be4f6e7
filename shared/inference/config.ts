import { intEnv, optionalEnv, requireEnv } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';

/** Configuration of the predict handler (Lambda or ECS), read once from the environment, failing fast. */
export interface PredictConfig {
  readonly modelsBucket: string;
  readonly registryTable: string;
  readonly onlineTable: string;
  readonly modelName: string;
  readonly refreshIntervalMs: number;
  readonly backend: 'onnx' | 'sagemaker';
  readonly sagemakerEndpoint: string | undefined;
  readonly maxRecordAgeMs: number;
}

export function readPredictConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PredictConfig {
  const backend = optionalEnv('KEEL_MODEL_BACKEND', 'onnx', env);
  if (backend !== 'onnx' && backend !== 'sagemaker') {
    throw new ConfigError(`KEEL_MODEL_BACKEND must be onnx or sagemaker, got "${backend}"`);
  }
  return {
    modelsBucket: requireEnv(RESOURCE_ENV.models, env),
    registryTable: requireEnv(RESOURCE_ENV.modelRegistry, env),
    onlineTable: requireEnv(RESOURCE_ENV.onlineFeatures, env),
    modelName: optionalEnv('KEEL_MODEL_NAME', 'churn', env),
    refreshIntervalMs: intEnv('KEEL_MODEL_REFRESH_SECONDS', 30, { min: 0, max: 86_400 }, env) * 1000,
    backend,
    sagemakerEndpoint: backend === 'sagemaker' ? requireEnv('KEEL_SAGEMAKER_ENDPOINT', env) : undefined,
    maxRecordAgeMs: intEnv('KEEL_MAX_RECORD_AGE_HOURS', 24 * 30, { min: 1, max: 24 * 3650 }, env) * 3_600_000,
  };
}
