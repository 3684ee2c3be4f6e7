import { CfnOutput, CrossStackReferences, type Duration, ReferenceStrength, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { addDeadLetterQueueOutputs } from '#lib/constructs/dead-letter-queue.ts';
import { DriftJob } from '#lib/constructs/drift-job.ts';
import { KeelDashboard } from '#lib/constructs/keel-dashboard.ts';
import { MonitoringAlarms } from '#lib/constructs/monitoring-alarms.ts';
import { assertValidOnCallEndpoints, OnCallTopic } from '#lib/constructs/oncall-topic.ts';
import { QualityJob } from '#lib/constructs/quality-job.ts';
import { RetrainOnAlarm } from '#lib/constructs/retrain-on-alarm.ts';
import { RolloutGuard } from '#lib/constructs/rollout-guard.ts';
import type { ScheduledJobProps } from '#lib/constructs/scheduled-job.ts';
import {
  type DataResources,
  type KeelStackProps,
  type ModelProps,
  modelNameOf,
} from '#lib/stacks/common-props.ts';
import type { AlarmCatalog } from '#shared/monitoring/alarm-catalog.ts';
import {
  ALARM_IDS,
  alarmDefinitions,
  DEAD_LETTER_QUEUES,
  type DeadLetterQueueId,
  RESOURCE_ALARM_PREFIX,
} from '#shared/monitoring/alarm-definitions.ts';
import {
  type MonitoredResourcesInput,
  MonitoringOptionsError,
  type MonitoringOptionsInput,
} from '#shared/monitoring/alarm-options.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { PIPELINES, type PipelineName } from '#shared/pipelines/definitions.ts';
import { type MonitoringJobName, SCHEDULES, type ScheduleDefinition } from '#shared/pipelines/schedules.ts';
import { assertValidStage } from '#shared/resources.ts';

/** Props of {@link MonitoringStack}. */
export interface MonitoringStackProps extends KeelStackProps {
  /** The pipelines' state machines (`PipelinesStack.stateMachines`): a failed execution alarms. */
  readonly stateMachines: Readonly<Record<PipelineName, IStateMachine>>;
  /** The schedules' dead-letter queue (`PipelinesStack.schedules.deadLetterQueue`): any message alarms. */
  readonly schedulesDeadLetterQueue: IQueue;
  /**
   * The approvals topic's dead-letter queue (`PipelinesStack.approvals.deadLetterQueue`): an approval
   * request or outcome SNS could not deliver to an approver alarms.
   *
   * @default - none
   */
  readonly approvalsDeadLetterQueue?: IQueue;
  /**
   * The pipelines' notifications topic (`PipelinesStack.notifications`): failures, promotions, kept
   * champions and rollout decisions. On-call's endpoints are subscribed to it as to the on-call topic.
   *
   * @default - none: the pipelines' notices reach nobody on-call
   */
  readonly pipelineNotifications?: ITopic;
  /**
   * The predict function (`InferenceStack.predictFunction.function`): its errors and throttles alarm.
   *
   * @default - none (ECS serving): only the handler's EMF metrics are watched
   */
  readonly predictFunction?: IFunction;
  /**
   * The predict function's log group (`InferenceStack.predictFunction.logGroup`), queried by the
   * dashboard's model-version widget.
   *
   * @default - none: the widget explains where the version is found
   */
  readonly predictLogGroup?: ILogGroup;
  /**
   * The inference REST API (`InferenceStack.api.api`): API Gateway's latency p99 alarms, and its
   * latency and 4xx/5xx are graphed.
   *
   * @default - none
   */
  readonly api?: RestApi;
  /**
   * Thresholds, periods and evaluation windows of the alarms (see `MonitoringOptionsInput` in
   * `shared/monitoring/alarm-options.ts`); validated at synth, each bad key named.
   *
   * @default - the defaults of shared/monitoring/alarm-options.ts
   */
  readonly alarmOptions?: Omit<MonitoringOptionsInput, 'service'>;
  /**
   * On-call email address fixed at synth time (`-c onCallEmail=…`).
   *
   * @default - the deploy-time parameter `OnCallEmail` (empty: no email subscription)
   */
  readonly onCallEmail?: string;
  /**
   * On-call HTTPS webhook fixed at synth time (`-c onCallWebhookUrl=https://…`).
   *
   * @default - the deploy-time parameter `OnCallWebhookUrl` (empty: no webhook subscription)
   */
  readonly onCallWebhookUrl?: string;
  /**
   * Run the hourly drift job (`lambdas/drift/handler.ts`) here, on the drift schedule of `SCHEDULES`,
   * over the data stack's buckets and tables; its errors, throttles and dead letters alarm too.
   *
   * @default - none: no drift job runs, and the drift alarms see no data (state kept, never ALARM)
   */
  readonly driftJob?: MonitoringJobProps;
  /**
   * Run the daily quality job (`lambdas/quality/handler.ts`) here, on the quality schedule of
   * `SCHEDULES`: captured answers joined with outcomes, consistency and skew; its errors, throttles
   * and dead letters alarm too.
   *
   * @default - none: no quality job runs, and the quality alarms see no data (state kept, never ALARM)
   */
  readonly qualityJob?: MonitoringJobProps;
  /**
   * Decide rollouts here, over the data stack's registry: the function the pipelines stack's rollout
   * state machine invokes by name at the end of a bake, and the guard an EventBridge rule calls when a
   * guardrail alarm fires (lib/constructs/rollout-guard.ts). Both page on the on-call topic.
   *
   * @default - none: a rollout's decision fails (its function does not exist) and no guard ends it
   */
  readonly rollouts?: DataResources &
    ModelProps & {
      /** @default - RetentionDays.ONE_MONTH */
      readonly logRetention?: RetentionDays;
    };
  /**
   * Start the retrain state machine (with the weekly schedule's input: promote only if better) when
   * the data-drift page alarm goes to ALARM.
   *
   * @default - false: drift pages on-call, who decides (a broken feed must not be trained on)
   */
  readonly retrainOnDrift?: boolean;
  /**
   * The schedules (a stage's `configuredSchedules`): the drift job runs on the drift one, and retrain
   * on drift starts with the retrain one's input.
   *
   * @default - SCHEDULES of shared/pipelines/schedules.ts
   */
  readonly schedules?: readonly ScheduleDefinition[];
  /**
   * How long the on-call topic's and the drift job's dead-letter queues keep what they could not deliver.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
}

/** Where a monitoring job runs and how its schedule and logs are kept. */
export type MonitoringJobProps = DataResources &
  ModelProps & {
    /** @default - true */
    readonly scheduleEnabled?: boolean;
    /** @default - RetentionDays.ONE_MONTH */
    readonly logRetention?: RetentionDays;
  };

/** Severity of the per-resource alarms: the paging signals are the API's latency and 5xx rate and drift. */
const RESOURCE_SEVERITY = 'warn' as const;

/** A dead-letter queue as the alarm catalog watches it, at its DEAD_LETTER_QUEUES severity. */
const watchedQueue = (id: DeadLetterQueueId, queue: IQueue) => ({
  id,
  name: queue.queueName,
  severity: DEAD_LETTER_QUEUES[id],
});

const PIPELINE_NAMES = Object.keys(PIPELINES) as PipelineName[];

/**
 * Keel's monitoring: the on-call topic (whose endpoints receive the pipelines' notifications too), one
 * CloudWatch alarm per definition of `shared/monitoring/alarm-definitions.ts` over the resources of the
 * other stacks (every dead-letter queue among them), the paging composite, the dashboard and,
 * optionally, retraining started by the data-drift page alarm. Each of its dead-letter queues' URL and
 * ARN is an output (`deadLetterQueueOutputs`).
 */
export class MonitoringStack extends Stack {
  public readonly onCall: OnCallTopic;
  public readonly alarms: MonitoringAlarms;
  public readonly dashboard: KeelDashboard;
  public readonly catalog: AlarmCatalog;
  public readonly retrainOnDrift?: RetrainOnAlarm;
  public readonly driftJob?: DriftJob;
  public readonly qualityJob?: QualityJob;
  public readonly rollouts?: RolloutGuard;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    // Before super(): a bad prop must not leave a half-built stack in the app.
    assertValidStage(props.stage);
    assertValidOnCallEndpoints(`MonitoringStack ${id}`, {
      email: props.onCallEmail,
      webhookUrl: props.onCallWebhookUrl,
    });
    // Every Keel metric (predict handler, drift job; in AWS and locally) carries the default service.
    const options: MonitoringOptionsInput = { ...props.alarmOptions };
    const baseResources = {
      api: props.api
        ? { name: props.api.restApiName, stage: props.api.deploymentStage.stageName }
        : undefined,
      functions: props.predictFunction
        ? [{ id: 'predict', name: props.predictFunction.functionName, severity: RESOURCE_SEVERITY }]
        : [],
      // Named keys only: the prop may be the PipelineStateMachines construct itself.
      stateMachines: PIPELINE_NAMES.map((name) => ({
        id: name,
        arn: props.stateMachines[name].stateMachineArn,
        severity: RESOURCE_SEVERITY,
      })),
      queues: [
        watchedQueue('schedules', props.schedulesDeadLetterQueue),
        ...(props.approvalsDeadLetterQueue
          ? [watchedQueue('approvals', props.approvalsDeadLetterQueue)]
          : []),
      ],
    } satisfies MonitoredResourcesInput;
    const catalogOf = (resources: MonitoredResourcesInput) => {
      try {
        return alarmDefinitions(options, resources);
      } catch (error) {
        if (error instanceof MonitoringOptionsError) {
          throw new Error(`MonitoringStack ${id}: ${error.message} (fix the alarmOptions prop)`);
        }
        throw error;
      }
    };
    // Checked before super(); built again below once the drift job's resources exist.
    catalogOf(baseResources);
    super(scope, id, { description: `Keel ${props.stage}: alarms, on-call topic and dashboard`, ...props });
    // Exports/imports: the other stacks cannot remove a resource these alarms still watch.
    CrossStackReferences.of(this).consume(ReferenceStrength.STRONG);
    const { stage } = props;
    const schedules = props.schedules ?? SCHEDULES;

    this.onCall = new OnCallTopic(this, 'OnCall', {
      displayName: `Keel ${stage} on-call`,
      email: props.onCallEmail,
      webhookUrl: props.onCallWebhookUrl,
      deadLetterRetention: props.deadLetterRetention,
    });
    if (props.pipelineNotifications) {
      this.onCall.deliverFrom('PipelineNotifications', props.pipelineNotifications);
    }
    const jobProps = (job: MonitoringJobName, where: MonitoringJobProps): ScheduledJobProps => {
      const schedule = schedules.find((s) => s.target === job);
      if (!schedule)
        throw new Error(`MonitoringStack ${id}: SCHEDULES has no ${job} schedule to run the job by`);
      return {
        buckets: where.buckets,
        tables: where.tables,
        modelName: modelNameOf(where),
        enabled: where.scheduleEnabled,
        schedule,
        logRetention: where.logRetention,
        monitoringOptions: props.alarmOptions,
        deadLetterRetention: props.deadLetterRetention,
        onCallTopic: this.onCall.topic,
      };
    };
    if (props.driftJob) this.driftJob = new DriftJob(this, 'DriftJob', jobProps('drift', props.driftJob));
    if (props.qualityJob) {
      this.qualityJob = new QualityJob(this, 'QualityJob', jobProps('quality', props.qualityJob));
    }
    if (props.rollouts) {
      this.rollouts = new RolloutGuard(this, 'Rollouts', {
        stage,
        buckets: props.rollouts.buckets,
        tables: props.rollouts.tables,
        modelName: modelNameOf(props.rollouts),
        onCallTopic: this.onCall.topic,
        logRetention: props.rollouts.logRetention,
        deadLetterRetention: props.deadLetterRetention,
      });
    }
    if (props.retrainOnDrift ?? false) {
      const retrain = schedules.find((schedule) => schedule.target === 'retrain');
      this.retrainOnDrift = new RetrainOnAlarm(this, 'RetrainOnDrift', {
        // By name: the rule is made before the alarms, so that its dead-letter queue is among what
        // they watch.
        alarm: Alarm.fromAlarmName(this, 'DataDriftPageAlarm', alarmName(stage, ALARM_IDS.dataDriftPage)),
        stateMachine: props.stateMachines.retrain,
        input: retrain?.input ?? {},
      });
    }
    const jobs = [
      ...(this.driftJob ? [{ id: 'drift', job: this.driftJob } as const] : []),
      ...(this.qualityJob ? [{ id: 'quality', job: this.qualityJob } as const] : []),
    ];
    // This stack's own dead-letter queues. On-call's holds what SNS could not deliver to on-call, so its
    // alarm cannot count on the on-call topic alone: it still notifies it (one endpoint may have failed
    // while the other works, and a webhook that was down may answer again by the time the alarm fires;
    // the alarm notifies once per change of state, so a notice that fails too cannot loop), it pages,
    // and it shows on the dashboard and in `keel --stage S alarms`, which read CloudWatch, not SNS.
    const ownQueues: { readonly id: DeadLetterQueueId; readonly queue: IQueue }[] = [
      ...jobs.map(({ id, job }) => ({ id, queue: job.deadLetterQueue })),
      // A failed guard: a rollout that may still run with a guardrail in ALARM, or a page that was lost.
      ...(this.rollouts ? [{ id: 'rollout-guard', queue: this.rollouts.deadLetterQueue } as const] : []),
      ...(this.retrainOnDrift
        ? [{ id: 'retrain-on-drift', queue: this.retrainOnDrift.deadLetterQueue } as const]
        : []),
      { id: 'on-call', queue: this.onCall.deadLetterQueue },
    ];
    for (const { id: queueId, queue } of ownQueues) addDeadLetterQueueOutputs(queueId, queue);
    const catalog = catalogOf({
      ...baseResources,
      functions: [
        ...baseResources.functions,
        ...jobs.map(({ id, job }) => ({
          id,
          name: job.function.function.functionName,
          severity: RESOURCE_SEVERITY,
        })),
      ],
      queues: [
        ...baseResources.queues,
        ...ownQueues.map(({ id: queueId, queue }) => watchedQueue(queueId, queue)),
      ],
    });
    this.catalog = catalog;

    this.alarms = new MonitoringAlarms(this, 'Alarms', {
      stage,
      alarms: catalog.alarms,
      page: catalog.page,
      topic: this.onCall.topic,
    });
    this.dashboard = new KeelDashboard(this, 'Dashboard', {
      dashboardName: `keel-${stage}`,
      predictLogGroup: props.predictLogGroup,
      api: props.api
        ? { name: props.api.restApiName, stage: props.api.deploymentStage.stageName }
        : undefined,
      stateMachines: {
        ETL: props.stateMachines.etl,
        Retrain: props.stateMachines.retrain,
        Batch: props.stateMachines.batch,
      },
      deadLetterAlarms: catalog.alarms
        .filter((a) => a.id.startsWith(RESOURCE_ALARM_PREFIX.dlqDepth))
        .map((a) => this.alarms.alarms.get(a.id)!),
    });

    new CfnOutput(this, 'OnCallTopicArn', {
      value: this.onCall.topic.topicArn,
      exportName: `keel-${stage}-oncall-topic-arn`,
    });
    new CfnOutput(this, 'DashboardName', { value: `keel-${stage}` });
  }
}
