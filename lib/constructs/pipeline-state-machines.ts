import { Arn, ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Errors,
  Fail,
  type IChainable,
  IntegrationPattern,
  JitterType,
  JsonPath,
  LogLevel,
  Map as MapState,
  StateMachine,
  TaskInput,
  type TaskStateBase,
  Timeout,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke, SnsPublish } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { KeelFunction } from '#lib/constructs/keel-function.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import {
  NOTIFICATION_FAILED_ERROR,
  NOTIFY_FAILURE_STATE,
  PIPELINES,
  type PipelineName,
  SNS_TRANSIENT_ERRORS,
  stateMachineName,
  TRANSIENT_ERRORS,
} from '#shared/pipelines/definitions.ts';
import type { PipelineFunctions } from './pipeline-functions.ts';

/** Props of {@link PipelineStateMachines}. */
export interface PipelineStateMachinesProps {
  readonly stage: string;
  readonly functions: PipelineFunctions;
  /** Where run results and failures are published (on-call subscribes to it). */
  readonly notifications: ITopic;
  /**
   * Chunks the ETL Map state processes at once.
   *
   * @default - 4
   */
  readonly etlConcurrency?: number;
  /**
   * Segments of the online store the batch Distributed Map scores at once.
   *
   * @default - 16
   */
  readonly batchConcurrency?: number;
  /**
   * Retention of the state machines' execution logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The three pipelines as Step Functions state machines: ETL (plan → Map of chunks → finalize),
 * retrain (train and register → Choice → promote → notify) and batch scoring (plan → Distributed Map of
 * store segments → finalize). Every task retries transient errors with backoff; any failure goes to a
 * state that notifies, then fails the execution. `keel` runs these very definitions locally.
 */
export class PipelineStateMachines extends Construct {
  public readonly etl: StateMachine;
  public readonly retrain: StateMachine;
  public readonly batch: StateMachine;

  constructor(scope: Construct, id: string, props: PipelineStateMachinesProps) {
    super(scope, id);
    const etlConcurrency = props.etlConcurrency ?? 4;
    const batchConcurrency = props.batchConcurrency ?? 16;
    for (const [key, value] of Object.entries({ etlConcurrency, batchConcurrency })) {
      if (!Number.isInteger(value) || value < 1 || value > 1000) {
        throw new Error(
          `PipelineStateMachines ${this.node.path}: ${key} must be an integer from 1 to 1000 (got ${value})`,
        );
      }
    }
    const f = props.functions;
    const task = (name: string, fn: KeelFunction, payload?: Record<string, unknown>, resultPath?: string) =>
      withRetry(
        new LambdaInvoke(this, name, {
          stateName: name,
          lambdaFunction: fn.function,
          // The state's output is the handler's return value, and the local runner calls the handler directly.
          payloadResponseOnly: true,
          // The function's own limit: without one, Step Functions (and the local runner) apply their default.
          taskTimeout: Timeout.duration(fn.function.timeout!),
          ...(payload ? { payload: TaskInput.fromObject(payload) } : {}),
          ...(resultPath ? { resultPath } : {}),
        }),
      );
    const failure = (pipeline: PipelineName) => {
      const failed = new Fail(this, `${pipeline}Failed`, { stateName: 'Failed', error: 'PipelineFailed' });
      const notifyFailure = withSnsRetry(
        new SnsPublish(this, `${pipeline}NotifyFailure`, {
          stateName: NOTIFY_FAILURE_STATE,
          topic: props.notifications,
          subject: `Keel ${props.stage}: ${PIPELINES[pipeline].name} failed`,
          message: TaskInput.fromObject({
            pipeline: PIPELINES[pipeline].name,
            status: 'FAILED',
            execution: JsonPath.executionId,
            error: JsonPath.stringAt('$.error.Error'),
            cause: JsonPath.stringAt('$.error.Cause'),
          }),
          resultPath: JsonPath.DISCARD,
        }),
      );
      // An undeliverable failure notice must not hide the failure: the execution still ends PipelineFailed
      // (the ExecutionsFailed alarm pages through the on-call topic), the SNS error stays in its history.
      notifyFailure.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.notificationError' });
      return notifyFailure.next(failed);
    };

    // ETL: the execution input ({inputKey?, runDate?, chunkRows?, maxBadRowShare?}) flows through
    // every state; each task's zod schema picks what it needs.
    {
      const s = PIPELINES.etl.states;
      const plan = task(s.plan, f.etlPlan, undefined, '$.plan');
      const chunks = new MapState(this, 'EtlChunks', {
        stateName: s.chunks,
        itemsPath: '$.plan.chunks',
        itemSelector: { 'plan.$': '$.plan', 'chunk.$': '$$.Map.Item.Value' },
        maxConcurrency: etlConcurrency,
        resultPath: '$.results',
      }).itemProcessor(task(s.chunk, f.etlChunk));
      const finalize = task(s.finalize, f.etlFinalize);
      catchAll([plan, chunks, finalize], failure('etl'));
      this.etl = this.machine('etl', props, plan.next(chunks).next(finalize), [
        f.etlPlan,
        f.etlChunk,
        f.etlFinalize,
      ]);
    }
    // Retrain
    {
      const s = PIPELINES.retrain.states;
      const train = task(s.train, f.train, undefined, '$.candidate');
      const promote = task(
        s.promote,
        f.promote,
        {
          'version.$': '$.candidate.version',
          'champion.$': '$.candidate.champion',
          'reason.$': '$.candidate.reason',
        },
        '$.deployment',
      );
      // The run's outcome (promoted, kept, not approved) stands once it is reached; a notification that still
      // fails after its retries must not be reported as a failed retrain, nor be lost in a SUCCEEDED one
      // (nobody reads those): the execution fails with its own error, NotificationFailed, whose cause says
      // the outcome stands. The ExecutionsFailed alarm then tells on-call through the on-call topic.
      const notificationFailed = new Fail(this, 'RetrainNotificationFailed', {
        stateName: 'Notification failed',
        error: NOTIFICATION_FAILED_ERROR,
        cause:
          'The retrain finished and its outcome stands (the promotion, if any, is done: do not re-run or roll back for this); only its notification could not be published after retries. The SNS error is in the execution history.',
      });
      const notify = (name: string, outcome: string) =>
        withSnsRetry(
          new SnsPublish(this, `Retrain${outcome}`, {
            stateName: name,
            topic: props.notifications,
            subject: `Keel ${props.stage}: retrain ${outcome.toLowerCase()}`,
            message: TaskInput.fromObject({
              pipeline: PIPELINES.retrain.name,
              status: outcome.toUpperCase(),
              version: JsonPath.stringAt('$.candidate.version'),
              reason: JsonPath.stringAt('$.candidate.reason'),
            }),
            resultPath: JsonPath.DISCARD,
          }),
        ).addCatch(notificationFailed, { errors: ['States.ALL'], resultPath: '$.notificationError' });
      const promoted = notify(s.notify, 'Promoted');
      const kept = notify('Notify kept', 'Kept');
      const approvalDenied = notify('Notify not approved', 'NotApproved');
      // Optional human gate (`requireApproval` in the input): the token goes out with the notification,
      // and `aws stepfunctions send-task-success --task-output '{"approved":true}'` (locally
      // `keel models approve`) lets the promotion proceed. No answer within a day: not promoted.
      const approval = withSnsRetry(
        new SnsPublish(this, 'RetrainApproval', {
          stateName: s.approve,
          topic: props.notifications,
          subject: `Keel ${props.stage}: approve promoting a retrained model?`,
          integrationPattern: IntegrationPattern.WAIT_FOR_TASK_TOKEN,
          message: TaskInput.fromObject({
            pipeline: PIPELINES.retrain.name,
            status: 'AWAITING_APPROVAL',
            version: JsonPath.stringAt('$.candidate.version'),
            reason: JsonPath.stringAt('$.candidate.reason'),
            taskToken: JsonPath.taskToken,
          }),
          resultPath: '$.approval',
          taskTimeout: Timeout.duration(Duration.days(1)),
        }),
        { callback: true },
      );
      approval.addCatch(approvalDenied, { errors: ['States.Timeout'], resultPath: '$.error' });
      const approved = new Choice(this, 'RetrainApproved', { stateName: s.approved })
        .when(Condition.booleanEquals('$.approval.approved', true), promote)
        .otherwise(approvalDenied);
      promote.next(promoted);
      const decide = new Choice(this, 'RetrainDecide', { stateName: s.decide })
        .when(Condition.booleanEquals('$.candidate.promote', false), kept)
        .when(Condition.booleanEquals('$.candidate.requireApproval', true), approval.next(approved))
        .otherwise(promote);
      catchAll([train, promote, approval], failure('retrain'));
      this.retrain = this.machine('retrain', props, train.next(decide), [f.train, f.promote]);
    }
    // Batch scoring
    {
      const s = PIPELINES.batch.states;
      const score = task(s.score, f.batchScore, { 'plan.$': '$.plan', 'segment.$': '$.segment' });
      const segments = new DistributedMap(this, 'BatchSegments', {
        stateName: s.segments,
        itemsPath: '$.plan.segments',
        itemSelector: { 'plan.$': '$.plan', 'segment.$': '$$.Map.Item.Value' },
        maxConcurrency: batchConcurrency,
        resultPath: '$.results',
      }).itemProcessor(score);
      const plan = task(s.plan, f.batchPlan, undefined, '$.plan');
      const finalize = task(s.finalize, f.batchFinalize, { 'plan.$': '$.plan', 'results.$': '$.results' });
      catchAll([plan, segments, finalize], failure('batch'));
      this.batch = this.machine('batch', props, plan.next(segments).next(finalize), [
        f.batchPlan,
        f.batchScore,
        f.batchFinalize,
      ]);
    }
  }

  private machine(
    pipeline: PipelineName,
    props: PipelineStateMachinesProps,
    definition: IChainable,
    tasks: readonly KeelFunction[],
  ): StateMachine {
    const name = stateMachineName(pipeline, props.stage);
    const logs = new LogGroup(this, `${pipeline}Logs`, {
      logGroupName: `/aws/vendedlogs/states/${name}`,
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new StateMachine(this, `${pipeline}StateMachine`, {
      stateMachineName: name,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: true },
      timeout: Duration.hours(6),
    });
    // SNS encrypts what a principal publishes with the topic's key, as that principal: CDK's SnsPublish task
    // grants sns:Publish only, so without these every notify step would be denied (that key only).
    props.notifications.masterKey?.grant(machine, 'kms:GenerateDataKey', 'kms:Decrypt');
    acknowledgeWildcardResource(machine.role, {
      resource: '*',
      actions: [
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      reason:
        'Tracing and execution logging: X-Ray and CloudWatch Logs delivery APIs support no resource-level permissions, so AWS requires "*"',
    });
    for (const task of tasks) {
      acknowledgeWildcardResource(machine.role, {
        resource: `${task.function.functionArn}:*`,
        actions: ['lambda:InvokeFunction'],
        reason:
          'Invokes its task function; ":*" covers that function\'s versions and aliases only (CDK grants both)',
      });
    }
    if (pipeline === 'batch') {
      // The Distributed Map runs its items as child executions of this state machine (CDK's DistributedMapPolicy).
      const stack = Stack.of(machine);
      const name = Arn.split(machine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName;
      const execution = (resourceName: string) =>
        stack.formatArn({
          service: 'states',
          resource: 'execution',
          resourceName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        });
      acknowledgeWildcardResource(machine, {
        resource: `${execution(name!)}:*`,
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        reason:
          'The Distributed Map describes and stops the child executions it starts; their ids exist only at run time',
      });
      acknowledgeWildcardResource(machine, {
        resource: execution(`${name}/*:*`),
        actions: ['states:RedriveExecution'],
        reason: 'The Distributed Map redrives its own map runs; their labels exist only at run time',
      });
    }
    return machine;
  }
}

function withRetry<T extends TaskStateBase>(state: T): T {
  state.addRetry({
    errors: [...TRANSIENT_ERRORS],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 3,
  });
  return state;
}

/**
 * SNS's transient errors, retried with jittered backoff (about a minute in all). A plain notification
 * also retries any other task failure twice: Step Functions documents the naming rule of integration
 * errors, not each name, and a transient error under another name must not end a run. A callback task
 * does not: an answer sent with SendTaskFailure is a task failure too, and must not be asked again.
 */
function withSnsRetry(state: SnsPublish, options: { readonly callback?: boolean } = {}): SnsPublish {
  state.addRetry({
    errors: [...SNS_TRANSIENT_ERRORS],
    interval: Duration.seconds(1),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.seconds(30),
    jitterStrategy: JitterType.FULL,
  });
  if (!options.callback) {
    state.addRetry({ errors: [Errors.TASKS_FAILED], interval: Duration.seconds(2), maxAttempts: 2 });
  }
  return state;
}

/** Any error of these states, once retries are spent, goes to the pipeline's notify-then-fail path. */
function catchAll(states: readonly (TaskStateBase | MapState | DistributedMap)[], handler: IChainable): void {
  for (const state of states) state.addCatch(handler, { errors: ['States.ALL'], resultPath: '$.error' });
}
