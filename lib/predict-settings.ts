import { Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IRole } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { CaptureStream } from '#lib/constructs/capture-stream.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import type { PowertoolsSettings, ResourceRefs } from '#lib/process-environment.ts';
import { checkModelName, checkSageMakerEndpointName, checkShare } from '#lib/prop-checks.ts';
import { type ModelBackend, predictVariables } from '#shared/inference/predict-environment.ts';
import { DEFAULT_SERVICE } from '#shared/monitoring/metrics.ts';

/**
 * What a predict process (the Lambda function or the ECS container) serves and reads, and the one
 * place that turns it into environment variables (`predictVariables` of
 * `shared/inference/predict-environment.ts`, beside their reader) and IAM grants, so both compute
 * options get the same configuration and the same least privilege.
 */

export interface PredictSettings {
  /** The registry's artifact bucket; the process reads `models/<modelName>/…` objects only. */
  readonly modelsBucket: IBucket;
  /** The registry table (champion alias, versions). */
  readonly registryTable: ITable;
  /** The online feature store. */
  readonly onlineTable: ITable;
  /** The registry model served, e.g. `churn`. */
  readonly modelName: string;
  readonly backend: ModelBackend;
  /**
   * Where prediction capture (shared/inference/capture.ts) lands for the drift job: the process writes
   * capture lines to stdout, and a {@link CaptureStream} on its log group writes them under
   * `captures/model=<modelName>/`.
   *
   * @default - none: nothing is captured and the drift alarms see no data
   */
  readonly outputsBucket?: IBucket;
  /**
   * Share of predictions captured, 0..1 (`KEEL_CAPTURE_SAMPLE_RATE`); 0 turns capture off.
   *
   * @default - 1 when an outputs bucket is given
   */
  readonly captureSampleRate?: number;
}

/**
 * Logging and metrics identity of the predict process, on Lambda and on ECS alike. The service name is
 * the `service` dimension of its metrics, the one the alarms watch: the same as locally and as the
 * drift job's metrics. The level stays INFO or below: Lambda's log-level filter counts a capture line
 * (it has no level) as INFO, so a higher level would drop every capture.
 */
export const PREDICT_POWERTOOLS: PowertoolsSettings = {
  serviceName: DEFAULT_SERVICE,
  metricsNamespace: 'Keel',
  logLevel: 'INFO',
};

/**
 * Throws, naming `owner` and what to fix, when the settings cannot work: part of the `validateProps`
 * of the constructs that take them. Values known only at deploy time are not checked.
 */
export function assertValidPredictSettings(owner: string, settings: PredictSettings): void {
  checkModelName(owner, settings.modelName);
  const rate = settings.captureSampleRate;
  checkShare(owner, 'captureSampleRate', rate);
  if (rate !== undefined && !settings.outputsBucket) {
    throw new Error(
      `${owner}: captureSampleRate needs an outputsBucket to capture to: add one or remove the rate`,
    );
  }
  if (settings.backend.kind === 'sagemaker') {
    checkSageMakerEndpointName(owner, settings.backend.endpointName);
  }
}

/** The buckets and tables the process is told about (as `RESOURCE_ENV` variables). */
export function predictResources(settings: PredictSettings): ResourceRefs {
  return {
    models: settings.modelsBucket.bucketName,
    modelRegistry: settings.registryTable.tableName,
    onlineFeatures: settings.onlineTable.tableName,
    ...(settings.outputsBucket ? { outputs: settings.outputsBucket.bucketName } : {}),
  };
}

/** The model variables `readPredictConfig` reads (resource names come from {@link predictResources}). */
export function modelVariables(settings: PredictSettings): Record<string, string> {
  return predictVariables({
    modelName: settings.modelName,
    backend: settings.backend,
    // Capture is on with a bucket to capture to, which the process is told as one of its resources.
    capture: settings.outputsBucket ? { sampleRate: settings.captureSampleRate } : undefined,
  });
}

/**
 * Exactly what serving needs: read the served model's objects, read the registry (GetItem, Query),
 * read customers from the online store (GetItem, BatchGetItem), invoke the one SageMaker endpoint
 * when that is the backend. No writes (captures leave as lines on stdout: {@link captureStreamFor}),
 * no listing, nothing else.
 */
export function grantPredictAccess(scope: Construct, role: IRole, settings: PredictSettings): void {
  // The registry's layout, `models/<name>/v<N>/…` (modelKeys in shared/registry/metadata.ts).
  const modelObjects = settings.modelsBucket.arnForObjects(`models/${settings.modelName}/*`);
  Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject'], resourceArns: [modelObjects] });
  acknowledgeWildcardResource(role, {
    resource: modelObjects,
    actions: ['s3:GetObject'],
    reason: `Reads the objects of model "${settings.modelName}" only; its versions are registered after deployment, so their keys cannot be listed`,
  });
  settings.registryTable.grant(role, 'dynamodb:GetItem', 'dynamodb:Query');
  settings.onlineTable.grant(role, 'dynamodb:GetItem', 'dynamodb:BatchGetItem');
  if (settings.backend.kind === 'sagemaker') {
    Grant.addToPrincipal({
      grantee: role,
      actions: ['sagemaker:InvokeEndpoint'],
      // Endpoint ARNs carry the name in lower case, whatever case it was created with.
      resourceArns: [
        Stack.of(scope).formatArn({
          service: 'sagemaker',
          resource: 'endpoint',
          resourceName: settings.backend.endpointName.toLowerCase(),
        }),
      ],
    });
  }
}

/**
 * The capture stream of a predict process whose logs go to `logGroup` (the function's, or the
 * container's), when capture is on: an outputs bucket and a sample rate above 0.
 */
export function captureStreamFor(
  scope: Construct,
  logGroup: ILogGroup,
  settings: PredictSettings,
  logRetention: RetentionDays | undefined,
): CaptureStream | undefined {
  if (!settings.outputsBucket || settings.captureSampleRate === 0) return undefined;
  return new CaptureStream(scope, 'Capture', {
    logGroup,
    bucket: settings.outputsBucket,
    modelName: settings.modelName,
    logRetention,
  });
}
