import { createPipelineRunner, type PipelineRun } from '#local/pipelines.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/runtime.ts';
import type { PipelineName } from '#shared/pipelines/definitions.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { type Output, UserError } from './output.ts';

/**
 * Runs a pipeline's synthesized state machine against the running local platform, with progress, and
 * turns a failed execution into a non-zero exit with the execution's error.
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
    // Starting a deployed state machine needs the Step Functions client, not a dependency of Keel yet:
    // hand over the exact command instead.
    const arn = stage.stateMachines[pipeline];
    if (!arn)
      throw new UserError(
        `stack Keel-${stage.stage}-Pipelines is not deployed (no ${pipeline} state machine)`,
      );
    throw new UserError(
      `keel does not start deployed executions yet; start this one with the AWS CLI:\n` +
        `  aws stepfunctions start-execution --region ${stage.target.region} --state-machine-arn ${arn} ` +
        `--input '${JSON.stringify(input)}'`,
    );
  }
  const home = keelHome();
  const runtime = await requireRuntime(home);
  output.info(`running the ${pipeline} state machine…`);
  const runner = await createPipelineRunner({
    home,
    target: runtimeTarget(runtime),
    names: runtime.names as ResourceNames,
    onNotification: (n) => output.info(`notification: ${n.subject}`),
  });
  let total: number | undefined;
  let done = 0;
  let bar: ReturnType<Output['progress']>;
  const run: PipelineRun<T> = await runner.run<T>(pipeline, input, (state, result) => {
    if (!progress) return;
    const t = progress.total(state, result);
    if (t !== undefined) {
      total = t;
      bar = output.progress(progress.label, total, progress.unit);
    }
    done += progress.done(state, result);
    bar?.update(done);
  });
  if (bar) bar.finish(done);
  if (run.status === 'FAILED') {
    throw new UserError(
      `the ${pipeline} execution failed: ${run.error?.message ?? 'unknown error'} (see ${home}/notifications.jsonl)`,
    );
  }
  return run.output as T;
}
