import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AWS_TARGET_ENV, type AwsTarget } from '#shared/aws/clients.ts';
import { type ApiServer, type ProxyHandler, startApiServer } from '#shared/http/apigw-server.ts';
import { type ResourceNames, resourceEnvironment } from '#shared/resources.ts';

export interface LocalApiOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  readonly port: number;
}

/** Where the local platform keeps the EMF metric lines its handlers emit (what CloudWatch would read). */
export const metricsFile = (home: string) => join(home, 'metrics', 'emf.jsonl');

/**
 * Serves the real predict Lambda handler on 127.0.0.1. The handler reads its configuration from the
 * environment at import, exactly as in Lambda, so the environment is set first and the module loaded
 * after; defaults suit a laptop (quick model refresh, quiet logs, no X-Ray daemon).
 */
export async function startLocalApi(options: LocalApiOptions): Promise<ApiServer> {
  const env: Record<string, string> = {
    ...resourceEnvironment(options.names),
    AWS_REGION: options.target.region,
    [AWS_TARGET_ENV.s3]: options.target.endpoints!.s3,
    [AWS_TARGET_ENV.dynamodb]: options.target.endpoints!.dynamodb,
  };
  const defaults: Record<string, string> = {
    KEEL_MODEL_REFRESH_SECONDS: '2',
    POWERTOOLS_SERVICE_NAME: 'keel-predict',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_TRACE_ENABLED: 'false',
  };
  Object.assign(process.env, env);
  for (const [name, value] of Object.entries(defaults)) process.env[name] ??= value;

  await mkdir(join(options.home, 'metrics'), { recursive: true });
  const { redirectMetrics } = await import('#shared/observability.ts');
  redirectMetrics(createWriteStream(metricsFile(options.home), { flags: 'a' }));
  const { handler } = (await import('#lambdas/predict/handler.ts')) as { handler: ProxyHandler };
  return startApiServer({ handler, host: '127.0.0.1', port: options.port });
}
