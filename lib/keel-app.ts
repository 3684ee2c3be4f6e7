import type { App, Environment } from 'aws-cdk-lib';
import { stackPropsOf } from '#lib/stack-props.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack } from '#lib/stacks/inference-stack.ts';
import { MonitoringStack } from '#lib/stacks/monitoring-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';
import type { KeelConfig } from '#shared/config/keel-config.ts';

/** What {@link addKeelStacks} deploys. */
export interface KeelStage {
  /** Deployment stage: the stacks are `Keel-<stage>-Data`, `-Inference`, `-Pipelines`, `-Monitoring`. */
  readonly stage: string;
  /** Account and region of every stack. */
  readonly env: Environment;
  /** The stage's validated configuration (`loadKeelConfig`, `parseKeelConfig`). */
  readonly config: KeelConfig;
}

/** Keel's four stacks for one stage, wired to each other and configured by the stage's config. */
export function addKeelStacks(app: App, { stage, env, config }: KeelStage) {
  const props = stackPropsOf(config);
  const data = new DataStack(app, `Keel-${stage}-Data`, { stage, env, ...props.data });
  const inference = new InferenceStack(app, `Keel-${stage}-Inference`, {
    stage,
    env,
    buckets: data.buckets,
    tables: data.tables,
    ...props.inference,
  });
  const pipelines = new PipelinesStack(app, `Keel-${stage}-Pipelines`, {
    stage,
    env,
    buckets: data.buckets,
    tables: data.tables,
    ...props.pipelines,
  });
  const monitoring = new MonitoringStack(app, `Keel-${stage}-Monitoring`, {
    stage,
    env,
    stateMachines: pipelines.stateMachines,
    schedulesDeadLetterQueue: pipelines.schedules.deadLetterQueue,
    approvalsDeadLetterQueue: pipelines.approvals.deadLetterQueue,
    // On-call hears of the pipelines' failures, promotions and rollout decisions; approval requests
    // stay with the approvers (retrain.approval).
    pipelineNotifications: pipelines.notifications,
    predictFunction: inference.predictFunction?.function,
    predictLogGroup: inference.predictFunction?.logGroup,
    api: inference.api.api,
    // The hourly drift job publishes the metrics the drift alarms watch.
    driftJob: { buckets: data.buckets, tables: data.tables, ...props.driftJob },
    // The daily quality job publishes the metrics the quality alarms watch.
    qualityJob: { buckets: data.buckets, tables: data.tables, ...props.qualityJob },
    // The rollout decision and guard; the pipelines stack's rollout state machine invokes the decision.
    rollouts: { buckets: data.buckets, tables: data.tables, ...props.rollouts },
    // Without onCall.email / onCall.webhookUrl, the stack's deploy-time parameters OnCallEmail /
    // OnCallWebhookUrl take them.
    ...props.monitoring,
  });
  return { data, inference, pipelines, monitoring };
}
