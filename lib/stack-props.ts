import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { DataStackProps } from '#lib/stacks/data-stack.ts';
import type { InferenceStackProps } from '#lib/stacks/inference-stack.ts';
import type { MonitoringStackProps } from '#lib/stacks/monitoring-stack.ts';
import type { PipelinesStackProps } from '#lib/stacks/pipelines-stack.ts';
import { configuredSchedules, type KeelConfig } from '#shared/config/keel-config.ts';

/**
 * A stage's configuration (`shared/config/keel-config.ts`, already validated) as the stacks' props:
 * plain translation into CDK types, so `bin/app.ts` only composes. The constructs still check their
 * own props.
 */

const optionalDays = (days: number | undefined) => (days === undefined ? undefined : Duration.days(days));

export function stackPropsOf(config: KeelConfig) {
  const { retention, inference, api } = config;
  // LOG_RETENTION_DAYS (shared/config/rules.ts) are exactly RetentionDays' values (checked by
  // test/infra/config.test.ts).
  const logRetention = retention.logDays as RetentionDays;
  const deadLetterRetention = Duration.days(retention.deadLetterDays);
  const schedules = configuredSchedules(config);
  return {
    data: {
      removalPolicy: config.data.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      deletionProtection: config.data.deletionProtection,
      accessLogsRetention: Duration.days(retention.accessLogDays),
      modelVersionRetention: Duration.days(retention.modelVersionDays),
      captureRetention: optionalDays(retention.captureDays),
      predictionRetention: optionalDays(retention.predictionDays),
      pointInTimeRecoveryDays: retention.backupDays,
      logRetention,
    } satisfies Partial<DataStackProps>,
    inference: {
      modelName: config.modelName,
      inference: inference.compute,
      modelBackend:
        inference.model === 'sagemaker'
          ? { kind: 'sagemaker', endpointName: inference.sagemakerEndpoint! }
          : { kind: 'onnx' },
      provisionedConcurrency: inference.provisionedConcurrency,
      memorySize: inference.memoryMb,
      captureSampleRate: config.capture.apiSampleRate,
      throttle: api.throttle,
      wafRateLimitPer5Minutes: api.wafRateLimitPer5Minutes,
      crossAccountCallers: api.crossAccountCallers,
      logRetention,
    } satisfies Partial<InferenceStackProps>,
    pipelines: {
      modelName: config.modelName,
      schedules,
      logRetention,
      deadLetterRetention,
      maxBadRowShare: config.etl.maxBadRowShare,
      batchCaptureSampleRate: config.capture.batchSampleRate,
      approval: {
        timeout: Duration.hours(config.retrain.approval.timeoutHours),
        emails: config.retrain.approval.emails,
        webhookUrls: config.retrain.approval.webhookUrls,
      },
      sagemakerTraining:
        config.retrain.engine === 'sagemaker'
          ? {
              instanceType: config.retrain.sagemaker.instanceType,
              instanceCount: config.retrain.sagemaker.instanceCount,
              maxRuntime: Duration.hours(config.retrain.sagemaker.maxRuntimeHours),
              volumeSizeGb: config.retrain.sagemaker.volumeSizeGb,
              image: config.retrain.sagemaker.image,
            }
          : undefined,
    } satisfies Partial<PipelinesStackProps>,
    monitoring: {
      alarmOptions: config.alarms,
      onCallEmail: config.onCall.email,
      onCallWebhookUrl: config.onCall.webhookUrl,
      retrainOnDrift: config.retrain.onDrift,
      schedules,
      deadLetterRetention,
    } satisfies Partial<MonitoringStackProps>,
    /** The monitoring stack's `rollouts`, less the data stack's buckets and tables. */
    rollouts: { modelName: config.modelName, logRetention },
    /** The monitoring stack's `driftJob`, less the data stack's buckets and tables. */
    driftJob: {
      modelName: config.modelName,
      scheduleEnabled: config.schedules.drift.enabled,
      logRetention,
    },
    /** The monitoring stack's `qualityJob`, less the data stack's buckets and tables. */
    qualityJob: {
      modelName: config.modelName,
      scheduleEnabled: config.schedules.quality.enabled,
      logRetention,
    },
  };
}
