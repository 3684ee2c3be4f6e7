import type { AwsTarget } from '#shared/aws/clients.ts';
import { type ApiServer, startApiServer } from '#shared/http/apigw-server.ts';
import type { PredictConfig } from '#shared/inference/config.ts';
import { createApiHandler, createInferenceRuntime } from '#shared/inference/runtime.ts';
import type { InferenceDeps } from '#shared/inference/service.ts';
import type { TestAws } from './aws.ts';

/** The predict handler behind the API Gateway adapter on 127.0.0.1, configured for the test AWS. */
export interface TestApi {
  readonly url: string;
  readonly deps: InferenceDeps;
  readonly server: ApiServer;
  close(): Promise<void>;
}

export async function startTestApi(
  aws: TestAws,
  options: { target?: AwsTarget; refreshIntervalMs?: number; maxRecordAgeMs?: number } = {},
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
  };
  const { deps, observer } = createInferenceRuntime(config, options.target ?? aws.target);
  const server = await startApiServer({
    handler: createApiHandler(deps, observer),
    host: '127.0.0.1',
    port: 0,
  });
  return {
    url: server.url,
    deps,
    server,
    async close() {
      await server.close();
      await deps.models.close();
    },
  };
}
