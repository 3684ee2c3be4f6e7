import { type AttributeValue, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type ApprovalOutput, awaitDecision } from '#shared/pipelines/approvals.ts';
import type { AslDefinition } from './state-machines.ts';

/**
 * The local stand-in for Step Functions' side of the retrain's approval gate. The state
 * `Wait for approval` is an SDK integration (`dynamodb:putItem.waitForTaskToken`): locally its task
 * writes the state's item into the local registry table as Step Functions would, and resolves once
 * `keel models approve|reject ID` (another process) has answered the request there, with the output
 * SendTaskSuccess delivers in AWS. The runner's TimeoutSeconds ends an unanswered wait with
 * States.Timeout, as the service does.
 */
export const APPROVAL_TASK_RESOURCE = 'arn:aws:states:::aws-sdk:dynamodb:putItem.waitForTaskToken';

/** The state's Parameters, resolved: what Step Functions passes to PutItem. */
interface PutItemParameters {
  readonly TableName: string;
  readonly Item: Record<string, AttributeValue>;
  readonly ConditionExpression?: string;
}

export interface LocalApprovalTaskOptions {
  /** A client of the local DynamoDB. */
  readonly dynamo: DynamoDBDocumentClient;
  /** Checks the call against the state machine's role, as AWS would, before it is made. */
  readonly authorize?: (table: string, partitionKey: string) => Promise<void>;
  /** Hears each request once it is recorded (the console of `keel up`). */
  readonly onRequested?: (request: { id: string; version: string }) => void;
  readonly pollMs?: number;
}

export class ApprovalExpiredLocallyError extends Error {
  override readonly name = 'ApprovalExpiredLocallyError';
}

/** The task of the `Wait for approval` state, for the local runner. */
export function localApprovalTask(options: LocalApprovalTaskOptions) {
  return async (input: unknown): Promise<ApprovalOutput> => {
    // Taken first: the runner's Context Object has no per-state EnteredTime, and the state was entered now.
    const entered = new Date().toISOString();
    const parameters = input as PutItemParameters;
    const id = parameters.Item.sk?.S;
    if (!id) throw new Error('the approval item has no sort key (sk): the state machine definition changed');
    await options.authorize?.(parameters.TableName, parameters.Item.pk?.S ?? '');
    await options.dynamo.send(
      new PutItemCommand({
        ...parameters,
        Item: { ...parameters.Item, requestedAt: { S: entered } },
      }),
    );
    options.onRequested?.({ id, version: parameters.Item.version?.S ?? '' });
    const decision = await awaitDecision(
      { dynamo: options.dynamo, table: parameters.TableName },
      id,
      options.pollMs,
    );
    // By then the runner has failed the state with States.Timeout; this only ends the poll.
    if (!decision) throw new ApprovalExpiredLocallyError(`approval request ${id} expired unanswered`);
    return decision;
  };
}

/**
 * The retrain definition with the approval wait set to `seconds` (the state's TimeoutSeconds and the
 * timeout recorded with each request), for tests that cannot wait the configured hours.
 */
export function withApprovalTimeout(
  definition: AslDefinition,
  state: string,
  seconds: number,
): AslDefinition {
  const wait = definition.States[state] as AslDefinition['States'][string] & {
    Parameters: { Item: Record<string, unknown> };
  };
  if (wait?.Resource !== APPROVAL_TASK_RESOURCE) {
    throw new Error(`state "${state}" is not the approval wait (${APPROVAL_TASK_RESOURCE})`);
  }
  return {
    ...definition,
    States: {
      ...definition.States,
      [state]: {
        ...wait,
        TimeoutSeconds: seconds,
        Parameters: {
          ...wait.Parameters,
          Item: { ...wait.Parameters.Item, timeoutSeconds: { N: String(seconds) } },
        },
      },
    },
  };
}
