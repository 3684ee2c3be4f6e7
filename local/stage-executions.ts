import { randomBytes } from 'node:crypto';
import { signedPost } from '#local/cli/signed-fetch.ts';
import { StageError } from './stage.ts';

/**
 * Executions of a deployed stage's state machines, through the Step Functions JSON API (signed with
 * SigV4; Keel has no Step Functions SDK client). AWS_ENDPOINT_URL_SFN points it at an emulator, as it
 * would the SDK.
 */
export interface StageExecution {
  readonly executionArn: string;
  readonly status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';
  readonly output?: string;
  readonly error?: string;
  readonly cause?: string;
}

function endpoint(region: string): URL {
  return new URL(process.env.AWS_ENDPOINT_URL_SFN ?? `https://states.${region}.amazonaws.com/`);
}

/** One Step Functions API action, e.g. `StartExecution`; AWS's error type and message on failure. */
export async function stepFunctions<T>(region: string, action: string, payload: object): Promise<T> {
  const response = await signedPost(endpoint(region), {
    service: 'states',
    region,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AWSStepFunctions.${action}` },
    body: JSON.stringify(payload),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const type = String(body.__type ?? response.status).replace(/^.*#/, '');
    throw new StageError(`Step Functions ${action} failed: ${type}: ${body.message ?? body.Message ?? ''}`);
  }
  return body as T;
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
  const { executionArn } = await stepFunctions<{ executionArn: string }>(region, 'StartExecution', {
    stateMachineArn,
    // Named for whoever reads the console: who started it, and when.
    name: `keel-cli-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`,
    input: JSON.stringify(input),
  });
  options.onStarted?.(executionArn);
  const until = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
  for (;;) {
    const execution = await stepFunctions<StageExecution>(region, 'DescribeExecution', { executionArn });
    if (execution.status !== 'RUNNING') return execution;
    if (Date.now() > until) {
      throw new StageError(
        `execution ${executionArn} is still running; follow it in the Step Functions console`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 2000));
  }
}
