import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ConflictError, UnavailableError, UnknownEntityError } from '#shared/errors.ts';

/**
 * The retrain pipeline's approval gate, the part the state machine, the local runner and the CLI
 * share. The state `Wait for approval` writes one record per request into the registry table
 * (partition {@link APPROVAL_PARTITION}, sort key the approval id) holding the execution's task token,
 * and waits. Whoever answers (`keel [--stage S] models approve|reject ID`) claims the record with a
 * conditional write, so two approvers cannot both answer, then hands the decision to the waiting
 * execution: `SendTaskSuccess` in AWS; locally the runner reads it from the record.
 */

/**
 * Partition of the approval requests in the registry table: apart from the models' own items, so the
 * state machine's PutItem can be held to it (`dynamodb:LeadingKeys`).
 */
export const APPROVAL_PARTITION = 'APPROVALS';

/** The record the state machine writes (its `Item`, lib/constructs/pipeline-state-machines.ts). */
const recordSchema = z.object({
  sk: z.string(),
  model: z.string(),
  taskToken: z.string().min(1),
  execution: z.string(),
  version: z.string(),
  reason: z.string(),
  requestedAt: z.string(),
  timeoutSeconds: z.coerce.number().int().min(1),
  status: z.enum(['pending', 'approved', 'rejected', 'expired']),
  decidedAt: z.string().optional(),
  actor: z.string().optional(),
  note: z.string().optional(),
});
type ApprovalRecord = z.infer<typeof recordSchema>;

/** An approval request as the CLI shows it (the task token stays in the table). */
export interface Approval {
  readonly id: string;
  readonly model: string;
  readonly version: string;
  readonly reason: string;
  /** The waiting retrain execution. */
  readonly execution: string;
  readonly requestedAt: string;
  /** When the state stops waiting and the retrain ends as "approval expired". */
  readonly expiresAt: string;
  /** `expired`: nobody answered in time, or the execution stopped waiting. */
  readonly status: 'pending' | 'approved' | 'rejected' | 'expired';
  readonly decidedAt?: string;
  readonly actor?: string;
  readonly note?: string;
}

/** What the waiting execution receives as the state's result: the `Approved?` Choice reads `approved`. */
export interface ApprovalOutput {
  readonly approved: boolean;
  readonly note: string | null;
  /** Who answered: the caller's IAM identity in AWS, `user@cli` locally. */
  readonly actor: string;
}

export interface ApprovalDeps {
  readonly dynamo: DynamoDBDocumentClient;
  /** The registry table. */
  readonly table: string;
  readonly clock?: () => Date;
}

/** Hands a decision to the execution waiting on `taskToken` (Step Functions' SendTaskSuccess). */
export type DeliverDecision = (taskToken: string, output: ApprovalOutput) => Promise<void>;

/**
 * Step Functions errors of SendTaskSuccess that mean the execution no longer waits for this token:
 * the state timed out, the execution was stopped, or the token was already answered.
 */
const GONE = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

const expiresAt = (record: ApprovalRecord) =>
  new Date(Date.parse(record.requestedAt) + record.timeoutSeconds * 1000);

function view(record: ApprovalRecord, now: Date): Approval {
  const { sk, taskToken: _token, timeoutSeconds: _timeout, ...rest } = record;
  const expires = expiresAt(record);
  return {
    ...rest,
    id: sk,
    expiresAt: expires.toISOString(),
    status: record.status === 'pending' && now >= expires ? 'expired' : record.status,
  };
}

async function read(deps: ApprovalDeps, id: string): Promise<ApprovalRecord | undefined> {
  const { Item } = await deps.dynamo.send(
    new GetCommand({
      TableName: deps.table,
      Key: { pk: APPROVAL_PARTITION, sk: id },
      ConsistentRead: true,
    }),
  );
  return Item ? recordSchema.parse(Item) : undefined;
}

/** Every approval request of the model, oldest first. */
export async function listApprovals(deps: ApprovalDeps): Promise<Approval[]> {
  const now = (deps.clock ?? (() => new Date()))();
  const records: ApprovalRecord[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await deps.dynamo.send(
      new QueryCommand({
        TableName: deps.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': APPROVAL_PARTITION },
        ExclusiveStartKey,
      }),
    );
    records.push(...(page.Items ?? []).map((item) => recordSchema.parse(item)));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return records.map((r) => view(r, now)).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}

/** One request, or undefined. */
export async function getApproval(deps: ApprovalDeps, id: string): Promise<Approval | undefined> {
  const record = await read(deps, id);
  return record && view(record, (deps.clock ?? (() => new Date()))());
}

/**
 * Answers a pending request: claims it (conditional on `pending`, so a second approver is told who
 * answered first), then delivers the decision. If the execution no longer waits, the record becomes
 * `expired`; if delivery fails otherwise (permissions, network), the claim is undone so the request
 * can be answered again.
 */
export async function decideApproval(
  deps: ApprovalDeps,
  id: string,
  decision: { approved: boolean; actor: string; note?: string },
  deliver: DeliverDecision,
): Promise<Approval> {
  const now = (deps.clock ?? (() => new Date()))();
  const record = await read(deps, id);
  if (!record) {
    throw new UnknownEntityError(`no approval request ${id}: see \`keel models approvals\``);
  }
  const current = view(record, now);
  if (current.status !== 'pending') {
    throw new ConflictError(
      current.status === 'expired'
        ? `approval request ${id} expired at ${current.expiresAt}: the retrain no longer waits; start a new one`
        : `approval request ${id} was already ${current.status} by ${current.actor} at ${current.decidedAt}`,
    );
  }
  const status = decision.approved ? 'approved' : 'rejected';
  const key = { pk: APPROVAL_PARTITION, sk: id };
  try {
    await deps.dynamo.send(
      new UpdateCommand({
        TableName: deps.table,
        Key: key,
        UpdateExpression: `SET #status = :status, decidedAt = :at, actor = :actor${decision.note ? ', note = :note' : ''}`,
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':status': status,
          ':pending': 'pending',
          ':at': now.toISOString(),
          ':actor': decision.actor,
          ...(decision.note ? { ':note': decision.note } : {}),
        },
      }),
    );
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    const winner = await read(deps, id);
    throw new ConflictError(
      `approval request ${id} was already ${winner?.status} by ${winner?.actor} at ${winner?.decidedAt}`,
    );
  }
  try {
    await deliver(record.taskToken, {
      approved: decision.approved,
      note: decision.note ?? null,
      actor: decision.actor,
    });
  } catch (error) {
    const { name, message } = error as Error;
    const gone = GONE.has(name);
    await deps.dynamo.send(
      new UpdateCommand({
        TableName: deps.table,
        Key: key,
        ...(gone
          ? {
              UpdateExpression: 'SET #status = :expired',
              ExpressionAttributeValues: { ':expired': 'expired' },
            }
          : {
              UpdateExpression: 'SET #status = :pending REMOVE decidedAt, actor, note',
              ExpressionAttributeValues: { ':pending': 'pending' },
            }),
        ExpressionAttributeNames: { '#status': 'status' },
      }),
    );
    if (gone) {
      throw new ConflictError(
        `approval request ${id}: the retrain execution no longer waits (${name}: ${message}); it timed out or was stopped`,
        { cause: error },
      );
    }
    throw new UnavailableError(`approval request ${id} not delivered (${name}: ${message}); try again`, {
      cause: error,
    });
  }
  return {
    ...current,
    status,
    decidedAt: now.toISOString(),
    actor: decision.actor,
    ...(decision.note ? { note: decision.note } : {}),
  };
}

/**
 * Locally, the waiting execution's side of the callback: polls the record until it is answered and
 * returns the decision, as SendTaskSuccess would deliver it; stops polling once the request expires
 * (the runner then fails the state with States.Timeout, as Step Functions does).
 */
export async function awaitDecision(
  deps: ApprovalDeps,
  id: string,
  pollMs = 250,
): Promise<ApprovalOutput | undefined> {
  for (;;) {
    const record = await read(deps, id);
    if (record && (record.status === 'approved' || record.status === 'rejected')) {
      return {
        approved: record.status === 'approved',
        note: record.note ?? null,
        actor: record.actor ?? 'unknown',
      };
    }
    if (!record || (deps.clock ?? (() => new Date()))() >= expiresAt(record)) return undefined;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
