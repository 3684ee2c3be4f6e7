import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { optionalEnv } from '#shared/env.ts';

/**
 * One description of where AWS is: the real thing through the default credential chain, or local
 * endpoints (the embedded servers of `keel up`, or moto). Every SDK client in Keel is built from it.
 */
export interface AwsTarget {
  readonly region: string;
  /**
   * Local endpoints; absent means real AWS. `sns` and `cloudwatch` are there where something stands in
   * for them (the local functions' environments: the drift job's notice, the rollout functions' page and
   * their reading of the guardrail alarms).
   */
  readonly endpoints?: {
    readonly s3: string;
    readonly dynamodb: string;
    readonly sns?: string;
    readonly cloudwatch?: string;
    /** An emulator's SageMaker API (moto), which the local runner sends the retrain's training job to. */
    readonly sagemaker?: string;
  };
}

/**
 * How long a caller waits for AWS. The serving path wants to fail fast (a 503 the client can retry
 * beats a request that hangs); batch work keeps the SDK defaults.
 */
export interface ClientTimeouts {
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxAttempts: number;
}

export const SERVING_TIMEOUTS: ClientTimeouts = {
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 3_000,
  maxAttempts: 2,
};

const transport = (timeouts: ClientTimeouts | undefined) =>
  timeouts
    ? {
        maxAttempts: timeouts.maxAttempts,
        requestHandler: new NodeHttpHandler({
          connectionTimeout: timeouts.connectionTimeoutMs,
          requestTimeout: timeouts.requestTimeoutMs,
        }),
      }
    : {};

/** Local emulators accept any key; s3rver insists on these. */
const LOCAL_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * Session tokens of the local platform's role sessions start with this: a Lambda-like environment
 * holds one (as a Lambda holds its role's credentials) and the local rules proxy reads the role from
 * it. Any other session token in the environment (a developer's real one) never goes to a local server.
 */
export const LOCAL_SESSION_PREFIX = 'keel-local-session/';

/** The credentials every client of a local endpoint signs with. */
export const localCredentials = () => {
  const token = process.env.AWS_SESSION_TOKEN;
  return token?.startsWith(LOCAL_SESSION_PREFIX) ? { ...LOCAL_KEYS, sessionToken: token } : LOCAL_KEYS;
};

export const AWS_TARGET_ENV = {
  s3: 'KEEL_S3_ENDPOINT',
  dynamodb: 'KEEL_DYNAMODB_ENDPOINT',
  sns: 'KEEL_SNS_ENDPOINT',
  cloudwatch: 'KEEL_CLOUDWATCH_ENDPOINT',
} as const;

export function awsTargetFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): AwsTarget {
  const region = optionalEnv('AWS_REGION', optionalEnv('AWS_DEFAULT_REGION', 'us-east-1', env), env);
  const s3 = env[AWS_TARGET_ENV.s3];
  const dynamodb = env[AWS_TARGET_ENV.dynamodb];
  if (!s3 && !dynamodb) return { region };
  if (!s3 || !dynamodb) {
    throw new Error(
      `set both ${AWS_TARGET_ENV.s3} and ${AWS_TARGET_ENV.dynamodb} for local endpoints, or neither`,
    );
  }
  const sns = env[AWS_TARGET_ENV.sns];
  const cloudwatch = env[AWS_TARGET_ENV.cloudwatch];
  return {
    region,
    endpoints: { s3, dynamodb, ...(sns ? { sns } : {}), ...(cloudwatch ? { cloudwatch } : {}) },
  };
}

export function createS3Client(target: AwsTarget, timeouts?: ClientTimeouts): S3Client {
  if (!target.endpoints) return new S3Client({ region: target.region, ...transport(timeouts) });
  return new S3Client({
    ...transport(timeouts),
    region: target.region,
    endpoint: target.endpoints.s3,
    credentials: localCredentials(),
    forcePathStyle: true,
    // Local S3 servers mishandle the SDK's default streaming checksums (corrupted multipart bodies).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** What a DynamoDB client may take beyond its target and timeouts. */
export interface DynamoClientOptions {
  /**
   * Build each command class's middleware once instead of on every send, for a server that sends one
   * command over and over (the serving path's `BatchGetItem`): through the ECS container it gave 3.7%
   * more requests/s (measured). The document client refuses it, and a command sent through such a
   * client must not carry middleware of its own.
   *
   * @default false
   */
  readonly cacheMiddleware?: boolean;
  /**
   * Send through this client's connections (its request handler and timeouts) instead of a pool of
   * its own: a Lambda environment's first store read then reuses the connection its registry read
   * opened at init, instead of paying for a TLS handshake on the first request.
   *
   * @default - a connection pool of its own
   */
  readonly shareConnectionsWith?: { readonly config: Pick<DynamoDBClient['config'], 'requestHandler'> };
}

export function createDynamoClient(
  target: AwsTarget,
  timeouts?: ClientTimeouts,
  { cacheMiddleware = false, shareConnectionsWith }: DynamoClientOptions = {},
): DynamoDBClient {
  const connections = shareConnectionsWith
    ? {
        requestHandler: shareConnectionsWith.config.requestHandler,
        ...(timeouts ? { maxAttempts: timeouts.maxAttempts } : {}),
      }
    : transport(timeouts);
  if (!target.endpoints) {
    return new DynamoDBClient({ region: target.region, ...connections, cacheMiddleware });
  }
  return new DynamoDBClient({
    ...connections,
    cacheMiddleware,
    region: target.region,
    endpoint: target.endpoints.dynamodb,
    credentials: localCredentials(),
  });
}

export function createSnsClient(target: AwsTarget): SNSClient {
  if (!target.endpoints) return new SNSClient({ region: target.region });
  if (!target.endpoints.sns) throw new Error(`no local SNS endpoint: set ${AWS_TARGET_ENV.sns}`);
  return new SNSClient({
    region: target.region,
    endpoint: target.endpoints.sns,
    credentials: localCredentials(),
  });
}

export function createCloudWatchClient(target: AwsTarget): CloudWatchClient {
  if (!target.endpoints) return new CloudWatchClient({ region: target.region });
  if (!target.endpoints.cloudwatch) {
    throw new Error(`no local CloudWatch endpoint: set ${AWS_TARGET_ENV.cloudwatch}`);
  }
  return new CloudWatchClient({
    region: target.region,
    endpoint: target.endpoints.cloudwatch,
    credentials: localCredentials(),
  });
}

/** Document client over {@link createDynamoClient}; undefined attributes are dropped, never stored. */
export function createDocumentClient(target: AwsTarget, timeouts?: ClientTimeouts): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(createDynamoClient(target, timeouts), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/** Both clients of a target, built once per process (Lambda module scope, the CLI, a test). */
export interface AwsClients {
  readonly s3: S3Client;
  readonly dynamo: DynamoDBDocumentClient;
}

export function createAwsClients(target: AwsTarget, timeouts?: ClientTimeouts): AwsClients {
  return { s3: createS3Client(target, timeouts), dynamo: createDocumentClient(target, timeouts) };
}
