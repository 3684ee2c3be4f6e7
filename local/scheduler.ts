import type { PipelineName } from '#shared/pipelines/definitions.ts';
import { isMonitoringJob, nextFireTime, type ScheduleDefinition } from '#shared/pipelines/schedules.ts';
import type { PipelineRunner } from './pipelines.ts';

export interface LocalScheduler {
  /** Next fire time of each schedule. */
  upcoming(): { id: string; target: string; at: Date }[];
  stop(): void;
}

/**
 * Fires the same schedules EventBridge fires in AWS, with the same expressions and inputs, by running
 * the target pipeline's state machine locally (the drift job, one Lambda in AWS, runs its handler
 * directly). A run still going when the next fire comes is not doubled: that fire is skipped and
 * logged.
 */
export function startScheduler(
  schedules: readonly ScheduleDefinition[],
  runner: PipelineRunner,
  log: (message: string) => void,
  now: () => Date = () => new Date(),
): LocalScheduler {
  const anchor = now();
  const timers = new Map<string, NodeJS.Timeout>();
  const next = new Map<string, Date>();
  const running = new Set<string>();
  // A schedule its stage's config switches off does not fire here either.
  const runnable = schedules.filter((schedule) => schedule.enabled ?? true);
  const start = (schedule: ScheduleDefinition) =>
    isMonitoringJob(schedule.target)
      ? runner[schedule.target]({ ...schedule.input })
      : runner.run(schedule.target as PipelineName, { ...schedule.input });

  const arm = (schedule: ScheduleDefinition) => {
    const at = nextFireTime(schedule.expression, now(), anchor);
    next.set(schedule.id, at);
    // setTimeout holds at most ~24.8 days; far schedules re-arm on the way.
    const delay = Math.min(at.getTime() - now().getTime(), 2 ** 31 - 1);
    const timer = setTimeout(async () => {
      if (now() < at) return arm(schedule);
      arm(schedule);
      if (running.has(schedule.id)) return log(`schedule ${schedule.id}: previous run still going, skipped`);
      running.add(schedule.id);
      log(`schedule ${schedule.id}: starting ${schedule.target}`);
      try {
        const run = await start(schedule);
        log(
          `schedule ${schedule.id}: ${schedule.target} ${run.status} in ${(run.durationMs / 1000).toFixed(1)}s` +
            (run.error ? ` (${run.error.name}: ${run.error.message})` : ''),
        );
      } finally {
        running.delete(schedule.id);
      }
    }, delay);
    timer.unref();
    timers.set(schedule.id, timer);
  };
  for (const schedule of runnable) arm(schedule);

  return {
    upcoming: () => runnable.map((s) => ({ id: s.id, target: s.target, at: next.get(s.id)! })),
    stop: () => {
      for (const timer of timers.values()) clearTimeout(timer);
    },
  };
}
