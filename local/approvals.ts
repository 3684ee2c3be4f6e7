import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The local stand-in for Step Functions' task-token callback: a state that waits for approval writes a
 * pending request under `${KEEL_HOME}/approvals/`, and `keel models approve|reject ID` (another process)
 * writes the decision the waiting execution then reads, as `send-task-success` would deliver it.
 */
export interface ApprovalRequest {
  readonly id: string;
  readonly requestedAt: string;
  readonly subject: string;
  readonly message: unknown;
  readonly status: 'pending' | 'approved' | 'rejected';
  readonly decidedAt?: string;
  readonly by?: string;
  readonly note?: string;
}

const directory = (home: string) => join(home, 'approvals');
const file = (home: string, id: string) => join(directory(home), `${id}.json`);

async function read(home: string, id: string): Promise<ApprovalRequest | undefined> {
  try {
    return JSON.parse(await readFile(file(home, id), 'utf8')) as ApprovalRequest;
  } catch {
    return undefined;
  }
}

/** Records a pending request and resolves with the decision once one is written (polled). */
export async function awaitApproval(
  home: string,
  request: { subject: string; message: unknown },
  onPending: (id: string) => void,
  pollMs = 250,
): Promise<{ approved: boolean; by: string; note: string | null }> {
  await mkdir(directory(home), { recursive: true });
  const id = randomUUID().slice(0, 8);
  const pending: ApprovalRequest = {
    id,
    requestedAt: new Date().toISOString(),
    status: 'pending',
    ...request,
  };
  await writeFile(file(home, id), JSON.stringify(pending, null, 2));
  onPending(id);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    const current = await read(home, id);
    if (current && current.status !== 'pending') {
      return {
        approved: current.status === 'approved',
        by: current.by ?? 'unknown',
        note: current.note ?? null,
      };
    }
  }
}

export async function listApprovals(home: string): Promise<ApprovalRequest[]> {
  let names: string[];
  try {
    names = await readdir(directory(home));
  } catch {
    return [];
  }
  const requests = await Promise.all(
    names.filter((n) => n.endsWith('.json')).map((n) => read(home, n.slice(0, -5))),
  );
  return requests
    .filter((r): r is ApprovalRequest => r !== undefined)
    .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}

export class ApprovalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApprovalError';
  }
}

export async function decideApproval(
  home: string,
  id: string,
  decision: { approved: boolean; by: string; note?: string },
): Promise<ApprovalRequest> {
  const current = await read(home, id);
  if (!current) throw new ApprovalError(`no approval request ${id}; see \`keel models approvals\``);
  if (current.status !== 'pending')
    throw new ApprovalError(`approval request ${id} was already ${current.status}`);
  const decided: ApprovalRequest = {
    ...current,
    status: decision.approved ? 'approved' : 'rejected',
    decidedAt: new Date().toISOString(),
    by: decision.by,
    ...(decision.note ? { note: decision.note } : {}),
  };
  await writeFile(file(home, id), JSON.stringify(decided, null, 2));
  return decided;
}
