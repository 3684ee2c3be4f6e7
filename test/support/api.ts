import type { AwsTarget } from '#shared/aws/clients.ts';
import { type ApiServer, startApiServer } from '#shared/http/apigw-server.ts';
import type { PredictionCapture } from '#shared/inference/capture.ts';
import type { PredictConfig } from '#shared/inference/config.ts';
import { createApiHandler, createInferenceRuntime } from '#shared/inference/runtime.ts';
import type { InferenceDeps } from '#shared/inference/service.ts';
import type { TestAws } from './aws.ts';

/** The predict handler behind the API Gateway adapter on 127.0.0.1, configured for the test AWS. */
export interface TestApi {
  readonly url: string;
  readonly deps: InferenceDeps;
  /** Present when the options asked for capture. */
  readonly capture: PredictionCapture | undefined;
  readonly server: ApiServer;
  close(): Promise<void>;
}

export async function startTestApi(
  aws: TestAws,
  options: {
    target?: AwsTarget;
    refreshIntervalMs?: number;
    maxRecordAgeMs?: number;
    /** Capture predictions to the outputs bucket at this sample rate. */
    captureSampleRate?: number;
  } = {},
): Promise<TestApi> {
  const config: PredictConfig = {
    modelsBucket: aws.names.models,
    registryTable: aws.names.modelRegistry,
    onlineTable: aws.names.onlineFeatures,
    modelName: 'churn',
    refreshIntervalMs: options.refreshIntervalMs ?? 0,
    backend: 'onnx',
    sagemakerEndpoint: undefined,
    maxRecordAgeMs: options.maxRecordAgeMs ?? 30 * 86_400_000,
    ...(options.captureSampleRate === undefined
      ? {}
      : { capture: { bucket: aws.names.outputs, sampleRate: options.captureSampleRate } }),
  };
  const { deps, observer, capture } = createInferenceRuntime(config, options.target ?? aws.target);
  const server = await startApiServer({
    handler: createApiHandler(deps, observer),
    host: '127.0.0.1',
    port: 0,
  });
  return {
    url: server.url,
    deps,
    capture,
    server,
    async close() {
      await capture?.close();
      await server.close();
      await deps.models.close();
    },
  };
}
