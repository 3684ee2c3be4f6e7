import { CfnOutput, CrossStackReferences, type Duration, ReferenceStrength, Stack, Token } from 'aws-cdk-lib';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ApprovalsTopic } from '#lib/constructs/approvals-topic.ts';
import { addDeadLetterQueueOutputs } from '#lib/constructs/dead-letter-queue.ts';
import { PipelineFunctions } from '#lib/constructs/pipeline-functions.ts';
import { PipelineSchedules } from '#lib/constructs/pipeline-schedules.ts';
import {
  PipelineStateMachines,
  type SageMakerTrainingProps,
} from '#lib/constructs/pipeline-state-machines.ts';
import {
  type DataResources,
  type KeelStackProps,
  type ModelProps,
  modelNameOf,
} from '#lib/stacks/common-props.ts';
import { isMonitoringJob, SCHEDULES, type ScheduleDefinition } from '#shared/pipelines/schedules.ts';
import { assertValidStage } from '#shared/resources.ts';
import {
  builtInXgboostImage,
  XGBOOST_IMAGE_ACCOUNTS,
  XGBOOST_IMAGE_VERSION,
} from '#shared/training/sagemaker.ts';

/** Props of {@link PipelinesStack}. */
export interface PipelinesStackProps extends KeelStackProps, DataResources, ModelProps {
  /**
   * Whether the EventBridge schedules start the pipelines.
   *
   * @default - true
   */
  readonly schedulesEnabled?: boolean;
  /**
   * The schedules (a stage's `configuredSchedules`); those targeting a monitoring job (drift, quality) are left to the
   * monitoring stack.
   *
   * @default - SCHEDULES of shared/pipelines/schedules.ts
   */
  readonly schedules?: readonly ScheduleDefinition[];
  /**
   * How long the task functions' and state machines' log groups keep their logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * How long the schedules' dead-letter queue keeps an undelivered start.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
  /**
   * Share of quarantined rows above which an ETL run fails, when its execution input sets none.
   *
   * @default - the ETL's own (1%)
   */
  readonly maxBadRowShare?: number;
  /**
   * Share of batch-scored rows captured for the drift job, 0..1; 0 turns batch capture off.
   *
   * @default - 1 (every row)
   */
  readonly batchCaptureSampleRate?: number;
  /**
   * The retrain's approval gate: who is asked (each email and HTTPS endpoint is subscribed to the
   * approvals topic) and how long a retrain waits for an answer.
   *
   * @default - nobody subscribed (requests are still listed by `keel models approvals`); 24 hours
   */
  readonly approval?: {
    readonly timeout?: Duration;
    readonly emails?: readonly string[];
    readonly webhookUrls?: readonly string[];
  };
  /**
   * Retrain on SageMaker (stage config `retrain.engine: "sagemaker"` and `retrain.sagemaker`). Without
   * `image`, AWS's built-in XGBoost image of the stack's region, which must be one Keel knows.
   *
   * @default - the Lambda trainer
   */
  readonly sagemakerTraining?: Omit<SageMakerTrainingProps, 'image'> & { readonly image?: string };
}

/**
 * ETL, retraining, batch scoring and the rollout decision: their functions (the rollout's are the
 * monitoring stack's), state machines, schedules and notifications. The notifications topic has no
 * subscriber here: the monitoring stack subscribes on-call's endpoints to it
 * (`MonitoringStackProps.pipelineNotifications`). Approval requests go to the approvers' own topic.
 */
export class PipelinesStack extends Stack {
  public readonly stateMachines: PipelineStateMachines;
  public readonly notifications: Topic;
  public readonly approvals: ApprovalsTopic;
  public readonly schedules: PipelineSchedules;

  constructor(scope: Construct, id: string, props: PipelinesStackProps) {
    assertValidStage(props.stage);
    super(scope, id, {
      description: `Keel ${props.stage}: ETL, retraining and batch scoring pipelines`,
      ...props,
    });
    // Exports/imports: the data stack cannot remove a bucket or table these pipelines still use.
    CrossStackReferences.of(this).consume(ReferenceStrength.STRONG);
    const modelName = modelNameOf(props);
    const training = props.sagemakerTraining;
    const trainingImage = training && (training.image ?? this.builtInImage());
    const functions = new PipelineFunctions(this, 'Functions', {
      buckets: props.buckets,
      tables: props.tables,
      modelName,
      logRetention: props.logRetention,
      maxBadRowShare: props.maxBadRowShare,
      batchCaptureSampleRate: props.batchCaptureSampleRate,
      ...(training ? { retrainEngine: 'sagemaker', stage: props.stage, trainingImage: training.image } : {}),
    });
    this.notifications = new Topic(this, 'Notifications', {
      displayName: `Keel ${props.stage} pipeline notifications`,
      masterKey: new Key(this, 'NotificationsKey', {
        enableKeyRotation: true,
        description: 'Keel pipeline notifications',
      }),
      enforceSSL: true,
    });
    this.approvals = new ApprovalsTopic(this, 'Approvals', {
      displayName: `Keel ${props.stage} approvals`,
      emails: props.approval?.emails,
      webhookUrls: props.approval?.webhookUrls,
      deadLetterRetention: props.deadLetterRetention,
    });
    this.stateMachines = new PipelineStateMachines(this, 'StateMachines', {
      stage: props.stage,
      functions,
      notifications: this.notifications,
      approval: {
        topic: this.approvals.topic,
        registry: props.tables.modelRegistry,
        modelName,
        timeout: props.approval?.timeout,
      },
      logRetention: props.logRetention,
      ...(training && trainingImage ? { sagemaker: { ...training, image: trainingImage } } : {}),
    });
    this.schedules = new PipelineSchedules(this, 'Schedules', {
      // The monitoring jobs' schedules join when the monitoring stack provides their targets.
      schedules: (props.schedules ?? SCHEDULES).filter((schedule) => !isMonitoringJob(schedule.target)),
      targets: {
        batch: this.stateMachines.batch,
        retrain: this.stateMachines.retrain,
        etl: this.stateMachines.etl,
      },
      enabled: props.schedulesEnabled,
      deadLetterRetention: props.deadLetterRetention,
    });
    for (const [name, machine] of Object.entries({
      Etl: this.stateMachines.etl,
      Retrain: this.stateMachines.retrain,
      BatchScoring: this.stateMachines.batch,
      Rollout: this.stateMachines.rollout,
    })) {
      new CfnOutput(this, `${name}StateMachineArn`, {
        value: machine.stateMachineArn,
        exportName: `keel-${props.stage}-${name.toLowerCase()}-state-machine-arn`,
      });
    }
    new CfnOutput(this, 'ApprovalsTopicArn', {
      value: this.approvals.topic.topicArn,
      exportName: `keel-${props.stage}-approvals-topic-arn`,
    });
    new CfnOutput(this, 'NotificationsTopicArn', {
      value: this.notifications.topicArn,
      exportName: `keel-${props.stage}-pipeline-notifications-topic-arn`,
    });
    addDeadLetterQueueOutputs('schedules', this.schedules.deadLetterQueue);
    addDeadLetterQueueOutputs('approvals', this.approvals.deadLetterQueue);
  }

  /** AWS's built-in XGBoost image of the stack's region; a region Keel does not know it for is refused. */
  private builtInImage(): string {
    const region = this.region;
    const known = Object.keys(XGBOOST_IMAGE_ACCOUNTS).join(', ');
    const image = Token.isUnresolved(region) ? undefined : builtInXgboostImage(region);
    if (image === undefined) {
      throw new Error(
        `retrain.sagemaker.image: required in ${Token.isUnresolved(region) ? 'a stack without a region' : `region ${region}`}, where Keel does not know the account of AWS's built-in XGBoost ${XGBOOST_IMAGE_VERSION} image (it knows ${known}): set it to that image's URI`,
      );
    }
    return image;
  }
}
