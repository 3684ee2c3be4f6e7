import './promise-polyfill.ts';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { StateMachine } from 'aws-local-stepfunctions';
import { type AwsTarget, createDocumentClient } from '#shared/aws/clients.ts';
import type { DriftJobInput, DriftJobResult } from '#shared/drift/job.ts';
import { KEEL_ENV, optionalEnv } from '#shared/env.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import {
  NOTIFY_FAILURE_STATE,
  PIPELINES,
  type PipelineName,
  stateMachineName,
} from '#shared/pipelines/definitions.ts';
import type { MonitoringJobName } from '#shared/pipelines/schedules.ts';
import type { QualityJobInput, QualityRunSummary } from '#shared/quality/job.ts';
import { LOCAL_ENVIRONMENT, type ResourceNames } from '#shared/resources.ts';
import type { AlarmStateChangeEvent } from '#shared/rollout/aws.ts';
import type { RolloutOutcome } from '#shared/rollout/decision.ts';
import { localAlarmCatalog, ONCALL_WEBHOOK_ENV } from './alarms.ts';
import type { WebhookOptions } from './alarms-message.ts';
import { APPROVAL_TASK_RESOURCE, localApprovalTask, withApprovalTimeout } from './approvals.ts';
import { startLocalCloudWatch } from './cloudwatch.ts';
import { functionOf, type LocalDeployment, loadLocalDeployment } from './deployment/deployment.ts';
import { type ExecutionStatus, executeLocally, MAX_LOCAL_WAIT_MS, type TaskHandler } from './execution.ts';
import { startLocalFunctions } from './lambda/functions.ts';
import { fileNotifier, type Notification } from './notifications.ts';
import { type RolloutDecisionInput, requestRolloutDecision } from './rollout-decisions.ts';
import { Authorizer, type Principal } from './rules/authorizer.ts';
import { awsRulesEnforced } from './rules/switch.ts';
import { authorizePublish, deliverLocally, type OnCallWebhook, startLocalSns } from './sns.ts';
import {
  type AslDefinition,
  type AslState,
  capExecutionTimeout,
  inlineDistributedMaps,
} from './state-machines.ts';
import { localTrainingJobs, TRAINING_JOB_RESOURCE } from './training-jobs.ts';

export { type Notification, notificationsFile } from './notifications.ts';

/** The nice value of the pipelines' function environments (the API's keep 0). */
export const PIPELINE_PRIORITY = 10;

export interface PipelineRunnerOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  /** Called for each notification after it is written (the console, a webhook). */
  readonly onNotification?: (notification: Notification) => void;
  /**
   * Fault injection for the SNS publish states: asked with the subject before each publish; an error it
   * returns fails that attempt, undelivered (its `name` is the Step Functions error, e.g. `SNS.ThrottledException`).
   */
  readonly snsPublishFault?: (subject: string) => Error | undefined;
  /**
   * How long the retrain waits for an approval, instead of the stage's `retrain.approval.timeoutHours`
   * (tests that cannot wait hours).
   */
  readonly approvalTimeoutSeconds?: number;
  /**
   * On-call's webhook: what the on-call topic and the pipelines' notifications topic receive is POSTed
   * to it, as SNS POSTs to on-call's HTTPS endpoint.
   *
   * @default - `KEEL_ONCALL_WEBHOOK`, when set
   */
  readonly onCallWebhook?: WebhookOptions;
  /** The deployment whose state machines and functions run. @default - the local stage from the sources */
  readonly deployment?: LocalDeployment;
  /** The Node.js binary of the functions' environments. @default - this process's */
  readonly nodeBinary?: string;
  /**
   * Called when the retrain creates its SageMaker training job (engine sagemaker), before the job is
   * described: an emulator's job trains nothing, so a test puts the model the algorithm would write.
   */
  readonly onTrainingJobCreated?: (name: string) => Promise<void>;
}

export interface PipelineRun<T = unknown> {
  readonly pipeline: PipelineName;
  readonly status: ExecutionStatus;
  readonly output: T | undefined;
  readonly error?: { readonly name: string; readonly message: string };
  /** For a failed run: the state whose failure ended it. */
  readonly failedState?: string;
  readonly durationMs: number;
}

export interface PipelineRunner {
  run<T = unknown>(
    pipeline: PipelineName,
    input: Record<string, unknown>,
    onTaskDone?: (state: string, output: unknown) => void,
    /** Each failed task attempt, retried or not (what Step Functions' history shows). */
    onTaskFailed?: (state: string, error: Error) => void,
    /** Stops the execution (it ends ABORTED). */
    signal?: AbortSignal,
  ): Promise<PipelineRun<T>>;
  /** Invokes the drift job's function, as its schedule does (a single task, not a state machine). */
  drift(input: DriftJobInput): Promise<DriftRun>;
  /** Invokes the quality job's function, as its schedule does. */
  quality(input: QualityJobInput): Promise<QualityRun>;
  /**
   * Invokes the rollout guard's function with a guardrail alarm's state change, as the EventBridge rule
   * on the guardrail alarms does. Rejects with the function's error.
   */
  guard(event: AlarmStateChangeEvent): Promise<RolloutOutcome>;
  readonly definitions: Record<PipelineName, AslDefinition>;
  /** Ends the functions' environments. */
  close(): Promise<void>;
}

/** A monitoring job's run: one invocation of its function. */
export type JobRun<Job extends MonitoringJobName, T> = Omit<PipelineRun<T>, 'pipeline'> & {
  readonly pipeline: Job;
};
/** What each monitoring job's function returns. */
export interface JobOutputs {
  readonly drift: Omit<DriftJobResult, 'report'>;
  readonly quality: QualityRunSummary;
}
export type JobOutput<Job extends MonitoringJobName> = JobOutputs[Job];
export type DriftRun = JobRun<'drift', JobOutput<'drift'>>;
export type QualityRun = JobRun<'quality', JobOutput<'quality'>>;

/**
 * Runs the state machines of the synthesized local stage with aws-local-stepfunctions as Step Functions
 * runs them: each Lambda task invokes its function in a Lambda-like environment (local/lambda), SNS
 * publish states write to `${KEEL_HOME}/notifications.jsonl`, and every call the state machine makes
 * with its role (lambda:InvokeFunction, sns:Publish and the topic key's KMS actions) is checked against
 * the synthesized policies first. A state's input or output over 256 KiB fails the execution with
 * States.DataLimitExceeded, which no Catch catches; TimeoutSeconds of tasks and executions hold.
 */
export async function createPipelineRunner(options: PipelineRunnerOptions): Promise<PipelineRunner> {
  await mkdir(options.home, { recursive: true });
  const deployment = options.deployment ?? (await loadLocalDeployment());
  const authorizer = awsRulesEnforced() ? new Authorizer(deployment) : undefined;
  const publish = fileNotifier(options.home, options.onNotification);
  const definitions = pipelineDefinitions(deployment);
  const webhook = onCallWebhookOf(deployment, definitions, options.onCallWebhook);
  // The drift function publishes its notice to the on-call topic itself, through this stand-in.
  const sns = await startLocalSns({ deployment, authorizer, publish, ...(webhook ? { webhook } : {}) });
  // The rollout decision reads its guardrails' states: the local alarm loop's, for the stage's alarms.
  const cloudwatch = await startLocalCloudWatch({
    home: options.home,
    deployment,
    authorizer,
    alarmNames: localAlarmCatalog({}, LOCAL_ENVIRONMENT.stage).alarms.map((a) =>
      alarmName(LOCAL_ENVIRONMENT.stage, a.id),
    ),
  });
  const functions = await startLocalFunctions({
    home: options.home,
    target: options.target.endpoints
      ? {
          ...options.target,
          endpoints: { ...options.target.endpoints, sns: sns.endpoint, cloudwatch: cloudwatch.endpoint },
        }
      : options.target,
    deployment,
    authorizer,
    nodeBinary: options.nodeBinary,
    // Pipelines are background work: where they share the cores with the API, the API comes first.
    priority: PIPELINE_PRIORITY,
  }).catch(async (error: unknown) => {
    await sns.close();
    await cloudwatch.close();
    throw error;
  });
  const { lambda } = functions;
  const machineOf = (pipeline: PipelineName) => pipelineMachine(deployment, pipeline);
  if (options.approvalTimeoutSeconds !== undefined) {
    definitions.retrain = withApprovalTimeout(
      definitions.retrain,
      PIPELINES.retrain.states.approve,
      options.approvalTimeoutSeconds,
    );
  }
  const roleOf = (pipeline: PipelineName): Principal => ({
    kind: 'role',
    roleArn: machineOf(pipeline).roleArn,
    session: machineOf(pipeline).name,
  });

  const publishFault = (input: unknown) => {
    const fault = options.snsPublishFault?.((input as { Subject?: string }).Subject ?? '');
    if (fault) throw fault;
  };
  const notify = (pipeline: PipelineName) => async (input: unknown) => {
    publishFault(input);
    const { TopicArn, Subject, Message } = input as {
      TopicArn?: string;
      Subject?: string;
      Message?: unknown;
    };
    if (authorizer) await authorizePublish(authorizer, deployment, roleOf(pipeline), String(TopicArn));
    await deliverLocally(publish, webhook, {
      topicArn: String(TopicArn),
      source: `pipeline:${PIPELINES[pipeline].name}`,
      subject: Subject ?? '',
      body: Message,
      at: new Date(),
    });
    return { MessageId: `local-${Date.now()}` };
  };
  const approvalDynamo = createDocumentClient(options.target);
  const approve = localApprovalTask({
    dynamo: approvalDynamo,
    // PutItem into the approvals partition of the registry table, with the retrain's role.
    authorize: async (table, partition) => {
      const arn = deployment.tables.get(table)?.arn;
      if (!authorizer || !arn) return;
      await authorizer.authorize({
        principal: roleOf('retrain'),
        action: 'dynamodb:PutItem',
        resource: arn,
        context: { 'dynamodb:LeadingKeys': [partition] },
      });
    },
    onRequested: ({ id, version }) =>
      options.onNotification?.({
        at: new Date().toISOString(),
        source: 'pipeline:retrain',
        subject: `approval ${id} requested to promote ${version}: run \`keel models approve ${id}\` or \`keel models reject ${id}\``,
        message: { approvalId: id, version },
      }),
  });
  const invoke = (pipeline: PipelineName, functionArn: string) => async (input: unknown) => {
    await authorizer?.authorize({
      principal: roleOf(pipeline),
      action: 'lambda:InvokeFunction',
      resource: functionArn,
    });
    return lambda.invoke(functionArn, input);
  };
  // StartExecution of the rollout decision (a retrain that rolls its candidate out): the running
  // `keel up` runs it, as Step Functions would (local/rollout-decisions.ts), with the caller's grant checked.
  const startExecution = (pipeline: PipelineName) => async (parameters: unknown) => {
    const { StateMachineArn, Input, Name } = parameters as {
      StateMachineArn: string;
      Input: unknown;
      Name: string;
    };
    const rollout = machineOf('rollout');
    if (StateMachineArn !== rollout.arn) {
      throw new Error(`the local runner starts only the rollout state machine, not ${StateMachineArn}`);
    }
    await authorizer?.authorize({
      principal: roleOf(pipeline),
      action: 'states:StartExecution',
      resource: rollout.arn,
    });
    // requestRolloutDecision checks the input against its schema.
    await requestRolloutDecision(options.home, Input as RolloutDecisionInput);
    return {
      ExecutionArn: `${rollout.arn.replace(':stateMachine:', ':execution:')}:${Name}`,
      StartDate: new Date().toISOString(),
    };
  };
  // The retrain's training job (engine sagemaker), with the retrain's role's grants checked.
  const trainingJob = (pipeline: PipelineName) =>
    localTrainingJobs({
      target: options.target,
      env: deployment.env,
      authorize: async (action, resource, context) => {
        await authorizer?.authorize({ principal: roleOf(pipeline), action, resource, context });
      },
      ...(options.onTrainingJobCreated ? { onCreated: options.onTrainingJobCreated } : {}),
    });
  const handlers = Object.fromEntries(
    PIPELINE_NAMES.map((pipeline) => [
      pipeline,
      bindTaskStates(definitions[pipeline], {
        lambda: (functionArn) => invoke(pipeline, functionArn),
        publish: notify(pipeline),
        recordAndWait: approve,
        startExecution: startExecution(pipeline),
        trainingJob: trainingJob(pipeline),
      }),
    ]),
  ) as Record<PipelineName, Record<string, TaskHandler>>;
  const machines = Object.fromEntries(
    PIPELINE_NAMES.map((name) => [
      name,
      new StateMachine(
        capExecutionTimeout(
          inlineDistributedMaps(definitions[name]),
          Math.floor(MAX_LOCAL_WAIT_MS / 1000),
        ) as never,
        {
          validationOptions: { checkArn: false },
        },
      ),
    ]),
  ) as Record<PipelineName, StateMachine>;
  const driftFunction = functionOf(deployment, 'lambdas/drift/handler.ts');
  const qualityFunction = functionOf(deployment, 'lambdas/quality/handler.ts');
  /** Invokes a monitoring job's function; its failure is the run's, not a rejection. */
  async function invokeJob<Job extends MonitoringJobName, T>(
    job: Job,
    arn: string,
    input: object,
  ): Promise<JobRun<Job, T>> {
    const started = performance.now();
    try {
      const output = await lambda.invoke<T>(arn, input);
      return { pipeline: job, status: 'SUCCEEDED', output, durationMs: performance.now() - started };
    } catch (error) {
      const e = error as Error;
      return {
        pipeline: job,
        status: 'FAILED',
        output: undefined,
        error: { name: e.name, message: e.message },
        durationMs: performance.now() - started,
      };
    }
  }
  const guardFunction = functionOf(deployment, 'lambdas/rollout/handler.ts', 'guard');

  return {
    definitions,
    close: async () => {
      approvalDynamo.destroy();
      await functions.close();
      await sns.close();
      await cloudwatch.close();
    },
    guard: (event) => lambda.invoke<RolloutOutcome>(guardFunction.arn, event),
    drift: (input) => invokeJob('drift', driftFunction.arn, input),
    quality: (input) => invokeJob('quality', qualityFunction.arn, input),
    async run<T>(
      pipeline: PipelineName,
      input: Record<string, unknown>,
      onTaskDone?: (state: string, output: unknown) => void,
      onTaskFailed?: (state: string, error: Error) => void,
      signal?: AbortSignal,
    ) {
      checkWaits(definitions[pipeline], input);
      const started = performance.now();
      const name = `${PIPELINES[pipeline].name}-${randomUUID()}`;
      const machine = machineOf(pipeline);
      const outcome = await executeLocally<T>(machines[pipeline], input, {
        handlers: handlers[pipeline],
        onTaskDone,
        onTaskFailed,
        ...(signal ? { signal } : {}),
        // The Context Object as Step Functions fills it; the failure path reports the execution id.
        context: {
          Execution: {
            Id: `${machine.arn.replace(':stateMachine:', ':execution:')}:${name}`,
            Name: name,
            Input: input,
            StartTime: new Date().toISOString(),
          },
          StateMachine: { Id: machine.arn, Name: machine.name },
          // The callback token a waitForTaskToken state hands out (locally the approval's record is the callback).
          Task: { Token: `local-${name}` },
          // Resolvable, as in Step Functions; the approval task records its own entry time.
          State: { EnteredTime: new Date().toISOString() },
        },
      });
      return { pipeline, ...outcome, durationMs: performance.now() - started };
    },
  };
}

/**
 * Refuses an execution whose Wait state would wait longer than a timer holds, where the execution's
 * input names the time (`TimestampPath: $.key`): the emulator's single timer would end the wait at
 * once. A caller holds such an execution back until its wait fits (local/rollout-decisions.ts).
 */
function checkWaits(definition: AslDefinition, input: Record<string, unknown>): void {
  for (const [name, state] of Object.entries(definition.States)) {
    const key =
      typeof state.TimestampPath === 'string' ? /^\$\.(\w+)$/.exec(state.TimestampPath)?.[1] : undefined;
    const until = key === undefined ? Number.NaN : Date.parse(String(input[key]));
    if (until - Date.now() > MAX_LOCAL_WAIT_MS) {
      throw new RangeError(
        `state "${name}" would wait until ${String(input[key!])}, longer than the local runner can wait at once (24 days): start the execution later`,
      );
    }
  }
}

/**
 * On-call's webhook and the topics on-call's endpoints are subscribed to in the stage: the on-call topic
 * (which the drift function is told of) and the pipelines' notifications topic (where every pipeline's
 * failure notice goes; lib/constructs/oncall-topic.ts `deliverFrom`). None without a webhook.
 */
function onCallWebhookOf(
  deployment: LocalDeployment,
  definitions: Record<PipelineName, AslDefinition>,
  given: WebhookOptions | undefined,
): OnCallWebhook | undefined {
  const url = given?.url ?? optionalEnv(ONCALL_WEBHOOK_ENV, '');
  if (!url) return undefined;
  const onCallTopic = functionOf(deployment, 'lambdas/drift/handler.ts').environment[KEEL_ENV.onCallTopicArn];
  const failure = definitions.etl.States[NOTIFY_FAILURE_STATE]?.Parameters as
    | { TopicArn?: string }
    | undefined;
  const topicArns = [onCallTopic, failure?.TopicArn].filter((arn): arn is string => arn !== undefined);
  return { options: given ?? { url }, topicArns };
}

/** A pipeline's state machine in a deployment of the local stage. */
function pipelineMachine(deployment: LocalDeployment, pipeline: PipelineName) {
  const machine = deployment.stateMachines.get(stateMachineName(pipeline, LOCAL_ENVIRONMENT.stage));
  if (!machine) throw new Error(`the local stage has no ${pipeline} state machine`);
  return machine;
}

/** Each pipeline's synthesized definition (the Amazon States Language the state machine is created with). */
export function pipelineDefinitions(deployment: LocalDeployment): Record<PipelineName, AslDefinition> {
  return Object.fromEntries(
    PIPELINE_NAMES.map((pipeline) => [pipeline, pipelineMachine(deployment, pipeline).definition]),
  ) as Record<PipelineName, AslDefinition>;
}

const PIPELINE_NAMES = Object.keys(PIPELINES) as PipelineName[];

/**
 * Binds every Task state of a definition (Map processors included) to what it calls: a Lambda
 * function, an SNS publish, the approval wait (local/approvals.ts), or a SageMaker training job
 * (local/training-jobs.ts). A state whose resource the
 * local runner cannot play is refused here, not at run time.
 */
function bindTaskStates(
  definition: AslDefinition,
  bind: {
    readonly lambda: (functionArn: string) => TaskHandler;
    readonly publish: TaskHandler;
    readonly recordAndWait: TaskHandler;
    readonly startExecution: TaskHandler;
    readonly trainingJob: TaskHandler;
  },
): Record<string, TaskHandler> {
  const handlers: Record<string, TaskHandler> = {};
  const visit = (states: Record<string, AslState>) => {
    for (const [name, state] of Object.entries(states)) {
      const processor = (state.ItemProcessor ?? state.Iterator) as AslDefinition | undefined;
      if (processor) visit(processor.States);
      if (state.Type !== 'Task') continue;
      const resource = String(state.Resource);
      if (resource.startsWith('arn:aws:lambda:')) handlers[name] = bind.lambda(resource);
      else if (resource === 'arn:aws:states:::sns:publish') handlers[name] = bind.publish;
      else if (resource === 'arn:aws:states:::states:startExecution') handlers[name] = bind.startExecution;
      else if (resource === APPROVAL_TASK_RESOURCE) handlers[name] = bind.recordAndWait;
      else if (resource === TRAINING_JOB_RESOURCE) handlers[name] = bind.trainingJob;
      else throw new Error(`state "${name}" calls ${resource}, which the local runner cannot run`);
    }
  };
  visit(definition.States);
  return handlers;
}
