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
