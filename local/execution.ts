import './promise-polyfill.ts';
import { ExecutionAbortedError, ExecutionTimeoutError, type StateMachine } from 'aws-local-stepfunctions';

/**
 * One execution of a state machine by aws-local-stepfunctions, held to Step Functions' rules that the
 * library leaves out: a state whose input or output is over 256 KiB fails the execution with
 * States.DataLimitExceeded (which no Catch catches, States.ALL included), and an execution that
 * outlives its TimeoutSeconds ends TIMED_OUT (the library enforces task TimeoutSeconds itself).
 */

export type TaskHandler = (input: unknown) => Promise<unknown>;

/** The longest a Node.js timer holds: a longer one fires at once (with a warning). */
export const MAX_LOCAL_WAIT_MS = 2 ** 31 - 1;

export type ExecutionStatus = 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface ExecutionOutcome<T> {
  readonly status: ExecutionStatus;
  readonly output: T | undefined;
  readonly error?: { readonly name: string; readonly message: string };
  /** The state whose failure ended the execution (the first one a Catch took, else the last that failed). */
  readonly failedState?: string;
}

export interface LocalExecutionOptions {
  /** What each Task state calls, by state name. */
  readonly handlers: Readonly<Record<string, TaskHandler>>;
  /** The Context Object (`$$`) as Step Functions fills it. */
  readonly context: Record<string, unknown>;
  readonly onTaskDone?: (state: string, output: unknown) => void;
  /** Each failed task attempt, retried or not (what Step Functions' history shows). */
  readonly onTaskFailed?: (state: string, error: Error) => void;
  /** Stops the execution (StopExecution): it ends ABORTED, its waits and tasks cut short. */
  readonly signal?: AbortSignal;
}

/** Step Functions' limit on the data of a state: its input, its output, a task's result. */
export const MAX_STATE_PAYLOAD_BYTES = 256 * 1024;

function dataLimitError(state: string): Error {
  return Object.assign(
    new Error(
      `The state/task '${state}' returned a result with a size exceeding the maximum number of bytes service limit.`,
    ),
    { name: 'States.DataLimitExceeded' },
  );
}

export async function executeLocally<T>(
  machine: StateMachine,
  input: unknown,
  options: LocalExecutionOptions,
): Promise<ExecutionOutcome<T>> {
  // Set when a state's data outgrows the limit: the execution fails, and no task starts after it.
  let overLimit: { readonly state: string; readonly bytes: number } | undefined;
  let caught: string | undefined;
  let failed: string | undefined;
  let abort: () => void = () => undefined;
  /** A task's input or result over the limit stops the execution before anything else runs. */
  const guard = (state: string, payload: unknown) => {
    const bytes = Buffer.byteLength(JSON.stringify(payload ?? null));
    if (bytes <= MAX_STATE_PAYLOAD_BYTES) return;
    overLimit ??= { state, bytes };
    abort();
    throw dataLimitError(state);
  };
  const taskResourceLocalHandlers = Object.fromEntries(
    Object.entries(options.handlers).map(([state, handler]) => [
      state,
      async (taskInput: unknown) => {
        if (overLimit) throw dataLimitError(overLimit.state);
        guard(state, taskInput);
        const output = await handler(taskInput).catch((error: Error) => {
          options.onTaskFailed?.(state, error);
          throw error;
        });
        guard(state, output);
        options.onTaskDone?.(state, output);
        return output as never;
      },
    ]),
  );
  // Retries wait 1 ms instead of seconds: the retry logic runs, the laptop does not sit idle.
  const retryIntervalOverrides = Object.fromEntries(Object.keys(options.handlers).map((state) => [state, 1]));
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers, retryIntervalOverrides },
    context: options.context as never,
  });
  abort = () => execution.abort();
  if (options.signal?.aborted) abort();
  else options.signal?.addEventListener('abort', abort, { once: true });
  // Every other state (a Map's collected results, a Pass) is checked from the execution's history.
  const watched = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type.startsWith('Execution') && event.type !== 'ExecutionStarted') return;
      if (event.type === 'StateCaught') caught ??= event.state.name;
      if (event.type === 'StateFailed') failed = event.state.name;
      if (event.type !== 'StateEntered' && event.type !== 'StateExited') continue;
      const payload = event.type === 'StateEntered' ? event.state.input : event.state.output;
      const bytes = Buffer.byteLength(JSON.stringify(payload ?? null));
      if (bytes > MAX_STATE_PAYLOAD_BYTES && !overLimit) {
        overLimit = { state: event.state.name, bytes };
        abort();
        return;
      }
    }
  })();
  const overLimitOutcome = (limit: { state: string; bytes: number }): ExecutionOutcome<T> => {
    const e = dataLimitError(limit.state);
    return {
      status: 'FAILED',
      output: undefined,
      error: { name: e.name, message: `${e.message} (${limit.bytes} bytes)` },
    };
  };
  try {
    const output = (await execution.result) as T;
    await watched;
    return overLimit ? overLimitOutcome(overLimit) : { status: 'SUCCEEDED', output };
  } catch (error) {
    if (overLimit) return overLimitOutcome(overLimit);
    if (error instanceof ExecutionAbortedError) {
      return {
        status: 'ABORTED',
        output: undefined,
        error: { name: 'ExecutionAborted', message: 'the execution was stopped' },
      };
    }
    if (error instanceof ExecutionTimeoutError) {
      return {
        status: 'TIMED_OUT',
        output: undefined,
        error: { name: 'States.Timeout', message: 'the execution did not finish within its TimeoutSeconds' },
      };
    }
    // The library wraps the error that ended the run (a Fail state's Error and Cause, or a task's
    // error no Catch took): Step Functions reports that one as the execution's error and cause.
    const e = ((error as { cause?: unknown }).cause ?? error) as Error;
    await watched;
    const failedState = caught ?? failed;
    return {
      status: 'FAILED',
      output: undefined,
      error: { name: e.name, message: e.message },
      ...(failedState ? { failedState } : {}),
    };
  }
}
