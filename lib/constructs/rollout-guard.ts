import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from '#lib/constructs/dead-letter-queue.ts';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { grantPromotionReads } from '#lib/promotion-grants.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { ROLLOUT_FUNCTIONS } from '#shared/pipelines/definitions.ts';
import type { BucketRole, TableRole } from '#shared/resources.ts';

/** Props of {@link RolloutGuard}. */
export interface RolloutGuardProps {
  /** Deployment stage: names the guardrail alarms (`alarmName(stage, id)`) and the decide function. */
  readonly stage: string;
  /**
   * The data stack's buckets, by role: decide reads a version's metadata (models) and the online
   * store's field manifest (features) before promoting; the others are only named.
   */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables, by role: the rollouts are moved in `modelRegistry`. */
  readonly tables: Readonly<Record<TableRole, ITable>>;
  /** Registry name of the model whose rollouts are decided. */
  readonly modelName: string;
  /** The on-call topic, KMS-encrypted: an ended rollout is paged there. */
  readonly onCallTopic: ITopic;
  /**
   * How long the functions' log groups keep their logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * How long the dead-letter queue keeps an undelivered guardrail event or a failed guard.
   *
   * @default - 14 days
   */
  readonly deadLetterRetention?: Duration;
}

/**
 * The rollout functions (lambdas/rollout/handler.ts) and the rule that guards a rollout:
 * - `decide`, named `ROLLOUT_FUNCTIONS.decideName(stage)`, is the pipelines stack's rollout state
 *   machine's task at the end of the bake: it reads the guardrail alarms, then promotes the challenger
 *   or ends the rollout and pages;
 * - `guard` is the target of an EventBridge rule on the guardrail alarms' moves to ALARM: it ends the
 *   running rollout at once and pages, naming the version and the alarm.
 * Each may move the aliases of its model only, publish to the on-call topic with its key, and (decide)
 * read the guardrail alarms and what a promotion checks; nothing else.
 */
export class RolloutGuard extends Construct {
  public readonly decide: KeelFunction;
  public readonly guard: KeelFunction;
  public readonly rule: Rule;
  /** Guardrail events EventBridge could not deliver, and guard invocations that failed. */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: RolloutGuardProps) {
    super(scope, id);
    this.validateProps(props);
    const { stage, onCallTopic } = props;
    const stack = Stack.of(this);
    // The alarms' names are fixed by the catalog: their ARNs need no reference to the alarms.
    const guardrailArns = ROLLOUT_GUARDRAIL_IDS.map((guardrail) =>
      stack.formatArn({
        service: 'cloudwatch',
        resource: 'alarm',
        resourceName: alarmName(stage, guardrail),
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetters', {
      deadLetterFor:
        'the guardrail-alarm rule (EventBridge) and of failed guard invocations (Lambda on-failure destination)',
      retention: props.deadLetterRetention,
    });
    const fn = (
      name: string,
      handler: 'decide' | 'guard',
      description: string,
      extra: Partial<ConstructorParameters<typeof KeelFunction>[2]> = {},
    ) =>
      new KeelFunction(this, name, {
        entry: 'lambdas/rollout/handler.ts',
        handler,
        description,
        serviceName: 'keel-rollout',
        memorySize: 256,
        timeout: Duration.seconds(ROLLOUT_FUNCTIONS.timeoutSeconds),
        // pipelineContext() reads every resource name.
        resources: Object.fromEntries([
          ...Object.entries(props.buckets).map(([role, bucket]) => [role, bucket.bucketName]),
          ...Object.entries(props.tables).map(([role, table]) => [role, table.tableName]),
        ]),
        environment: {
          [KEEL_ENV.modelName]: props.modelName,
          [KEEL_ENV.onCallTopicArn]: onCallTopic.topicArn,
          [KEEL_ENV.stage]: stage,
        },
        logRetention: props.logRetention,
        ...extra,
      });
    this.decide = fn(
      'Decide',
      'decide',
      'Keel rollout: after the bake, promote the challenger, or end the rollout and page if a guardrail fired',
      { functionName: ROLLOUT_FUNCTIONS.decideName(stage) },
    );
    this.guard = fn(
      'Guard',
      'guard',
      'Keel rollout: end the running rollout and page the moment a guardrail alarm fires',
      // A retry would find the rollout ended and succeed without paging: a failed guard (its page
      // included) goes to the queue at once, whose alarm tells on-call.
      { asyncInvocation: { onFailure: this.deadLetterQueue, retryAttempts: 0 } },
    );
    for (const { role } of [this.decide, this.guard]) {
      // The aliases item and the deployment log: read, conditional update, append.
      props.tables.modelRegistry.grant(role, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem');
      // sns:Publish on the topic, and the exact key actions SNS asks of a publisher on an encrypted
      // topic (without them every page is refused with KMSAccessDenied).
      Grant.addToPrincipal({ grantee: role, actions: ['sns:Publish'], resourceArns: [onCallTopic.topicArn] });
      onCallTopic.masterKey!.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    // Promoting the challenger reads its feature definition and the store's fields.
    grantPromotionReads(this.decide.role, {
      models: props.buckets.models,
      features: props.buckets.features,
      modelName: props.modelName,
    });
    // DescribeAlarms by name is scoped to those metric alarms' ARNs (only composite alarms need "*").
    this.decide.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['cloudwatch:DescribeAlarms'], resources: guardrailArns }),
    );
    this.rule = new Rule(this, 'GuardrailAlarms', {
      description: 'Keel: end the running rollout and page when one of its guardrail alarms goes to ALARM',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        resources: guardrailArns,
        detail: { state: { value: ['ALARM'] } },
      },
      targets: [
        new LambdaFunction(this.guard.function, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 3,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }

  /** Refuses an unencrypted on-call topic: the grants and the page assume its key. */
  private validateProps(props: RolloutGuardProps): void {
    if (!props.onCallTopic.masterKey) {
      throw new Error(`RolloutGuard ${this.node.path}: onCallTopic must be KMS-encrypted (masterKey)`);
    }
  }
}
