import { CaptureDelivery } from '#local/capture-delivery.ts';
import { type AwsTarget, createS3Client } from '#shared/aws/clients.ts';
import { type ApiServer, startApiServer } from '#shared/http/apigw-server.ts';
import { type PredictionCapture, redirectCapture } from '#shared/inference/capture.ts';
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
  /**
   * Where the capture lines go, as in `keel up` (local/api.ts): the stand-in for the log subscription
   * and Firehose, writing to the outputs bucket through `target`; present with `capture`.
   */
  readonly delivery: CaptureDelivery | undefined;
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
      : { capture: { sampleRate: options.captureSampleRate } }),
  };
  const target = options.target ?? aws.target;
  const { deps, observer, capture } = createInferenceRuntime(config, target);
  const delivery = capture && new CaptureDelivery({ s3: createS3Client(target), bucket: aws.names.outputs });
  if (delivery) redirectCapture(delivery.accept);
  const server = await startApiServer({
    handler: createApiHandler(deps, observer),
    host: '127.0.0.1',
    port: 0,
  });
  return {
    url: server.url,
    deps,
    capture,
    delivery,
    server,
    async close() {
      await server.close();
      if (delivery) {
        redirectCapture();
        await delivery.close();
      }
      await deps.models.close();
    },
  };
}
