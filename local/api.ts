import { type AwsTarget, createS3Client } from '#shared/aws/clients.ts';
import { type ApiServer, type ProxyHandler, startApiServer } from '#shared/http/apigw-server.ts';
import { redirectCapture } from '#shared/inference/capture.ts';
import { logger } from '#shared/observability.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { CaptureDelivery } from './capture-delivery.ts';
import { prepareLocalHandlers } from './environment.ts';

export interface LocalApiOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly port: number;
}

/**
 * Serves the real predict Lambda handler on 127.0.0.1, configured exactly as in Lambda. Its capture
 * lines go to the local stand-in for the log subscription and Firehose, which writes them to the
 * outputs bucket; `close()` stops the server (in-flight requests finish), then writes what is left.
 */
export async function startLocalApi(options: LocalApiOptions): Promise<ApiServer> {
  await prepareLocalHandlers(options.home, options.target, options.names);
  const delivery = new CaptureDelivery({
    s3: createS3Client(options.target),
    bucket: options.names.outputs,
    onError: (error) =>
      logger.warn('capture delivery failed; its lines are kept for the next write', { error }),
  });
  redirectCapture(delivery.accept);
  try {
    const { handler } = (await import('#lambdas/predict/handler.ts')) as { handler: ProxyHandler };
    const server = await startApiServer({ handler, host: '127.0.0.1', port: options.port });
    return {
      url: server.url,
      port: server.port,
      async close() {
        await server.close();
        redirectCapture();
        await delivery.close();
      },
    };
  } catch (error) {
    redirectCapture();
    throw error;
  }
}
