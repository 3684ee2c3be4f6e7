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
import { KEEL_ENV } from '#shared/env.ts';
import { CAPTURE_PREFIX } from '#shared/inference/capture.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';
import type { MonitoringJobName, ScheduleDefinition } from '#shared/pipelines/schedules.ts';
import type { BucketRole, TableRole } from '#shared/resources.ts';

/** Props of a {@link ScheduledJob}: the drift job's and the quality job's. */
export interface ScheduledJobProps {
  /** The data stack's buckets, by role (each job is granted the prefixes it reads and writes). */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables, by role (each job is granted what it reads of `modelRegistry`). */
  readonly tables: Readonly<Record<TableRole, ITable>>;
  /** Registry name of the model whose captured predictions the job reads. */
  readonly modelName: string;
  /** The job's schedule (`SCHEDULES`, target the job): its expression and input. */
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
   * The alarm options the monitoring stack's alarms use, so the job judges at the same thresholds
   * (`KEEL_ALARM_OPTIONS`, read by its handler).
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
   * The on-call topic the job sends its notice to when a run warns or pages: what an alarm message
   * cannot say (the version, the features, the window, the report). The job may publish to it and use
   * its key.
   * @default - no notice: the job publishes its metrics and report only
   */
  readonly onCallTopic?: ITopic;
}

/** The function a {@link ScheduledJob} runs: what differs between the jobs. */
export interface ScheduledJobFunction {
  readonly job: MonitoringJobName;
  readonly entry: string;
  readonly description: string;
  readonly serviceName: string;
  readonly memorySize: number;
  readonly timeout: Duration;
}

/**
 * A monitoring job: one Lambda that an EventBridge schedule invokes asynchronously, so both an
 * undeliverable event and a failed invocation land in one encrypted dead-letter queue, and that may
 * page on-call. Each may read its model's captures, registry item and artifacts; the jobs grant the
 * rest of what they read and write with {@link grantObjects} and {@link grantList}.
 */
export abstract class ScheduledJob extends Construct {
  public readonly function: KeelFunction;
  public readonly rule: Rule;
  public readonly deadLetterQueue: Queue;

  protected constructor(scope: Construct, id: string, props: ScheduledJobProps, fn: ScheduledJobFunction) {
    super(scope, id);
    if (props.schedule.target !== fn.job) {
      throw new Error(
        `${this.constructor.name} ${this.node.path}: schedule ${props.schedule.id} targets "${props.schedule.target}": pass the ${fn.job} schedule`,
      );
    }
    const { buckets, tables } = props;
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor: `the ${fn.job} schedule (EventBridge) and of failed ${fn.job} invocations (Lambda on-failure destination)`,
      retention: props.deadLetterRetention,
    });
    this.function = new KeelFunction(this, 'Job', {
      entry: fn.entry,
      handler: 'handler',
      description: fn.description,
      serviceName: fn.serviceName,
      memorySize: fn.memorySize,
      timeout: fn.timeout,
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

    // Every monitoring job reads its model's captured answers, registry item and artifacts.
    const captures = `${CAPTURE_PREFIX}model=${props.modelName}/`;
    this.grantList(buckets.outputs, captures);
    this.grantObjects(
      buckets.outputs,
      captures,
      ['s3:GetObject'],
      `Reads the captured predictions of its window`,
    );
    this.grantObjects(
      buckets.models,
      `models/${props.modelName}/`,
      ['s3:GetObject'],
      `Reads the metadata and baseline of the versions it judges`,
    );
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

  /** `actions` on the objects under `prefix` of `bucket`, and why (the nag acknowledgement). */
  protected grantObjects(bucket: IBucket, prefix: string, actions: string[], why: string): void {
    const resource = bucket.arnForObjects(`${prefix}*`);
    Grant.addToPrincipal({ grantee: this.function.role, actions, resourceArns: [resource] });
    acknowledgeWildcardResource(this.function.role, {
      resource,
      actions,
      reason: `${why}: object keys under ${prefix} are only known at run time`,
    });
  }

  /** s3:ListBucket of `bucket`, for keys under `prefix` only. */
  protected grantList(bucket: IBucket, prefix: string): void {
    this.function.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
      }),
    );
  }
}
