import { Arn, ArnFormat, Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { InstanceType } from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type IFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import {
  Choice,
  Condition,
  CustomState,
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
  Pass,
  StateMachine,
  TaskInput,
  type TaskStateBase,
  Timeout,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import {
  DockerImage,
  InputMode,
  LambdaInvoke,
  S3DataDistributionType,
  S3DataType,
  S3Location,
  SageMakerCreateTrainingJob,
  SnsPublish,
  StepFunctionsStartExecution,
} from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { isKnown } from '#lib/prop-checks.ts';
import { APPROVAL_PARTITION } from '#shared/pipelines/approvals.ts';
import {
  APPROVAL_EXPIRED_ERROR,
  NOTIFICATION_FAILED_ERROR,
  NOTIFY_FAILURE_STATE,
  PIPELINES,
  type PipelineName,
  ROLLOUT_FUNCTIONS,
  SNS_TRANSIENT_ERRORS,
  stateMachineName,
  TRANSIENT_ERRORS,
} from '#shared/pipelines/definitions.ts';
import { BAKE_SECONDS } from '#shared/registry/rollout.ts';
import { trainingJobPrefix, XGBOOST_HYPERPARAMETERS } from '#shared/training/sagemaker.ts';
import type { PipelineFunctions } from './pipeline-functions.ts';

/** Props of {@link PipelineStateMachines}. */
export interface PipelineStateMachinesProps {
  readonly stage: string;
  readonly functions: PipelineFunctions;
  /** Where run results and failures are published (on-call subscribes to it). */
  readonly notifications: ITopic;
  /** The retrain's approval gate (`requireApproval` in a retrain's input). */
  readonly approval: {
    /** The approvers' topic: each request, with the commands that answer it, and each refusal go there. */
    readonly topic: ITopic;
    /** The registry table: each request and its task token are recorded there, for the CLI to answer. */
    readonly registry: ITable;
    /** Registry name of the model retrained. */
    readonly modelName: string;
    /**
     * How long a retrain waits for an answer; then it is not promoted and ends `ApprovalExpired`.
     *
     * @default - 24 hours
     */
    readonly timeout?: Duration;
  };
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
  /**
   * Train on SageMaker (stage config `retrain.engine: "sagemaker"`; `functions.sagemaker` must exist):
   * the retrain's train task becomes prepare → a Map writing the channels → the training job → import.
   *
   * @default - the Lambda trainer
   */
  readonly sagemaker?: SageMakerTrainingProps;
}

/** The retrain's SageMaker training job (stage config `retrain.sagemaker`). */
export interface SageMakerTrainingProps {
  /** The XGBoost algorithm image (AWS's built-in one of the region, or `retrain.sagemaker.image`). */
  readonly image: string;
  /** e.g. `ml.m5.xlarge`. */
  readonly instanceType: string;
  readonly instanceCount: number;
  /** SageMaker stops the job after this. */
  readonly maxRuntime: Duration;
  readonly volumeSizeGb: number;
  /**
   * Parts the channel Map writes at once.
   *
   * @default - 4
   */
  readonly concurrency?: number;
}

/**
 * The pipelines as Step Functions state machines: ETL (plan → Map of chunks → finalize), retrain (train
 * and register → Choice → promote → notify), batch scoring (plan → Distributed Map of store segments →
 * finalize) and the rollout decision (wait for the bake end → decide → notify). Every task retries
 * transient errors with backoff; any failure goes to a state that notifies, then fails the execution.
 * `keel` runs these very definitions locally.
 */
export class PipelineStateMachines extends Construct {
  public readonly etl: StateMachine;
  public readonly retrain: StateMachine;
  public readonly batch: StateMachine;
  public readonly rollout: StateMachine;

  constructor(scope: Construct, id: string, props: PipelineStateMachinesProps) {
    super(scope, id);
    this.validateProps(props);
    const etlConcurrency = props.etlConcurrency ?? 4;
    const batchConcurrency = props.batchConcurrency ?? 16;
    const f = props.functions;
    const task = (
      name: string,
      fn: KeelFunction | IFunction,
      payload?: Record<string, unknown>,
      resultPath?: string,
      outputPath?: string,
      timeout: Duration = (lambdaOf(fn) as LambdaFunction).timeout!,
    ) =>
      withRetry(
        new LambdaInvoke(this, name, {
          stateName: name,
          lambdaFunction: lambdaOf(fn),
          // The state's output is the handler's return value, and the local runner calls the handler directly.
          payloadResponseOnly: true,
          // The function's own limit: without one, Step Functions (and the local runner) apply their default.
          taskTimeout: Timeout.duration(timeout),
          ...(payload ? { payload: TaskInput.fromObject(payload) } : {}),
          ...(resultPath ? { resultPath } : {}),
          ...(outputPath ? { outputPath } : {}),
        }),
      );
    const failure = (pipeline: PipelineName) => {
      // The execution ends with the caught error's name and cause (SchemaChangeError, the columns), which
      // DescribeExecution and the console show, not a generic name that sends everyone to the history.
      const failed = new Fail(this, `${pipeline}Failed`, {
        stateName: 'Failed',
        errorPath: '$.error.Error',
        causePath: '$.error.Cause',
      });
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
      // An undeliverable failure notice must not hide the failure: the execution still ends with its error
      // (the ExecutionsFailed alarm pages through the on-call topic), the SNS error stays in its history.
      notifyFailure.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.notificationError' });
      return notifyFailure.next(failed);
    };

    // ETL: the execution input ({inputKey?, runDate?, chunkRows?, maxBadRowShare?}) flows through
    // every state; each task's zod schema picks what it needs.
    {
      const s = PIPELINES.etl.states;
      const plan = task(s.plan, f.etlPlan, undefined, '$.plan');
      // Step Functions refuses any state over 256 KiB: the plan is in S3 and the state holds its key and the
      // chunk numbers; each chunk writes its result to S3 and passes on its number only, and the finalize
      // step reads the results back (shared/pipelines/run-objects.ts).
      const chunks = new MapState(this, 'EtlChunks', {
        stateName: s.chunks,
        ...runItems('$.plan'),
        maxConcurrency: etlConcurrency,
      }).itemProcessor(task(s.chunk, f.etlChunk, undefined, JsonPath.DISCARD, '$.index'));
      const finalize = task(s.finalize, f.etlFinalize);
      catchAll([plan, chunks, finalize], failure('etl'));
      this.etl = this.machine('etl', props, plan.next(chunks).next(finalize), [
        f.etlPlan,
        f.etlChunk,
        f.etlFinalize,
      ]);
    }
    // Rollout decision: one execution per rollout, started with it. It only waits and decides once: a
    // guardrail firing during the bake reaches the guard through EventBridge, not a polling loop here
    // (a 30-day shadow polled every minute would outgrow an execution's 25,000 history events).
    {
      const s = PIPELINES.rollout.states;
      const bake = new Wait(this, 'RolloutBake', {
        stateName: s.bake,
        time: WaitTime.timestampPath('$.bakeEndsAt'),
      });
      // Created by the monitoring stack (ROLLOUT_FUNCTIONS): invoked by name, not referenced.
      const decideFunction = LambdaFunction.fromFunctionName(
        this,
        'RolloutDecideFunction',
        ROLLOUT_FUNCTIONS.decideName(props.stage),
      );
      const decide = task(
        s.decide,
        decideFunction,
        { 'name.$': '$.name', 'rolloutId.$': '$.rolloutId', 'bakeEndsAt.$': '$.bakeEndsAt' },
        '$.decision',
        undefined,
        Duration.seconds(ROLLOUT_FUNCTIONS.timeoutSeconds),
      );
      // The decision stands once made (promoted, or ended and paged): a notice that still fails after
      // its retries fails the run with NotificationFailed, never as a failed decision.
      const notify = withSnsRetry(
        new SnsPublish(this, 'RolloutNotify', {
          stateName: s.notify,
          topic: props.notifications,
          subject: JsonPath.format(
            `Keel ${props.stage}: rollout {}`,
            JsonPath.stringAt('$.decision.outcome'),
          ),
          message: TaskInput.fromObject({
            pipeline: PIPELINES.rollout.name,
            status: JsonPath.stringAt('$.decision.outcome'),
            summary: JsonPath.stringAt('$.decision.summary'),
            rolloutId: JsonPath.stringAt('$.rolloutId'),
            execution: JsonPath.executionId,
          }),
          resultPath: JsonPath.DISCARD,
        }),
      ).addCatch(
        new Fail(this, 'RolloutNotificationFailed', {
          stateName: 'Notification failed',
          error: NOTIFICATION_FAILED_ERROR,
          cause:
            'The rollout was decided and the decision stands (the promotion or the end is done, an end was paged); only the notice of it could not be published after retries. The SNS error is in the execution history.',
        }),
        { errors: ['States.ALL'], resultPath: '$.notificationError' },
      );
      catchAll([decide], failure('rollout'));
      this.rollout = this.machine(
        'rollout',
        props,
        bake.next(decide).next(notify),
        [decideFunction],
        // The longest bake, then the decision.
        Duration.seconds(BAKE_SECONDS.max).plus(PIPELINE_TIMEOUT),
      );
    }
    // Retrain
    {
      const s = PIPELINES.retrain.states;
      const {
        train,
        last: trained,
        catchable,
        work: trainWork,
        functions: trainFunctions,
      } = props.sagemaker
        ? this.sagemakerTrain(props.sagemaker, f, task)
        : (() => {
            if (!f.train) {
              throw new Error(
                `PipelineStateMachines ${this.node.path}: the functions have no train task (retrainEngine sagemaker): pass sagemaker`,
              );
            }
            const state = task(s.train, f.train, undefined, '$.candidate');
            return {
              train: state,
              last: state,
              catchable: [state],
              work: f.train.function.timeout!.toSeconds() * (1 + TASK_RETRY_ATTEMPTS),
              functions: [f.train],
            };
          })();
      const promote = task(
        s.promote,
        f.promote,
        {
          'version.$': '$.candidate.version',
          'champion.$': '$.candidate.champion',
          'reason.$': '$.candidate.reason',
          'rollout.$': '$.candidate.rollout',
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
      const notify = (
        name: string,
        outcome: string,
        topic: ITopic = props.notifications,
        details: Record<string, unknown> = {},
      ) =>
        withSnsRetry(
          new SnsPublish(this, `Retrain${outcome}`, {
            stateName: name,
            topic,
            subject: `Keel ${props.stage}: retrain ${outcome.toLowerCase()}`,
            message: TaskInput.fromObject({
              pipeline: PIPELINES.retrain.name,
              status: outcome.toUpperCase(),
              version: JsonPath.stringAt('$.candidate.version'),
              reason: JsonPath.stringAt('$.candidate.reason'),
              ...details,
            }),
            resultPath: JsonPath.DISCARD,
          }),
        ).addCatch(notificationFailed, { errors: ['States.ALL'], resultPath: '$.notificationError' });
      const promoted = notify(s.notify, 'Promoted');
      const kept = notify('Notify kept', 'Kept');
      // retrain.rollout: the candidate went into a rollout instead; its decision starts here, as
      // `keel models shadow|canary` starts it (named after the rollout: a retried start starts one).
      const startDecision = new StepFunctionsStartExecution(this, 'RetrainStartRolloutDecision', {
        stateName: s.startDecision,
        stateMachine: this.rollout,
        integrationPattern: IntegrationPattern.REQUEST_RESPONSE,
        input: TaskInput.fromJsonPathAt('$.deployment.decision'),
        name: JsonPath.stringAt('$.deployment.decision.rolloutId'),
        resultPath: JsonPath.DISCARD,
      });
      startDecision.addRetry({ errors: ['States.TaskFailed'], maxAttempts: TASK_RETRY_ATTEMPTS });
      const rolledOut = notify('Notify rolled out', 'RolledOut', props.notifications, {
        rollout: JsonPath.objectAt('$.deployment.rollout'),
        decision: JsonPath.objectAt('$.deployment.decision'),
      });
      const promotedOrRolledOut = new Choice(this, 'RetrainPromotedOrRolledOut', { stateName: s.rolledOut })
        .when(Condition.isPresent('$.deployment.decision'), startDecision.next(rolledOut))
        .otherwise(promoted);

      // The approval gate (`requireApproval` in the input). The approvers are asked on their topic, with
      // the commands that answer; the request and its task token go into the registry table, where
      // `keel --stage S models approve|reject ID` finds them and answers with SendTaskSuccess
      // (shared/pipelines/approvals.ts). Rejected: not promoted, the run SUCCEEDS. No answer in time: not
      // promoted, the approvers are told, and the run FAILS with ApprovalExpired, so the failed-executions
      // alarm tells on-call that a gate nobody answered held a model back.
      const gate = props.approval;
      const waitSeconds = (gate.timeout ?? Duration.hours(24)).toSeconds();
      const approvalId = JsonPath.stringAt('$.approvalRequest.id');
      const command = (verb: string) =>
        JsonPath.format(`keel --stage ${props.stage} models ${verb} {}`, approvalId);
      const prepare = new Pass(this, 'RetrainPrepareApproval', {
        stateName: s.prepareApproval,
        // Short enough to type: the first group of a UUID.
        parameters: { id: JsonPath.arrayGetItem(JsonPath.stringSplit(JsonPath.uuid(), '-'), 0) },
        resultPath: '$.approvalRequest',
      });
      const request = withSnsRetry(
        new SnsPublish(this, 'RetrainRequestApproval', {
          stateName: s.requestApproval,
          topic: gate.topic,
          subject: `Keel ${props.stage}: approve promoting a retrained model?`,
          message: TaskInput.fromObject({
            question: `Keel ${props.stage}: a retrain registered a candidate that beats the champion. Promote it?`,
            approvalId,
            version: JsonPath.stringAt('$.candidate.version'),
            reason: JsonPath.stringAt('$.candidate.reason'),
            approve: command('approve'),
            reject: command('reject'),
            pending: `keel --stage ${props.stage} models approvals`,
            ifNobodyAnswersWithinHours: waitSeconds / 3600,
            execution: JsonPath.executionId,
          }),
          resultPath: JsonPath.DISCARD,
        }),
      );
      // A CustomState is named by its id. The SDK integration (not a Lambda) records the token, and its
      // grant below is held to the approvals partition, which CallAwsService's grant could not be.
      const wait = new CustomState(this, s.approve, {
        stateJson: {
          Type: 'Task',
          Resource: 'arn:aws:states:::aws-sdk:dynamodb:putItem.waitForTaskToken',
          TimeoutSeconds: waitSeconds,
          Parameters: {
            TableName: gate.registry.tableName,
            Item: {
              pk: { S: APPROVAL_PARTITION },
              sk: { 'S.$': '$.approvalRequest.id' },
              model: { S: gate.modelName },
              taskToken: { 'S.$': '$$.Task.Token' },
              execution: { 'S.$': '$$.Execution.Id' },
              version: { 'S.$': '$.candidate.version' },
              reason: { 'S.$': '$.candidate.reason' },
              requestedAt: { 'S.$': '$$.State.EnteredTime' },
              timeoutSeconds: { N: String(waitSeconds) },
              status: { S: 'pending' },
            },
            // Two requests drawing the same id must not overwrite each other's token.
            ConditionExpression: 'attribute_not_exists(pk)',
          },
          // SendTaskSuccess's output: {approved, note, actor}.
          ResultPath: '$.approval',
        },
      });
      const expired = notify(s.approvalExpired, 'ApprovalExpired', gate.topic, {
        approvalId,
        waitedHours: waitSeconds / 3600,
      }).next(
        new Fail(this, 'RetrainApprovalExpiredEnd', {
          stateName: 'Approval expired',
          error: APPROVAL_EXPIRED_ERROR,
          cause: `Nobody approved or rejected the candidate within ${waitSeconds / 3600} h: it is registered, not promoted. Promote it by hand (keel --stage ${props.stage} models promote VERSION) or start another retrain.`,
        }),
      );
      wait.addCatch(expired, { errors: [Errors.TIMEOUT, Errors.HEARTBEAT_TIMEOUT], resultPath: '$.error' });
      const notApproved = notify(s.notApproved, 'NotApproved', gate.topic, {
        approvalId,
        by: JsonPath.stringAt('$.approval.actor'),
        note: JsonPath.stringAt('$.approval.note'),
      });
      const approved = new Choice(this, 'RetrainApproved', { stateName: s.approved })
        .when(Condition.booleanEquals('$.approval.approved', true), promote)
        .otherwise(notApproved);
      promote.next(promotedOrRolledOut);
      const decide = new Choice(this, 'RetrainDecide', { stateName: s.decide })
        .when(Condition.booleanEquals('$.candidate.promote', false), kept)
        .when(
          Condition.booleanEquals('$.candidate.requireApproval', true),
          prepare.next(request).next(wait).next(approved),
        )
        .otherwise(promote);
      const retrainFailure = failure('retrain');
      catchAll([...catchable, promote, request, startDecision], retrainFailure);
      wait.addCatch(retrainFailure, { errors: [Errors.ALL], resultPath: '$.error' });

      // The execution outlives its longest path: the tasks with every retry, and the wait for a person.
      const work = trainWork + f.promote.function.timeout!.toSeconds() * (1 + TASK_RETRY_ATTEMPTS);
      const retrainTimeout = PIPELINE_TIMEOUT.plus(Duration.seconds(waitSeconds)).plus(
        props.sagemaker?.maxRuntime ?? Duration.seconds(0),
      );
      if (work + waitSeconds >= retrainTimeout.toSeconds()) {
        throw new Error(
          `PipelineStateMachines ${this.node.path}: the retrain's tasks (${work} s with retries) and the approval wait (${waitSeconds} s) exceed its execution timeout (${retrainTimeout.toSeconds()} s): lower the task timeouts`,
        );
      }
      trained.next(decide);
      this.retrain = this.machine('retrain', props, train, [...trainFunctions, f.promote], retrainTimeout);
      // The gate publishes to an encrypted topic (validateProps): SNS encrypts with the key as the
      // publisher, so the role needs the key's GenerateDataKey and Decrypt besides sns:Publish (which
      // SnsPublish grants). It records requests in its own partition of the registry table only.
      gate.topic.masterKey!.grant(this.retrain, 'kms:GenerateDataKey', 'kms:Decrypt');
      if (props.sagemaker) this.holdToStageJobs(props.stage, this.retrain);
      this.retrain.addToRolePolicy(
        new PolicyStatement({
          actions: ['dynamodb:PutItem'],
          resources: [gate.registry.tableArn],
          conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [APPROVAL_PARTITION] } },
        }),
      );
    }
    // Batch scoring
    {
      const s = PIPELINES.batch.states;
      // As the ETL: plan and results in S3, the segment numbers in the state (up to MAX_BATCH_SEGMENTS).
      const score = task(s.score, f.batchScore, undefined, JsonPath.DISCARD, '$.index');
      const segments = new DistributedMap(this, 'BatchSegments', {
        stateName: s.segments,
        ...runItems('$.plan'),
        maxConcurrency: batchConcurrency,
      }).itemProcessor(score);
      const plan = task(s.plan, f.batchPlan, undefined, '$.plan');
      const finalize = task(s.finalize, f.batchFinalize, { 'run.$': '$.plan.run' });
      catchAll([plan, segments, finalize], failure('batch'));
      this.batch = this.machine('batch', props, plan.next(segments).next(finalize), [
        f.batchPlan,
        f.batchScore,
        f.batchFinalize,
      ]);
    }
  }

  /**
   * The retrain's training on SageMaker: prepare (the run's plan) → a Map over the offline parts writing
   * the channels → the training job (Step Functions' own integration, waiting for the job) → import (the
   * same gate and registration as the Lambda trainer, the same `$.candidate`). The state holds the run's
   * prefixes and item numbers and what is kept of the job's description, never rows.
   */
  private sagemakerTrain(
    training: SageMakerTrainingProps,
    f: PipelineFunctions,
    task: (
      name: string,
      fn: KeelFunction,
      payload?: Record<string, unknown>,
      resultPath?: string,
      outputPath?: string,
    ) => LambdaInvoke,
  ) {
    const owner = `PipelineStateMachines ${this.node.path}`;
    const sm = f.sagemaker;
    if (!sm)
      throw new Error(
        `${owner}: sagemaker training needs the functions' sagemaker resources (retrainEngine)`,
      );
    const s = PIPELINES.retrain.states;
    const prepare = task(s.prepareTraining, sm.prepare, undefined, '$.training');
    const channels = new MapState(this, 'RetrainChannels', {
      stateName: s.channels,
      ...runItems('$.training'),
      maxConcurrency: training.concurrency ?? 4,
    }).itemProcessor(task(s.channel, sm.writeChannels, undefined, JsonPath.DISCARD, '$.index'));
    const job = new SageMakerCreateTrainingJob(this, 'RetrainTrainingJob', {
      stateName: s.trainingJob,
      integrationPattern: IntegrationPattern.RUN_JOB,
      trainingJobName: JsonPath.stringAt('$.training.run.jobName'),
      // The role's grants are its own (pipeline-functions.ts): through this view the task cannot add
      // its broader ones on the key (kms:ReEncrypt*, kms:GenerateDataKey*).
      role: sm.role.withoutPolicyUpdates(),
      algorithmSpecification: {
        trainingImage: DockerImage.fromRegistry(training.image),
        trainingInputMode: InputMode.FILE,
      },
      hyperparameters: { ...XGBOOST_HYPERPARAMETERS },
      inputDataConfig: (['train', 'validation'] as const).map((channel) => ({
        channelName: channel,
        contentType: 'text/csv',
        dataSource: {
          s3DataSource: {
            s3DataType: S3DataType.S3_PREFIX,
            s3Location: S3Location.fromJsonExpression(`$.training.run.uris.${channel}`),
            // Several instances each train on their share of the parts; every one evaluates on all.
            s3DataDistributionType:
              channel === 'train' && training.instanceCount > 1
                ? S3DataDistributionType.SHARDED_BY_S3_KEY
                : S3DataDistributionType.FULLY_REPLICATED,
          },
        },
      })),
      outputDataConfig: {
        s3OutputLocation: S3Location.fromJsonExpression('$.training.run.uris.output'),
        encryptionKey: sm.key,
      },
      resourceConfig: {
        instanceCount: training.instanceCount,
        instanceType: new InstanceType(training.instanceType.replace(/^ml\./, '')),
        volumeSize: Size.gibibytes(training.volumeSizeGb),
        volumeEncryptionKey: sm.key,
      },
      stoppingCondition: { maxRuntime: training.maxRuntime },
      enableNetworkIsolation: true,
      // What the import needs of DescribeTrainingJob: a few fields, not the whole description.
      resultSelector: {
        'name.$': '$.TrainingJobName',
        'modelArtifacts.$': '$.ModelArtifacts.S3ModelArtifacts',
        'image.$': '$.AlgorithmSpecification.TrainingImage',
        'instanceType.$': '$.ResourceConfig.InstanceType',
        'instanceCount.$': '$.ResourceConfig.InstanceCount',
      },
      resultPath: '$.trainingJob',
    });
    const importModel = task(s.importModel, sm.importModel, undefined, '$.candidate');
    const lambdaWork = [sm.prepare, sm.writeChannels, sm.importModel].reduce(
      (seconds, fn) => seconds + fn.function.timeout!.toSeconds() * (1 + TASK_RETRY_ATTEMPTS),
      0,
    );
    return {
      train: prepare.next(channels).next(job).next(importModel),
      last: importModel,
      catchable: [prepare, channels, job, importModel],
      work: lambdaWork + training.maxRuntime.toSeconds(),
      functions: [sm.prepare, sm.writeChannels, sm.importModel],
    };
  }

  /**
   * The training job task's grants name `training-job/*` (its job name is a path, known at run time):
   * the machine may still create, describe, stop and tag only its own stage's jobs (`keel-<stage>-…`).
   */
  private holdToStageJobs(stage: string, machine: StateMachine): void {
    const stack = Stack.of(machine);
    const job = (name: string) =>
      stack.formatArn({ service: 'sagemaker', resource: 'training-job', resourceName: name });
    machine.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        actions: [
          'sagemaker:CreateTrainingJob',
          'sagemaker:DescribeTrainingJob',
          'sagemaker:StopTrainingJob',
          'sagemaker:AddTags',
        ],
        notResources: [job(`${trainingJobPrefix(stage)}*`)],
      }),
    );
    acknowledgeWildcardResource(machine, {
      resource: job('*'),
      actions: [
        'sagemaker:CreateTrainingJob',
        'sagemaker:DescribeTrainingJob',
        'sagemaker:StopTrainingJob',
        'sagemaker:AddTags',
      ],
      reason: `Runs the retrain's training job, named per run; a Deny holds it to the stage's own jobs (${trainingJobPrefix(stage)}*)`,
    });
  }

  /** Refuses props Step Functions would refuse or the gate cannot work with; deploy-time values pass. */
  private validateProps(props: PipelineStateMachinesProps): void {
    const owner = `PipelineStateMachines ${this.node.path}`;
    const { etlConcurrency, batchConcurrency } = props;
    for (const [key, value] of Object.entries({ etlConcurrency, batchConcurrency })) {
      if (isKnown(value) && (!Number.isInteger(value) || value < 1 || value > 1000)) {
        throw new Error(`${owner}: ${key} must be an integer from 1 to 1000 (got ${value})`);
      }
    }
    const { timeout, topic } = props.approval;
    if (isKnown(timeout)) {
      const waitSeconds = timeout.toSeconds();
      if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > MAX_APPROVAL_WAIT.toSeconds()) {
        throw new Error(
          `${owner}: approval.timeout must be whole seconds from 1 s to ${MAX_APPROVAL_WAIT.toDays()} days (got ${waitSeconds} s)`,
        );
      }
    }
    if (!topic.masterKey) throw new Error(`${owner}: approval.topic must be KMS-encrypted (masterKey)`);
  }

  private machine(
    pipeline: PipelineName,
    props: PipelineStateMachinesProps,
    definition: IChainable,
    tasks: readonly (KeelFunction | IFunction)[],
    timeout: Duration = PIPELINE_TIMEOUT,
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
      timeout,
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
        // The training job task (engine sagemaker) reads the job's tags, which has no resource-level permissions.
        ...(pipeline === 'retrain' && props.sagemaker ? ['sagemaker:ListTags'] : []),
      ],
      reason:
        'Tracing and execution logging: X-Ray and CloudWatch Logs delivery APIs support no resource-level permissions, so AWS requires "*"' +
        (pipeline === 'retrain' && props.sagemaker
          ? '; so does SageMaker ListTags, which the training job task calls'
          : ''),
    });
    for (const task of tasks) {
      acknowledgeWildcardResource(machine.role, {
        resource: `${lambdaOf(task).functionArn}:*`,
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

/** What an execution may take, besides waiting for a person. */
const PIPELINE_TIMEOUT = Duration.hours(6);
/** The longest the retrain waits for an approval (stage config allows up to 720 hours). */
const MAX_APPROVAL_WAIT = Duration.days(30);
/** Retries of a task after its first attempt (transient errors). */
const TASK_RETRY_ATTEMPTS = 3;

const lambdaOf = (fn: KeelFunction | IFunction): IFunction => (fn instanceof KeelFunction ? fn.function : fn);

/**
 * A Map over a run's items (shared/pipelines/run-objects.ts): the plan task's output at `planPath` holds
 * the run and its item numbers; each iteration gets the run and its number and passes nothing on (its
 * result is in S3), so the state does not grow with the items' work.
 */
function runItems(planPath: string) {
  return {
    itemsPath: `${planPath}.items`,
    itemSelector: { 'run.$': `${planPath}.run`, 'index.$': '$$.Map.Item.Value' },
    resultPath: JsonPath.DISCARD,
  };
}

function withRetry<T extends TaskStateBase>(state: T): T {
  state.addRetry({
    errors: [...TRANSIENT_ERRORS],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: TASK_RETRY_ATTEMPTS,
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
