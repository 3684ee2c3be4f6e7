import { randomBytes } from 'node:crypto';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { StageError } from './stage-info.ts';

/**
 * Executions of a deployed stage's state machines. The client takes the SDK's default credential chain;
 * AWS_ENDPOINT_URL_SFN points it at an emulator.
 */
export type StageExecution = Pick<
  DescribeExecutionCommandOutput,
  'executionArn' | 'status' | 'output' | 'error' | 'cause'
>;

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
    const { executionArn } = await call('StartExecution', () =>
      sfn.send(
        new StartExecutionCommand({
          stateMachineArn,
          // Named for whoever reads the console: who started it, and when.
          name: `keel-cli-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`,
          input: JSON.stringify(input),
        }),
      ),
    );
    options.onStarted?.(executionArn!);
    const until = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
    for (;;) {
      const execution = await call('DescribeExecution', () =>
        sfn.send(new DescribeExecutionCommand({ executionArn })),
      );
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
