import type { AwsTarget } from '#shared/aws/clients.ts';
import { type ApiServer, type ProxyHandler, startApiServer } from '#shared/http/apigw-server.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { prepareLocalHandlers } from './environment.ts';

export interface LocalApiOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly port: number;
}

/** Serves the real predict Lambda handler on 127.0.0.1, configured exactly as in Lambda. */
export async function startLocalApi(options: LocalApiOptions): Promise<ApiServer> {
  await prepareLocalHandlers(options.home, options.target, options.names);
  const { handler } = (await import('#lambdas/predict/handler.ts')) as { handler: ProxyHandler };
  return startApiServer({ handler, host: '127.0.0.1', port: options.port });
}
