import { intEnv, KEEL_ENV, numberEnv, optionalEnv, requireEnv } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';
import { modelNameFromEnv } from '#shared/registry/metadata.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';

/**
 * Both ends of the predict process's configuration: {@link predictVariables} is what the stacks write
 * (on the Lambda function or the ECS container), {@link readPredictConfig} what the process reads,
 * failing fast. Resource names travel beside them as `RESOURCE_ENV` variables.
 */

/** Where the model is evaluated. */
export type ModelBackend =
  /** onnxruntime-node in the predict process. */
  | { readonly kind: 'onnx' }
  /** A SageMaker real-time endpoint, in the stack's account and region. */
  | { readonly kind: 'sagemaker'; readonly endpointName: string };

/** Share of predictions captured when capture is on and no rate is given. */
const DEFAULT_CAPTURE_SAMPLE_RATE = 1;

/** What the predict process is told besides the names of its resources. */
export interface PredictVariablesInput {
  /** The registry model served. */
  readonly modelName: string;
  readonly backend: ModelBackend;
  /**
   * Prediction capture, set when the process is also given the outputs bucket to capture to.
   *
   * @default - no capture variable
   */
  readonly capture?: {
    /** @default - 1 (every prediction) */
    readonly sampleRate?: number;
  };
}

/** The variables {@link readPredictConfig} reads, less the resource names. */
export function predictVariables(input: PredictVariablesInput): Record<string, string> {
  return {
    [KEEL_ENV.modelName]: input.modelName,
    [KEEL_ENV.modelBackend]: input.backend.kind,
    ...(input.backend.kind === 'sagemaker'
      ? { [KEEL_ENV.sagemakerEndpoint]: input.backend.endpointName }
      : {}),
    ...(input.capture
      ? {
          [KEEL_ENV.captureSampleRate]: String(input.capture.sampleRate ?? DEFAULT_CAPTURE_SAMPLE_RATE),
        }
      : {}),
  };
}

/** Configuration of the predict handler (Lambda or ECS), read once from the environment, failing fast. */
export interface PredictConfig {
  readonly modelsBucket: string;
  readonly registryTable: string;
  readonly onlineTable: string;
  readonly modelName: string;
  readonly refreshIntervalMs: number;
  readonly backend: ModelBackend['kind'];
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
  const name = KEEL_ENV.captureSampleRate;
  const raw = optionalEnv(name, String(DEFAULT_CAPTURE_SAMPLE_RATE), env);
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(`${name} must be a number from 0 to 1, got "${raw}"`);
  }
  return value;
}

export function readPredictConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PredictConfig {
  const backend = optionalEnv(KEEL_ENV.modelBackend, 'onnx', env);
  if (backend !== 'onnx' && backend !== 'sagemaker') {
    throw new ConfigError(`${KEEL_ENV.modelBackend} must be onnx or sagemaker, got "${backend}"`);
  }
  const rate = captureSampleRate(env);
  const outputs = env[RESOURCE_ENV.outputs];
  return {
    modelsBucket: requireEnv(RESOURCE_ENV.models, env),
    registryTable: requireEnv(RESOURCE_ENV.modelRegistry, env),
    onlineTable: requireEnv(RESOURCE_ENV.onlineFeatures, env),
    modelName: modelNameFromEnv(env),
    // Fractions allowed: tests and the laptop check the alias more often than a deployed function.
    refreshIntervalMs: (numberEnv(KEEL_ENV.modelRefreshSeconds, { min: 0, max: 86_400 }, env) ?? 30) * 1000,
    backend,
    sagemakerEndpoint: backend === 'sagemaker' ? requireEnv(KEEL_ENV.sagemakerEndpoint, env) : undefined,
    maxRecordAgeMs: intEnv(KEEL_ENV.maxRecordAgeHours, 24 * 30, { min: 1, max: 24 * 3650 }, env) * 3_600_000,
    ...(outputs && rate > 0 ? { capture: { sampleRate: rate } } : {}),
  };
}
