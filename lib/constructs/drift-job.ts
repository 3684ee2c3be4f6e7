import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { DRIFT_REPORT_PREFIX } from '#shared/drift/job.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { CAPTURE_PREFIX } from '#shared/inference/capture.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';
import type { ScheduleDefinition } from '#shared/pipelines/schedules.ts';
import type { BucketRole, TableRole } from '#shared/resources.ts';

/** Props of {@link DriftJob}. */
export interface DriftJobProps {
  /** The data stack's buckets, by role: captures are read from and reports written to `outputs`. */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables, by role: the champion is read from `modelRegistry`. */
  readonly tables: Readonly<Record<TableRole, ITable>>;
  /** Registry name of the model whose captured predictions are compared with its baseline. */
  readonly modelName: string;
  /** The drift schedule (`SCHEDULES`, target `drift`): its expression and input. */
  readonly schedule: ScheduleDefinition;
  /**
   * Whether the schedule runs the job.
   *
   * @default - true
   */
  readonly enabled?: boolean;
  /**
   * How long the job's log group keeps its logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * The alarm options the monitoring stack's alarms use, so the job classifies drift (its report, its
   * statuses) at the same thresholds (`KEEL_ALARM_OPTIONS`, read by `lambdas/drift/handler.ts`).
   *
   * @default - none: the defaults of shared/monitoring/alarm-options.ts
   */
  readonly monitoringOptions?: MonitoringOptionsInput;
  /**
   * How long the dead-letter queue keeps an undelivered event or failed invocation.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
  /**
   * The on-call topic the job sends its drift notice to when a run warns or pages: the features that
   * moved with their PSI, the window, the model version and the report (what an alarm message cannot say).
   * The job may publish to it and use its key.
   * @default - no notice: the job publishes its metrics and report only
   */
  readonly onCallTopic?: ITopic;
}

/**
 * The hourly drift job (`lambdas/drift/handler.ts`): the champion's captured predictions of the last
 * hour against its training baseline, drift metrics as EMF (what the drift alarms watch), the report
 * under `drift-reports/`. EventBridge invokes it asynchronously, so both an undeliverable event and a
 * failed invocation land in one encrypted dead-letter queue.
 */
export class DriftJob extends Construct {
  public readonly function: KeelFunction;
  public readonly rule: Rule;
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: DriftJobProps) {
    super(scope, id);
    this.validateProps(props);
    const { buckets, tables } = props;
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor:
        'the drift schedule (EventBridge) and of failed drift invocations (Lambda on-failure destination)',
      retention: props.deadLetterRetention,
    });
    this.function = new KeelFunction(this, 'Job', {
      entry: 'lambdas/drift/handler.ts',
      handler: 'handler',
      description:
        'Keel drift job: captured predictions vs the champion’s baseline → drift metrics and report',
      serviceName: 'keel-drift',
      memorySize: 1024,
      timeout: Duration.minutes(5),
      // pipelineContext() reads every resource name.
      resources: Object.fromEntries([
        ...Object.entries(buckets).map(([role, bucket]) => [role, bucket.bucketName]),
        ...Object.entries(tables).map(([role, table]) => [role, table.tableName]),
      ]),
      environment: {
        [KEEL_ENV.modelName]: props.modelName,
        ...(Object.keys(props.monitoringOptions ?? {}).length > 0
          ? { [KEEL_ENV.alarmOptions]: JSON.stringify(props.monitoringOptions) }
          : {}),
        ...(props.onCallTopic ? { [KEEL_ENV.onCallTopicArn]: props.onCallTopic.topicArn } : {}),
      },
      // EventBridge invokes it asynchronously: a run that fails twice lands in the dead-letter queue.
      asyncInvocation: { onFailure: this.deadLetterQueue, retryAttempts: 1, maxEventAge: Duration.hours(1) },
      logRetention: props.logRetention,
    });
    const role = this.function.role;
    // sns:Publish on the topic, and the exact key actions SNS asks of a publisher on an encrypted topic
    // (grantPublish would give kms:GenerateDataKey*, a wildcard for no need).
    if (props.onCallTopic) {
      Grant.addToPrincipal({
        grantee: role,
        actions: ['sns:Publish'],
        resourceArns: [props.onCallTopic.topicArn],
      });
      props.onCallTopic.masterKey?.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    const objects = (bucket: IBucket, prefix: string, actions: string[], why: string) => {
      const resource = bucket.arnForObjects(`${prefix}*`);
      Grant.addToPrincipal({ grantee: role, actions, resourceArns: [resource] });
      acknowledgeWildcardResource(role, {
        resource,
        actions,
        reason: `${why}: object keys under ${prefix} are only known at run time`,
      });
    };
    const captures = `${CAPTURE_PREFIX}model=${props.modelName}/`;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [buckets.outputs.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${captures}*`] } },
      }),
    );
    objects(buckets.outputs, captures, ['s3:GetObject'], 'Reads the captured predictions of its window');
    objects(buckets.outputs, DRIFT_REPORT_PREFIX, ['s3:PutObject'], 'Writes the drift report of its window');
    objects(buckets.models, `models/${props.modelName}/`, ['s3:GetObject'], 'Reads the champion’s baseline');
    tables.modelRegistry.grant(role, 'dynamodb:GetItem');

    this.rule = new Rule(this, 'Schedule', {
      description: `Keel: ${props.schedule.description}`,
      schedule: Schedule.expression(props.schedule.expression),
      enabled: props.enabled ?? true,
      targets: [
        new LambdaFunction(this.function.function, {
          event: RuleTargetInput.fromObject(props.schedule.input),
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 3,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }

  /** Refuses a schedule that is not the drift job's. */
  private validateProps(props: DriftJobProps): void {
    if (props.schedule.target !== 'drift') {
      throw new Error(
        `DriftJob ${this.node.path}: schedule ${props.schedule.id} targets "${props.schedule.target}": pass the drift schedule`,
      );
    }
  }
}
