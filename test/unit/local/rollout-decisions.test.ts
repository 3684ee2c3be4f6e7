import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PipelineRunner } from '#local/pipelines.ts';
import {
  DecisionNotTakenError,
  type RolloutDecisionInput,
  type RolloutDecisions,
  readRolloutDecision,
  requestRolloutDecision,
  rolloutDecisionsDir,
  startRolloutDecisions,
} from '#local/rollout-decisions.ts';
import { capExecutionTimeout } from '#local/state-machines.ts';
import { ConflictError } from '#shared/errors.ts';

/**
 * The local rollout decisions' bookkeeping, over a runner that records what it is asked to run: a
 * request is taken once, its outcome recorded; a platform that stops leaves its decisions to the next;
 * a bake longer than a timer is held back, not run at once.
 */

let home: string;
let managers: RolloutDecisions[];
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'keel-rollout-decisions-'));
  managers = [];
});
afterEach(async () => {
  await Promise.all(managers.map((m) => m.stop()));
  await rm(home, { recursive: true, force: true });
});

const input = (rolloutId: string, inMs: number): RolloutDecisionInput => ({
  name: 'churn',
  rolloutId,
  bakeEndsAt: new Date(Date.now() + inMs).toISOString(),
});

/** A runner whose executions end when told, or when aborted (ABORTED, as the real runner reports). */
function fakeRunner() {
  const runs: { input: Record<string, unknown>; finish: () => void }[] = [];
  const runner: Pick<PipelineRunner, 'run'> = {
    run: (pipeline, runInput, _done, _failed, signal) =>
      new Promise((resolve) => {
        const end = (status: 'SUCCEEDED' | 'ABORTED') =>
          resolve({
            pipeline,
            status,
            durationMs: 1,
            output: status === 'SUCCEEDED' ? { ...runInput, decision: { summary: 'promoted' } } : undefined,
          } as never);
        runs.push({ input: runInput, finish: () => end('SUCCEEDED') });
        if (signal?.aborted) end('ABORTED');
        signal?.addEventListener('abort', () => end('ABORTED'));
      }),
  };
  return { runner, runs };
}

const start = (runner: Pick<PipelineRunner, 'run'>) => {
  const manager = startRolloutDecisions({ home, runner, pollMs: 50 });
  managers.push(manager);
  return manager;
};

describe('local rollout decisions', () => {
  it('takes a request once, runs the rollout state machine with its input, records the outcome', async () => {
    const { runner, runs } = fakeRunner();
    const manager = start(runner);
    const asked = input('r-00000000000a', 5_000);
    const taken = await requestRolloutDecision(home, asked, { pollMs: 20 });
    expect(taken.execution?.status).toBe('running');
    await expect(requestRolloutDecision(home, asked)).resolves.toMatchObject({ input: asked });
    await expect(requestRolloutDecision(home, { ...asked, bakeEndsAt: 'x' })).rejects.toThrow();
    await expect(
      requestRolloutDecision(home, { ...asked, bakeEndsAt: new Date().toISOString() }),
    ).rejects.toThrow(ConflictError);
    await vi.waitFor(() => expect(runs.map((r) => r.input)).toEqual([asked]));
    runs[0]!.finish();
    await Promise.all(manager.running.values());
    expect(await readRolloutDecision(home, asked.rolloutId)).toMatchObject({
      input: asked,
      execution: {
        status: 'SUCCEEDED',
        endedAt: expect.any(String),
        output: { decision: { summary: 'promoted' } },
      },
    });
    await manager.scan();
    expect(runs).toHaveLength(1);
  });

  it('leaves a decision stopped with keel up to the next keel up, which runs it again', async () => {
    const first = fakeRunner();
    const manager = start(first.runner);
    const asked = input('r-00000000000b', 60_000);
    await requestRolloutDecision(home, asked, { pollMs: 20 });
    await vi.waitFor(() => expect(first.runs).toHaveLength(1));
    await manager.stop();
    const left = await readRolloutDecision(home, asked.rolloutId);
    expect(left?.execution?.status).toBe('running');
    expect(left?.execution?.endedAt).toBeUndefined();

    const second = fakeRunner();
    start(second.runner);
    await vi.waitFor(() => expect(second.runs.map((r) => r.input)).toEqual([asked]));
  });

  it('holds a bake longer than a timer back instead of running its wait at once', async () => {
    const { runner, runs } = fakeRunner();
    const manager = start(runner);
    const asked = input('r-00000000000c', 30 * 86_400_000);
    const taken = await requestRolloutDecision(home, asked, { pollMs: 20 });
    expect(taken.execution?.status).toBe('waiting');
    await manager.scan();
    expect(runs).toEqual([]);
  });

  it('says when no platform takes the request, and keeps it for when one runs', async () => {
    const asked = input('r-00000000000d', 5_000);
    await expect(requestRolloutDecision(home, asked, { timeoutMs: 100, pollMs: 20 })).rejects.toThrow(
      DecisionNotTakenError,
    );
    expect(await readdir(rolloutDecisionsDir(home))).toEqual(['r-00000000000d.json']);
    await writeFile(join(rolloutDecisionsDir(home), 'r-00000000000e.json'), '{"input": {"name": 1}}');
    const { runner, runs } = fakeRunner();
    start(runner);
    await vi.waitFor(() => expect(runs.map((r) => r.input.rolloutId)).toEqual(['r-00000000000d']));
  });

  it('caps an execution timeout no timer holds (the local runner’s second transformation)', () => {
    const definition = { StartAt: 'A', States: {}, TimeoutSeconds: 30 * 86_400 };
    expect(capExecutionTimeout(definition, 2_147_483)).toEqual({ ...definition, TimeoutSeconds: 2_147_483 });
    expect(capExecutionTimeout({ ...definition, TimeoutSeconds: 21_600 }, 2_147_483).TimeoutSeconds).toBe(
      21_600,
    );
  });
});
