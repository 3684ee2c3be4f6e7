import { startLocalApi } from '#local/api.ts';
import type { CaptureDelivery } from '#local/capture-delivery.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import type { ApiServer } from '#shared/http/apigw-server.ts';
import { resourceEnvironment } from '#shared/resources.ts';
import type { TestAws } from './aws.ts';

/**
 * The inference API of a test, as `keel up` serves it (local/api.ts): the synthesized predict function
 * in a Lambda-like environment (its role's permissions checked, frozen between requests) behind the
 * API Gateway adapter on 127.0.0.1, configured for the test AWS.
 */
export interface TestApi {
  readonly url: string;
  /** Where the capture lines go, as in `keel up`: the stand-in for the log subscription and Firehose. */
  readonly delivery: CaptureDelivery;
  readonly server: ApiServer;
  close(): Promise<void>;
}

export async function startTestApi(
  aws: TestAws,
  options: {
    /** Where the function's clients send their calls (a test's switchable proxies). */
    target?: AwsTarget;
    /** How often the function checks the champion alias (default: on every request). */
    refreshIntervalMs?: number;
    maxRecordAgeMs?: number;
    /** Capture predictions at this sample rate (default: no capture). */
    captureSampleRate?: number;
  } = {},
): Promise<TestApi> {
  const api = await startLocalApi({
    home: aws.home,
    target: options.target ?? aws.target,
    names: aws.names,
    port: 0,
    environment: {
      // The test's own resource names (a stage's, in the --stage tests), where they differ from the local stage's.
      ...resourceEnvironment(aws.names),
      KEEL_MODEL_REFRESH_SECONDS: String((options.refreshIntervalMs ?? 0) / 1000),
      KEEL_MAX_RECORD_AGE_HOURS: String(Math.round((options.maxRecordAgeMs ?? 30 * 86_400_000) / 3_600_000)),
      KEEL_CAPTURE_SAMPLE_RATE: String(options.captureSampleRate ?? 0),
    },
  });
  return { url: api.url, delivery: api.delivery, server: api, close: () => api.close() };
}
