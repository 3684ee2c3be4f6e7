import type { JobOutput, JobRun, PipelineRun } from '#local/pipelines.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/running-platform.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import type { PipelineName } from '#shared/pipelines/definitions.ts';
import type { MonitoringJobName } from '#shared/pipelines/schedules.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { type Output, UserError } from './output.ts';

/**
 * Runs a pipeline's state machine and returns its output, with progress: the synthesized one against the
 * running local platform, or with --stage the deployed one (StartExecution, then waiting for its end).
 * A failed execution is a non-zero exit with the execution's error.
 */
export async function runPipelineCommand<T>(
  output: Output,
  pipeline: PipelineName,
  input: Record<string, unknown>,
  progress?: {
    label: string;
    unit: string;
    total: (state: string, result: unknown) => number | undefined;
    done: (state: string, result: unknown) => number;
  },
): Promise<T> {
  const stage = await output.stage();
  if (stage) {
    const arn = stage.stateMachines[pipeline];
    if (!arn)
      throw new UserError(`stack Keel-${stage.stage}-Pipelines has no ${pipeline} state machine: deploy it`);
    output.info(`running the ${pipeline} state machine of stage ${stage.stage}…`);
    const { runStageExecution } = await import('#cli/stage/executions.ts');
    const run = await runStageExecution(stage.target.region, arn, input, {
      onStarted: (execution) => output.info(`execution ${execution}`),
    });
    if (run.status !== 'SUCCEEDED') {
      throw new UserError(
        executionFailure(pipeline, run.status ?? 'UNKNOWN', run.failedState, run.error, run.cause) +
          ` (execution ${run.executionArn})`,
      );
    }
    return JSON.parse(run.output ?? 'null') as T;
  }
  const home = keelHome();
  const runtime = await requireRuntime(home);
  output.info(`running the ${pipeline} state machine…`);
  const { createPipelineRunner } = await import('#local/pipelines.ts');
  const runner = await createPipelineRunner({
    home,
    target: runtimeTarget(runtime),
    names: runtime.names as ResourceNames,
    onNotification: (n) => output.info(`notification: ${n.subject}`),
  });
  let total: number | undefined;
  let done = 0;
  let bar: ReturnType<Output['progress']>;
  const run: PipelineRun<T> = await runner
    .run<T>(pipeline, input, (state, result) => {
      if (!progress) return;
      const t = progress.total(state, result);
      if (t !== undefined) {
        total = t;
        bar = output.progress(progress.label, total, progress.unit);
      }
      done += progress.done(state, result);
      bar?.update(done);
    })
    .finally(() => runner.close());
  if (bar) bar.finish(done);
  if (run.status !== 'SUCCEEDED') {
    throw new UserError(
      `${executionFailure(pipeline, run.status, run.failedState, run.error?.name, run.error?.message)} ` +
        `(also written to ${home}/notifications.jsonl)`,
    );
  }
  return run.output as T;
}

/**
 * What a failed execution says: the state that failed, the error's name and its cause. A Lambda error's
 * cause is the JSON Lambda reports (`{"errorType", "errorMessage", "trace"}`): its message is what to read.
 */
export function executionFailure(
  pipeline: PipelineName,
  status: string,
  state: string | undefined,
  error: string | undefined,
  cause: string | undefined,
): string {
  let reason = cause;
  try {
    const parsed = JSON.parse(cause ?? '') as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') reason = parsed.errorMessage;
  } catch {
    // a plain-text cause
  }
  return (
    `the ${pipeline} execution ${status.toLowerCase().replace('_', ' ')}` +
    `${state ? ` in state "${state}"` : ''}: ${error ?? 'unknown error'}${reason ? `: ${reason}` : ''}`
  );
}

/**
 * Runs a monitoring job's function on the running local platform, as its schedule does (its notices
 * go through the same checks as in AWS and are echoed here); returns its output and the platform's
 * S3 target and names for reading what it wrote. A failed run is a non-zero exit with its error.
 */
export async function runLocalJob<Job extends MonitoringJobName>(
  output: Output,
  job: Job,
  input: Record<string, unknown>,
): Promise<{ output: JobOutput<Job>; target: AwsTarget; names: ResourceNames }> {
  const home = keelHome();
  const runtime = await requireRuntime(home);
  const target = runtimeTarget(runtime);
  const names = runtime.names as ResourceNames;
  const { createPipelineRunner } = await import('#local/pipelines.ts');
  const runner = await createPipelineRunner({
    home,
    target,
    names,
    onNotification: (n) => output.info(`notification: ${n.subject}`),
  });
  // runner[job] is the job's own invoker: its run carries that job's output.
  const run = (await runner[job](input).finally(() => runner.close())) as JobRun<Job, JobOutput<Job>>;
  if (run.status !== 'SUCCEEDED' || !run.output) {
    throw new UserError(`the ${job} job failed: ${run.error?.name}: ${run.error?.message}`);
  }
  return { output: run.output, target, names };
}
