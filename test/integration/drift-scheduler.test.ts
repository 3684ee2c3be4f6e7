import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { DriftRun, PipelineRunner } from '#local/pipelines.ts';
import { startScheduler } from '#local/scheduler.ts';
import { SCHEDULES } from '#shared/pipelines/schedules.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { prepareLocalHandlers } from '../support/local-handlers.ts';

/** The hourly Drift schedule fires locally: the scheduler calls the drift job's handler, no state machine. */
let aws: TestAws | undefined;

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await aws?.close();
});

describe('local drift schedule', () => {
  it('fires the Drift schedule every hour through runner.drift with the schedule input', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // A Monday morning: the two hours advanced below hold no daily batch (02:00) or Sunday retrain.
    vi.setSystemTime(new Date('2026-11-02T10:30:00Z'));
    const drift = vi.fn(
      async (): Promise<DriftRun> => ({
        pipeline: 'drift',
        status: 'SUCCEEDED',
        output: undefined,
        durationMs: 5,
      }),
    );
    const run = vi.fn();
    const runner = { drift, run, definitions: {} } as unknown as PipelineRunner;
    const log: string[] = [];
    const scheduler = startScheduler(SCHEDULES, runner, (m) => log.push(m));
    try {
      expect(scheduler.upcoming().map((s) => s.target)).toContain('drift');
      await vi.advanceTimersByTimeAsync(3_600_000 + 1_000);
      expect(drift).toHaveBeenCalledTimes(1);
      expect(drift).toHaveBeenCalledWith({});
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(drift).toHaveBeenCalledTimes(2);
      expect(log).toContain('schedule Drift: starting drift');
      expect(log.some((m) => m.startsWith('schedule Drift: drift SUCCEEDED'))).toBe(true);
    } finally {
      scheduler.stop();
    }
  });

  it('the handler the runner calls is a step: no champion → NoModelError, a bad window → ValidationError', async () => {
    // runner.drift calls this handler directly; createPipelineRunner's CDK synth is left to pipelines.test.ts.
    aws = await startTestAws();
    await prepareLocalHandlers(aws.home, aws.target, aws.names);
    const { handler } = await import('#lambdas/drift/handler.ts');
    await expect(handler({})).rejects.toMatchObject({ name: 'NoModelError' });
    await expect(handler({ from: 'yesterday' })).rejects.toMatchObject({ name: 'ValidationError' });
  }, 30_000);
});
