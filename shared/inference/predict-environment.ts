import { intEnv, numberEnv, optionalEnv, requireEnv } from '#shared/env.ts';
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
  /**
   * Prediction capture (shared/inference/capture.ts): the share of predictions sampled
   * (`KEEL_CAPTURE_SAMPLE_RATE`, 0..1, default 1). The process writes capture lines to stdout, and what
   * delivers them (a log subscription in AWS, the local platform) writes them to the outputs bucket,
   * so its variable is what turns capture on. Absent (no outputs bucket in the environment, or a rate
   * of 0): nothing is captured.
   */
  readonly capture?: { readonly sampleRate: number };
}

/** `KEEL_CAPTURE_SAMPLE_RATE`: the share of predictions captured, 0..1 (default 1). */
export function captureSampleRate(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = optionalEnv('KEEL_CAPTURE_SAMPLE_RATE', '1', env);
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(`KEEL_CAPTURE_SAMPLE_RATE must be a number from 0 to 1, got "${raw}"`);
  }
  return value;
}

export function readPredictConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PredictConfig {
  const backend = optionalEnv('KEEL_MODEL_BACKEND', 'onnx', env);
  if (backend !== 'onnx' && backend !== 'sagemaker') {
    throw new ConfigError(`KEEL_MODEL_BACKEND must be onnx or sagemaker, got "${backend}"`);
  }
  const rate = captureSampleRate(env);
  const outputs = env[RESOURCE_ENV.outputs];
  return {
    modelsBucket: requireEnv(RESOURCE_ENV.models, env),
    registryTable: requireEnv(RESOURCE_ENV.modelRegistry, env),
    onlineTable: requireEnv(RESOURCE_ENV.onlineFeatures, env),
    modelName: optionalEnv('KEEL_MODEL_NAME', 'churn', env),
    // Fractions allowed: tests and the laptop check the alias more often than a deployed function.
    refreshIntervalMs: (numberEnv('KEEL_MODEL_REFRESH_SECONDS', { min: 0, max: 86_400 }, env) ?? 30) * 1000,
    backend,
    sagemakerEndpoint: backend === 'sagemaker' ? requireEnv('KEEL_SAGEMAKER_ENDPOINT', env) : undefined,
    maxRecordAgeMs: intEnv('KEEL_MAX_RECORD_AGE_HOURS', 24 * 30, { min: 1, max: 24 * 3650 }, env) * 3_600_000,
    ...(outputs && rate > 0 ? { capture: { sampleRate: rate } } : {}),
  };
}
