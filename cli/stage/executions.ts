import { randomBytes } from 'node:crypto';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { NOTIFY_FAILURE_STATE } from '#shared/pipelines/definitions.ts';
import { StageError } from './stage-info.ts';

/**
 * Executions of a deployed stage's state machines. The client takes the SDK's default credential chain;
 * AWS_ENDPOINT_URL_SFN points it at an emulator.
 */
export type StageExecution = Pick<
  DescribeExecutionCommandOutput,
  'executionArn' | 'status' | 'output' | 'error' | 'cause'
> & {
  /** For a failed execution: the state whose failure ended it, from the execution's history. */
  readonly failedState?: string;
};

/** The name of the state an event belongs to: its own, or that of the `…StateEntered` event it follows from. */
function stateOf(event: HistoryEvent, byId: ReadonlyMap<number, HistoryEvent>): string | undefined {
  for (let e: HistoryEvent | undefined = event; e; e = byId.get(e.previousEventId ?? -1)) {
    if (e.stateEnteredEventDetails?.name) return e.stateEnteredEventDetails.name;
  }
  return undefined;
}

/**
 * The state whose failure ended an execution: the newest step failure that is not the failure notice's
 * own (read from the end of the history), named by the entered event it follows from.
 */
async function failedStateOf(sfn: SFNClient, executionArn: string): Promise<string | undefined> {
  const byId = new Map<number, HistoryEvent>();
  const failures: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call('GetExecutionHistory', () =>
      sfn.send(
        new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1000, nextToken }),
      ),
    );
    for (const event of page.events ?? []) {
      byId.set(event.id!, event);
      if (event.type?.endsWith('Failed') && !event.type.startsWith('Execution')) failures.push(event);
    }
    nextToken = page.nextToken;
    for (const failure of failures) {
      const state = stateOf(failure, byId);
      if (state === undefined && nextToken) break; // its entered event is on an older page
      if (state !== undefined && state !== NOTIFY_FAILURE_STATE) return state;
    }
  } while (nextToken);
  return undefined;
}

/** The SDK's error name and message, as a StageError that says which call failed. */
async function call<T>(action: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const { name, message } = error as Error;
    throw new StageError(`Step Functions ${action} failed: ${name}: ${message}`, { cause: error });
  }
}

/**
 * Starts an execution; returns its ARN. Named for whoever reads the console (who started it, and when)
 * unless `name` is given: StartExecution with a running execution's name and input starts nothing and
 * answers that execution's ARN.
 */
export async function startStageExecution(
  sfn: SFNClient,
  stateMachineArn: string,
  input: object,
  name = `keel-cli-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`,
): Promise<string> {
  const { executionArn } = await call('StartExecution', () =>
    sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) })),
  );
  return executionArn!;
}

/**
 * Starts an execution and waits for it to end, checking every `pollMs` for at most `timeoutMs`
 * (then it says where to follow it). `onStarted` hears the execution ARN at once.
 */
export async function runStageExecution(
  region: string,
  stateMachineArn: string,
  input: object,
  options: { pollMs?: number; timeoutMs?: number; onStarted?: (executionArn: string) => void } = {},
): Promise<StageExecution> {
  const sfn = new SFNClient({ region });
  try {
    const executionArn = await startStageExecution(sfn, stateMachineArn, input);
    options.onStarted?.(executionArn);
    const until = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
    for (;;) {
      const execution = await call('DescribeExecution', () =>
        sfn.send(new DescribeExecutionCommand({ executionArn })),
      );
      if (execution.status === 'FAILED') {
        // The history names the failed state; without leave to read it, the error and cause still say what happened.
        const failedState = await failedStateOf(sfn, executionArn!).catch(() => undefined);
        return { ...execution, ...(failedState ? { failedState } : {}) };
      }
      if (execution.status !== 'RUNNING') return execution;
      if (Date.now() > until) {
        throw new StageError(
          `execution ${executionArn} is still running; follow it in the Step Functions console`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 2000));
    }
  } finally {
    sfn.destroy();
  }
}
