import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { metricsFile } from '#local/metrics-file.ts';
import { AWS_TARGET_ENV, type AwsTarget } from '#shared/aws/clients.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { type ResourceNames, resourceEnvironment } from '#shared/resources.ts';

/**
 * Prepares this process (a test's) to run Keel's handlers in it the way Lambda would: resource names and endpoints in
 * the environment (handlers read them at import), laptop defaults for Powertools (quiet logs, no X-Ray
 * daemon, quick model refresh) unless the user set them, and EMF metrics appended to the metrics file.
 * Must run before any handler module is imported; safe to call more than once.
 */
export async function prepareLocalHandlers(
  home: string,
  target: AwsTarget,
  names: ResourceNames,
): Promise<void> {
  Object.assign(process.env, {
    ...resourceEnvironment(names),
    AWS_REGION: target.region,
    ...(target.endpoints
      ? { [AWS_TARGET_ENV.s3]: target.endpoints.s3, [AWS_TARGET_ENV.dynamodb]: target.endpoints.dynamodb }
      : {}),
  });
  const defaults: Record<string, string> = {
    [KEEL_ENV.modelRefreshSeconds]: '2',
    POWERTOOLS_SERVICE_NAME: 'keel',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_TRACE_ENABLED: 'false',
  };
  for (const [name, value] of Object.entries(defaults)) process.env[name] ??= value;
  // With tracing off, keep the X-Ray SDK (loaded by Powertools' Tracer) from hooking every async call.
  if (process.env.POWERTOOLS_TRACE_ENABLED === 'false') process.env.AWS_XRAY_MANUAL_MODE ??= 'true';
  if (redirected !== home) {
    mkdirSync(join(home, 'metrics'), { recursive: true });
    const { redirectMetrics } = await import('#shared/observability.ts');
    redirectMetrics(createWriteStream(metricsFile(home), { flags: 'a' }));
    redirected = home;
  }
}

let redirected: string | undefined;
