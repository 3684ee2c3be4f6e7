import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PipelineRunner } from '#local/pipelines.ts';
import { startScheduler } from '#local/scheduler.ts';
import { configuredSchedules, parseKeelConfig, stageVariables } from '#shared/config/keel-config.ts';
import { KEEL_ENV } from '#shared/env.ts';

/** A runner that records what the scheduler starts (the pipelines themselves are tested elsewhere). */
function recordingRunner(started: string[]): PipelineRunner {
  const done = { status: 'SUCCEEDED', output: undefined, durationMs: 0 } as const;
  return {
    definitions: {} as PipelineRunner['definitions'],
    close: async () => undefined,
    run: async (pipeline) => {
      started.push(pipeline);
      return { ...done, pipeline };
    },
    drift: async () => {
      started.push('drift');
      return { ...done, pipeline: 'drift' };
    },
    quality: async () => {
      started.push('quality');
      return { ...done, pipeline: 'quality' };
    },
    guard: async () => {
      throw new Error('no schedule starts the rollout guard');
    },
  };
}

describe('the local scheduler with a stage configuration', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-11-24T10:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires the configured expressions and never a schedule the config switches off', async () => {
    const config = parseKeelConfig(
      {
        schedules: {
          batchScoring: { expression: 'rate(1 minute)' },
          retrain: { expression: 'rate(1 minute)', enabled: false },
          drift: { enabled: false },
          quality: { expression: 'rate(2 minutes)' },
        },
      },
      'test',
    );
    const started: string[] = [];
    const log: string[] = [];
    const scheduler = startScheduler(configuredSchedules(config), recordingRunner(started), (m) =>
      log.push(m),
    );
    try {
      expect(scheduler.upcoming()).toEqual([
        { id: 'BatchScoring', target: 'batch', at: new Date('2026-11-24T10:01:00Z') },
        // The quality job is one Lambda, run by its function as the drift job is.
        { id: 'Quality', target: 'quality', at: new Date('2026-11-24T10:02:00Z') },
      ]);
      await vi.advanceTimersByTimeAsync(3 * 60_000 + 1_000);
      expect(started.sort()).toEqual(['batch', 'batch', 'batch', 'quality']);
      expect(log.filter((m) => m.includes('Retrain') || m.includes('Drift'))).toEqual([]);
    } finally {
      scheduler.stop();
    }
  });
});

describe('the variables a stage gives its handlers', () => {
  it('carry the model name, the alarm options and, when set, the ETL bad-row share', () => {
    expect(stageVariables(parseKeelConfig({}, 'test'))).toEqual({
      KEEL_MODEL_NAME: 'churn',
      [KEEL_ENV.alarmOptions]: '{}',
    });
    expect(
      stageVariables(
        parseKeelConfig(
          { modelName: 'attrition', alarms: { latency: { p99Ms: 300 } }, etl: { maxBadRowShare: 0.02 } },
          'test',
        ),
      ),
    ).toEqual({
      KEEL_MODEL_NAME: 'attrition',
      [KEEL_ENV.alarmOptions]: '{"latency":{"p99Ms":300}}',
      KEEL_ETL_MAX_BAD_ROW_SHARE: '0.02',
    });
  });
});
