import { describe, expect, it } from 'vitest';
import { KEEL_ENV } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';
import {
  type PredictVariablesInput,
  predictVariables,
  readPredictConfig,
} from '#shared/inference/predict-environment.ts';
import { DEFAULT_MODEL_NAME } from '#shared/registry/metadata.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';

/** The resource names a stack passes beside the model variables. */
const RESOURCES = {
  [RESOURCE_ENV.models]: 'models-bucket',
  [RESOURCE_ENV.modelRegistry]: 'registry-table',
  [RESOURCE_ENV.onlineFeatures]: 'online-table',
};
const WITH_OUTPUTS = { ...RESOURCES, [RESOURCE_ENV.outputs]: 'outputs-bucket' };

/** What the predict process reads when a stack writes `input` (and the outputs bucket, with capture). */
const roundTrip = (input: PredictVariablesInput) =>
  readPredictConfig({ ...(input.capture ? WITH_OUTPUTS : RESOURCES), ...predictVariables(input) });

describe('the predict process environment: writer and reader', () => {
  it('reads back what the writer wrote: model, backend, endpoint, capture', () => {
    expect(roundTrip({ modelName: 'attrition', backend: { kind: 'onnx' } })).toMatchObject({
      modelsBucket: 'models-bucket',
      registryTable: 'registry-table',
      onlineTable: 'online-table',
      modelName: 'attrition',
      backend: 'onnx',
      sagemakerEndpoint: undefined,
    });
    const sagemaker = roundTrip({
      modelName: 'attrition',
      backend: { kind: 'sagemaker', endpointName: 'Attrition-XGB' },
      capture: { sampleRate: 0.25 },
    });
    expect(sagemaker).toMatchObject({
      backend: 'sagemaker',
      sagemakerEndpoint: 'Attrition-XGB',
      capture: { sampleRate: 0.25 },
    });
  });

  it('writes only the variables that apply, under the shared names', () => {
    expect(predictVariables({ modelName: 'churn', backend: { kind: 'onnx' } })).toEqual({
      [KEEL_ENV.modelName]: 'churn',
      [KEEL_ENV.modelBackend]: 'onnx',
    });
    expect(predictVariables({ modelName: 'churn', backend: { kind: 'onnx' }, capture: {} })).toEqual({
      [KEEL_ENV.modelName]: 'churn',
      [KEEL_ENV.modelBackend]: 'onnx',
      [KEEL_ENV.captureSampleRate]: '1',
    });
  });

  it('captures only with an outputs bucket and a rate above 0', () => {
    expect(roundTrip({ modelName: 'churn', backend: { kind: 'onnx' }, capture: {} }).capture).toEqual({
      sampleRate: 1,
    });
    expect(
      roundTrip({ modelName: 'churn', backend: { kind: 'onnx' }, capture: { sampleRate: 0 } }).capture,
    ).toBeUndefined();
    expect(roundTrip({ modelName: 'churn', backend: { kind: 'onnx' } }).capture).toBeUndefined();
  });

  it('defaults what is not written: the default model, onnx, 30 s refresh, 30 days of freshness', () => {
    expect(readPredictConfig(RESOURCES)).toEqual({
      modelsBucket: 'models-bucket',
      registryTable: 'registry-table',
      onlineTable: 'online-table',
      modelName: DEFAULT_MODEL_NAME,
      refreshIntervalMs: 30_000,
      backend: 'onnx',
      sagemakerEndpoint: undefined,
      maxRecordAgeMs: 30 * 24 * 3_600_000,
    });
    expect(readPredictConfig({ ...RESOURCES, [KEEL_ENV.modelRefreshSeconds]: '0.5' }).refreshIntervalMs).toBe(
      500,
    );
  });

  it.each([
    [{ [KEEL_ENV.modelBackend]: 'gpu' }, 'KEEL_MODEL_BACKEND must be onnx or sagemaker, got "gpu"'],
    [{ [KEEL_ENV.modelBackend]: 'sagemaker' }, 'environment variable KEEL_SAGEMAKER_ENDPOINT is not set'],
    [
      { [KEEL_ENV.captureSampleRate]: '1.5' },
      'KEEL_CAPTURE_SAMPLE_RATE must be a number from 0 to 1, got "1.5"',
    ],
    [{ [KEEL_ENV.captureSampleRate]: ' ' }, 'KEEL_CAPTURE_SAMPLE_RATE must be a number from 0 to 1, got " "'],
    [
      { [KEEL_ENV.modelRefreshSeconds]: '-1' },
      'environment variable KEEL_MODEL_REFRESH_SECONDS must be a number from 0 to 86400, got "-1"',
    ],
    [
      { [KEEL_ENV.maxRecordAgeHours]: '0' },
      'environment variable KEEL_MAX_RECORD_AGE_HOURS must be an integer from 1 to 87600, got "0"',
    ],
    [{ [RESOURCE_ENV.models]: '' }, 'environment variable KEEL_MODELS_BUCKET is not set'],
  ])('refuses %j, naming the variable', (bad, message) => {
    expect(() => readPredictConfig({ ...WITH_OUTPUTS, ...bad })).toThrow(new ConfigError(message));
  });
});
