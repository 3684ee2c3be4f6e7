import './promise-polyfill.ts';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { StateMachine } from 'aws-local-stepfunctions';
import { type AwsTarget, createAwsClients } from '#shared/aws/clients.ts';
import type { DriftJobInput, DriftJobResult } from '#shared/drift/job.ts';
import { monitoringOptionsFromEnv } from '#shared/monitoring/alarms.ts';
import { NOTIFY_FAILURE_STATE, PIPELINES, type PipelineName } from '#shared/pipelines/definitions.ts';
import type { StepHandler } from '#shared/pipelines/step.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { awaitApproval } from './approvals.ts';
import { prepareLocalHandlers } from './environment.ts';
import { fileNotifier, type Notification } from './notifications.ts';
import { type AslDefinition, inlineDistributedMaps, synthesizeStateMachines } from './state-machines.ts';

export { type Notification, notificationsFile } from './notifications.ts';

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
}

export interface PipelineRun<T = unknown> {
  readonly pipeline: PipelineName;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output: T | undefined;
  readonly error?: { readonly name: string; readonly message: string };
  readonly durationMs: number;
}

export interface PipelineRunner {
  run<T = unknown>(
    pipeline: PipelineName,
    input: Record<string, unknown>,
    onTaskDone?: (state: string, output: unknown) => void,
    /** Each failed task attempt, retried or not (what Step Functions' history shows). */
    onTaskFailed?: (state: string, error: Error) => void,
  ): Promise<PipelineRun<T>>;
  /** Runs the drift job's handler directly, as its Lambda runs (a single task, not a state machine). */
  drift(input: DriftJobInput): Promise<DriftRun>;
  readonly definitions: Record<PipelineName, AslDefinition>;
}

export type DriftRun = Omit<PipelineRun<Omit<DriftJobResult, 'report'>>, 'pipeline'> & {
  readonly pipeline: 'drift';
};

/**
 * One drift check against the local platform (what `keel drift check` runs): the champion's captured
 * predictions of the window (default the last hour) → report in `drift-reports/`, EMF lines in the
 * local metrics file. Returns the full report; errors (no champion, a bad window) propagate.
 */
export async function runDriftJob(
  options: Pick<PipelineRunnerOptions, 'home' | 'target' | 'names'> & { readonly modelName?: string },
  input: DriftJobInput = {},
): Promise<DriftJobResult> {
  await prepareLocalHandlers(options.home, options.target, options.names);
  const { runDrift } = await import('#shared/drift/job.ts');
  const clients = createAwsClients(options.target);
  try {
    return await runDrift(
      {
        s3: clients.s3,
        registry: {
          s3: clients.s3,
          dynamo: clients.dynamo,
          bucket: options.names.models,
          table: options.names.modelRegistry,
        },
        outputsBucket: options.names.outputs,
        modelName: options.modelName ?? process.env.KEEL_MODEL_NAME ?? 'churn',
        monitoring: monitoringOptionsFromEnv(),
      },
      input,
    );
  } finally {
    clients.s3.destroy();
    clients.dynamo.destroy();
  }
}

/**
 * Runs the state machines of the synthesized pipelines stack with aws-local-stepfunctions, each task
 * state bound by name to the handler its Lambda runs, in this process. SNS publish states write to
 * `${KEEL_HOME}/notifications.jsonl`. The handlers read their configuration from the environment at
 * import, as in Lambda, so the environment is set before they load.
 */
export async function createPipelineRunner(options: PipelineRunnerOptions): Promise<PipelineRunner> {
  await prepareLocalHandlers(options.home, options.target, options.names);
  const [etl, retrain, batch, drift] = await Promise.all([
    import('#lambdas/etl/handler.ts'),
    import('#lambdas/retrain/handler.ts'),
    import('#lambdas/batch/handler.ts'),
    import('#lambdas/drift/handler.ts'),
  ]);
  const definitions = synthesizeStateMachines();
  await mkdir(options.home, { recursive: true });

  const publish = fileNotifier(options.home, options.onNotification);
  const publishFault = (input: unknown) => {
    const fault = options.snsPublishFault?.((input as { Subject?: string }).Subject ?? '');
    if (fault) throw fault;
  };
  const notify = (pipeline: PipelineName) => async (input: unknown) => {
    publishFault(input);
    const { Subject, Message } = input as { Subject?: string; Message?: unknown };
    await publish({
      at: new Date().toISOString(),
      source: `pipeline:${PIPELINES[pipeline].name}`,
      subject: Subject ?? '',
      message: Message,
    });
    return { MessageId: `local-${Date.now()}` };
  };
  const handlers: Record<
    PipelineName,
    Record<string, StepHandler<unknown> | ((input: unknown) => Promise<unknown>)>
  > = {
    etl: {
      [PIPELINES.etl.states.plan]: etl.plan,
      [PIPELINES.etl.states.chunk]: etl.chunk,
      [PIPELINES.etl.states.finalize]: etl.finalize,
      [NOTIFY_FAILURE_STATE]: notify('etl'),
    },
    retrain: {
      [PIPELINES.retrain.states.train]: retrain.train,
      [PIPELINES.retrain.states.promote]: retrain.promote,
      [PIPELINES.retrain.states.notify]: notify('retrain'),
      [PIPELINES.retrain.states.approve]: async (input: unknown) => {
        publishFault(input);
        const { Subject, Message } = input as { Subject?: string; Message?: unknown };
        const decision = await awaitApproval(
          options.home,
          { subject: Subject ?? '', message: Message },
          (id) =>
            options.onNotification?.({
              at: new Date().toISOString(),
              source: 'pipeline:retrain',
              subject: `${Subject ?? 'approval requested'}: run \`keel models approve ${id}\` or \`keel models reject ${id}\``,
              message: Message,
            }),
        );
        return decision;
      },
      'Notify not approved': notify('retrain'),
      'Notify kept': notify('retrain'),
      [NOTIFY_FAILURE_STATE]: notify('retrain'),
    },
    batch: {
      [PIPELINES.batch.states.plan]: batch.plan,
      [PIPELINES.batch.states.score]: batch.score,
      [PIPELINES.batch.states.finalize]: batch.finalize,
      [NOTIFY_FAILURE_STATE]: notify('batch'),
    },
  };
  const machines = Object.fromEntries(
    (Object.keys(definitions) as PipelineName[]).map((name) => [
      name,
      new StateMachine(inlineDistributedMaps(definitions[name]) as never, {
        validationOptions: { checkArn: false },
      }),
    ]),
  ) as Record<PipelineName, StateMachine>;

  return {
    definitions,
    async drift(input) {
      const started = performance.now();
      try {
        const output = await drift.handler(input);
        return { pipeline: 'drift', status: 'SUCCEEDED', output, durationMs: performance.now() - started };
      } catch (error) {
        const e = error as Error;
        return {
          pipeline: 'drift',
          status: 'FAILED',
          output: undefined,
          error: { name: e.name, message: e.message },
          durationMs: performance.now() - started,
        };
      }
    },
    async run<T>(
      pipeline: PipelineName,
      input: Record<string, unknown>,
      onTaskDone?: (state: string, output: unknown) => void,
      onTaskFailed?: (state: string, error: Error) => void,
    ) {
      const started = performance.now();
      const taskResourceLocalHandlers = Object.fromEntries(
        Object.entries(handlers[pipeline]).map(([state, handler]) => [
          state,
          async (taskInput: unknown) => {
            const output = await Promise.resolve(handler(taskInput)).catch((error: Error) => {
              onTaskFailed?.(state, error);
              throw error;
            });
            onTaskDone?.(state, output);
            return output as never;
          },
        ]),
      );
      // Retries wait 1 ms instead of seconds: the retry logic runs, the laptop does not sit idle.
      const retryIntervalOverrides = Object.fromEntries(
        Object.keys(handlers[pipeline]).map((state) => [state, 1]),
      );
      const name = `${PIPELINES[pipeline].name}-${randomUUID()}`;
      const machineArn = `arn:aws:states:${options.target.region}:000000000000:stateMachine:keel-local-${PIPELINES[pipeline].name}`;
      const execution = machines[pipeline].run(input as never, {
        overrides: { taskResourceLocalHandlers, retryIntervalOverrides },
        // The Context Object as Step Functions fills it; the failure path reports the execution id.
        context: {
          Execution: {
            Id: `${machineArn.replace(':stateMachine:', ':execution:')}:${name}`,
            Name: name,
            Input: input,
            StartTime: new Date().toISOString(),
          },
          StateMachine: { Id: machineArn, Name: machineArn.split(':').at(-1) },
          // The callback token a waitForTaskToken state hands out; locally the approval id plays its part.
          Task: { Token: `local-${name}` },
        } as never,
      });
      try {
        const output = (await execution.result) as unknown as T;
        return { pipeline, status: 'SUCCEEDED', output, durationMs: performance.now() - started };
      } catch (error) {
        const e = error as Error & { cause?: unknown };
        return {
          pipeline,
          status: 'FAILED',
          output: undefined,
          error: { name: e.name, message: e.message },
          durationMs: performance.now() - started,
        };
      }
    },
  };
}
