import type { AwsTarget } from '#shared/aws/clients.ts';
import { type ApiServer, type ProxyHandler, startApiServer } from '#shared/http/apigw-server.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { type CaptureDelivery, platformCaptureDelivery } from './capture-delivery.ts';
import { startContainerApi } from './container-api.ts';
import { functionOf } from './deployment/deployment.ts';
import { type LocalFunctions, startLocalFunctions } from './lambda/functions.ts';

export interface LocalApiOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly port: number;
  /** Variables over the predict function's own (a test's refresh interval or capture rate). */
  readonly environment?: Readonly<Record<string, string>>;
}

export interface LocalApi extends ApiServer {
  /** The stand-in for the log subscription and Firehose that writes the capture lines to S3. */
  readonly delivery: CaptureDelivery;
  readonly functions: LocalFunctions;
}

/**
 * API Gateway in front of the predict function, on 127.0.0.1: each request becomes the proxy event
 * API Gateway sends and invokes the synthesized predict function in a Lambda-like environment
 * (local/lambda: its role, its environment, frozen between requests). One environment is initialized
 * before the API answers (the model loaded), as provisioned concurrency would. Capture lines the
 * environments write go to the stand-in for the log subscription and Firehose, which writes them to
 * the outputs bucket; `close()` stops the server (in-flight requests finish), then writes what is left.
 */
export async function startLocalApi(options: LocalApiOptions): Promise<LocalApi> {
  const delivery = platformCaptureDelivery(options.target, options.names);
  const functions = await startLocalFunctions({
    home: options.home,
    target: options.target,
    capture: delivery.accept,
    environment: options.environment,
  });
  try {
    const predict = functionOf(functions.deployment, 'lambdas/predict/handler.ts');
    await functions.lambda.prewarm(predict.name);
    const handler: ProxyHandler = (event) => functions.lambda.invoke(predict.name, event);
    const server = await startApiServer({
      handler,
      host: '127.0.0.1',
      port: options.port,
      functionName: predict.name,
    });
    return {
      url: server.url,
      port: server.port,
      delivery,
      functions,
      async close() {
        await server.close();
        await functions.close();
        await delivery.close();
      },
    };
  } catch (error) {
    await functions.close();
    await delivery.close();
    throw error;
  }
}

/** How the local API runs the predict code, as the stage's `inference.compute` names it. */
export const API_COMPUTES = ['lambda', 'ecs'] as const;
export type ApiCompute = (typeof API_COMPUTES)[number];

export const isApiCompute = (value: string): value is ApiCompute =>
  (API_COMPUTES as readonly string[]).includes(value);

export interface PlatformApi extends ApiServer {
  /** Processes serving it besides this one (the containers; Lambda's environments come and go). */
  pids(): number[];
}

/**
 * The API of `keel up`: the predict function in Lambda-like environments ({@link startLocalApi}), or the
 * ECS container in one process per core (local/container-api.ts).
 */
export async function startPlatformApi(
  options: LocalApiOptions & {
    readonly compute: ApiCompute;
    /** With `ecs`. @default - the machine's cores */
    readonly workers?: number;
    readonly log?: (message: string) => void;
  },
): Promise<PlatformApi> {
  if (options.compute === 'ecs') return startContainerApi(options);
  const api = await startLocalApi(options);
  return { url: api.url, port: api.port, pids: () => [], close: () => api.close() };
}
