import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ConflictError, KeelError } from '#shared/errors.ts';
import { rolloutSchema } from '#shared/registry/rollout.ts';
import { type ExecutionStatus, MAX_LOCAL_WAIT_MS } from './execution.ts';

/**
 * The rollout decisions of the local platform: the executions of the rollout state machine that
 * `keel up` runs, one per rollout, as Step Functions runs them for a deployed stage. A command in another
 * terminal asks for one with {@link requestRolloutDecision} (a request file in
 * `${KEEL_HOME}/rollout-decisions/`); the running platform takes it within a second
 * ({@link startRolloutDecisions}), runs the state machine (it waits for the bake end, then decides) and
 * records the outcome in the same file.
 *
 * Unlike Step Functions, an execution here lives in the `keel up` process: one stopped or killed
 * mid-bake is started again when `keel up` comes back (the decision finds an ended rollout ended and
 * does nothing). A bake longer than one Node.js timer holds (24 days) is held back by the platform and
 * started once its wait fits, with a day to spare.
 */

/** The rollout state machine's input. */
export const rolloutDecisionInputSchema = z.object({
  name: z.string().min(1),
  rolloutId: rolloutSchema.shape.id,
  bakeEndsAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time'),
});
export type RolloutDecisionInput = z.infer<typeof rolloutDecisionInputSchema>;

/** One decision as its file holds it: the request, then what the running platform made of it. */
export interface RolloutDecisionRecord {
  readonly input: RolloutDecisionInput;
  readonly requestedAt: string;
  readonly execution?: {
    /** `waiting`: held until its wait fits one timer; `running`: in the state machine. */
    readonly status: 'waiting' | 'running' | ExecutionStatus;
    readonly takenAt: string;
    readonly endedAt?: string;
    readonly output?: unknown;
    readonly error?: { readonly name: string; readonly message: string };
  };
}

export const rolloutDecisionsDir = (home: string) => join(home, 'rollout-decisions');

/**
 * The longest bake an execution is started with: one timer's worth, less a day for the decision within
 * the execution's timeout (capped to one timer too, local/state-machines.ts).
 */
const LONGEST_WAIT_MS = MAX_LOCAL_WAIT_MS - 86_400_000;
const recordFile = (home: string, rolloutId: string) => join(rolloutDecisionsDir(home), `${rolloutId}.json`);

/** The running platform did not take a decision request in time. */
export class DecisionNotTakenError extends KeelError {
  readonly code = 'Unavailable';
}

export async function readRolloutDecision(
  home: string,
  rolloutId: string,
): Promise<RolloutDecisionRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(home, rolloutId), 'utf8')) as RolloutDecisionRecord;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOENT: no such request; a SyntaxError: caught between a write and its rename, which cannot be.
    if (code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Written whole and renamed: a reader never sees half a record. */
async function writeRecord(home: string, record: RolloutDecisionRecord): Promise<void> {
  const file = recordFile(home, record.input.rolloutId);
  await writeFile(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/**
 * Asks the running platform in `home` to run the decision of a rollout, and waits until it has taken
 * the request (at most `timeoutMs`). Asking again for the same rollout returns the decision already
 * asked for, as StartExecution does for an execution of the same name and input.
 */
export async function requestRolloutDecision(
  home: string,
  input: RolloutDecisionInput,
  options: { readonly timeoutMs?: number; readonly pollMs?: number } = {},
): Promise<RolloutDecisionRecord> {
  const request = rolloutDecisionInputSchema.parse(input);
  await mkdir(rolloutDecisionsDir(home), { recursive: true });
  const file = recordFile(home, request.rolloutId);
  const record: RolloutDecisionRecord = { input: request, requestedAt: new Date().toISOString() };
  try {
    await writeFile(file, `${JSON.stringify(record, null, 2)}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const existing = await readRolloutDecision(home, request.rolloutId);
    if (existing && JSON.stringify(existing.input) !== JSON.stringify(request)) {
      throw new ConflictError(
        `the decision of rollout ${request.rolloutId} was asked for with another input (${JSON.stringify(existing.input)})`,
      );
    }
  }
  const until = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const current = await readRolloutDecision(home, request.rolloutId);
    if (current?.execution) return current;
    if (Date.now() > until) {
      throw new DecisionNotTakenError(
        `keel up did not take the decision of rollout ${request.rolloutId} within ${Math.round((options.timeoutMs ?? 15_000) / 1000)} s ` +
          `(is it running in ${home}?); the request stays in ${file} and is taken when it runs`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

/**
 * What runs a decision: the pipeline runner's `run` of the rollout state machine (local/pipelines.ts,
 * which starts decisions through this module, so the type is stated here rather than imported).
 */
export interface DecisionRunner {
  run(
    pipeline: 'rollout',
    input: Record<string, unknown>,
    onTaskDone: undefined,
    onTaskFailed: undefined,
    signal: AbortSignal,
  ): Promise<{
    readonly status: ExecutionStatus;
    readonly output: unknown;
    readonly error?: { readonly name: string; readonly message: string };
  }>;
}

export interface RolloutDecisions {
  /** Takes the requests not taken yet (also done every `pollMs`). */
  scan(): Promise<void>;
  /** The executions in progress, by rollout id, settled when each ends. */
  readonly running: ReadonlyMap<string, Promise<void>>;
  /** Stops the executions in progress; their requests stay, to be taken again by the next `keel up`. */
  stop(): Promise<void>;
}

/**
 * The running platform's side: every `pollMs` (default 1 s), each request not yet taken, or taken by a
 * platform that stopped before its decision ended, is run on `runner`.
 */
export function startRolloutDecisions(options: {
  readonly home: string;
  readonly runner: DecisionRunner;
  readonly log?: (message: string) => void;
  readonly pollMs?: number;
}): RolloutDecisions {
  const { home, runner } = options;
  const log = options.log ?? (() => {});
  const running = new Map<string, Promise<void>>();
  const stopping = new AbortController();
  const timers = new Set<NodeJS.Timeout>();

  /** Resolves once the bake end is close enough for one timer of the state machine's Wait state. */
  const fits = (input: RolloutDecisionInput) =>
    new Promise<void>((resolve) => {
      stopping.signal.addEventListener('abort', () => resolve(), { once: true });
      const check = () => {
        const left = Date.parse(input.bakeEndsAt) - Date.now() - LONGEST_WAIT_MS;
        if (left <= 0 || stopping.signal.aborted) return resolve();
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            check();
          },
          Math.min(left + 1_000, MAX_LOCAL_WAIT_MS),
        );
        timer.unref();
        timers.add(timer);
      };
      check();
    });

  async function decide(record: RolloutDecisionRecord): Promise<void> {
    const { input } = record;
    const takenAt = new Date().toISOString();
    const far = Date.parse(input.bakeEndsAt) - Date.now() > LONGEST_WAIT_MS;
    await writeRecord(home, { ...record, execution: { status: far ? 'waiting' : 'running', takenAt } });
    if (far) {
      log(
        `rollout ${input.rolloutId}: its decision starts once the bake end (${input.bakeEndsAt}) is 23 days away`,
      );
      await fits(input);
      if (stopping.signal.aborted) return;
      await writeRecord(home, { ...record, execution: { status: 'running', takenAt } });
    }
    if (stopping.signal.aborted) return;
    log(`rollout ${input.rolloutId}: its decision waits for the bake end (${input.bakeEndsAt})`);
    const run = await runner.run('rollout', { ...input }, undefined, undefined, stopping.signal);
    // Stopped with keel up: left as taken, so the next keel up runs it again.
    if (run.status === 'ABORTED' && stopping.signal.aborted) return;
    await writeRecord(home, {
      ...record,
      execution: {
        status: run.status,
        takenAt,
        endedAt: new Date().toISOString(),
        ...(run.output === undefined ? {} : { output: run.output }),
        ...(run.error ? { error: run.error } : {}),
      },
    });
    const summary = (run.output as { decision?: { summary?: string } } | undefined)?.decision?.summary;
    log(
      `rollout ${input.rolloutId}: decision ${run.status}` +
        (summary ? `: ${summary}` : run.error ? ` (${run.error.name}: ${run.error.message})` : ''),
    );
  }

  async function scan(): Promise<void> {
    let files: string[];
    try {
      files = await readdir(rolloutDecisionsDir(home));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      const rolloutId = file.slice(0, -'.json'.length);
      if (running.has(rolloutId) || stopping.signal.aborted) continue;
      const record = await readRolloutDecision(home, rolloutId).catch(() => undefined);
      if (!record || record.execution?.endedAt) continue;
      const parsed = rolloutDecisionInputSchema.safeParse(record.input);
      if (!parsed.success || parsed.data.rolloutId !== rolloutId) {
        log(
          `rollout decision request ${file} is not one (${parsed.error?.message ?? 'another rollout id'}): ignored`,
        );
        continue;
      }
      const done = decide(record)
        .catch((error: Error) => log(`rollout ${rolloutId}: the decision could not run: ${error.message}`))
        .finally(() => {
          // Ended: the record says so and the next scan skips it.
          running.delete(rolloutId);
        });
      running.set(rolloutId, done);
    }
  }

  let scanning: Promise<void> | undefined;
  const tick = () => {
    scanning ??= scan()
      .catch((error: Error) => log(`rollout decisions: ${error.message}`))
      .finally(() => {
        scanning = undefined;
      });
    return scanning;
  };
  const interval = setInterval(tick, options.pollMs ?? 1_000);
  interval.unref();
  void tick();

  return {
    scan: tick,
    running,
    async stop() {
      clearInterval(interval);
      stopping.abort();
      for (const timer of timers) clearTimeout(timer);
      await scanning;
      await Promise.all(running.values());
    },
  };
}
