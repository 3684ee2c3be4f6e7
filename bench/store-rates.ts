/**
 * What the embedded DynamoDB itself sustains, with no Keel code around it: `BatchWriteItem` of 25
 * online-store items and a paginated parallel `Scan`, sent from client processes of their own (as the
 * functions' environments are), with the concurrency the pipelines use. The pipelines' rates are read
 * against these (bench/pipelines.ts).
 *
 * A client signed with a role session goes through the rules proxy, which authorizes it as it does the
 * functions; without one it is the operator's, which the proxy passes unchecked (or, given dynalite's own
 * endpoint, no proxy at all).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { roleSessionEnvironment } from '#local/rules/credentials.ts';
import { createDynamoClient } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { cpuSecondsOf, processCpuSeconds } from './process-peaks.ts';

export interface StoreClients {
  readonly endpoint: string;
  readonly region: string;
  readonly table: string;
  /** The role the clients sign as (the proxy checks it); absent: the operator's unsigned session. */
  readonly role?: { readonly arn: string; readonly session: string };
  /** Client processes. */
  readonly processes: number;
  /** Requests each process keeps in flight (a Scan is sequential: 1). */
  readonly inFlight: number;
  /** The process serving the store, whose CPU time is reported. @default - this process */
  readonly serverPid?: number;
}

export interface StoreRate {
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  readonly processes: number;
  readonly inFlight: number;
  /** CPU time of the client processes, together, while they ran. */
  readonly clientCpuSeconds: number;
  /** CPU time of the process serving the store meanwhile. */
  readonly serverCpuSeconds: number;
}

type Job =
  | { readonly kind: 'write'; readonly rows: number; readonly idPrefix: string }
  | { readonly kind: 'scan'; readonly totalSegments: number };

interface ChildTask {
  readonly endpoint: string;
  readonly region: string;
  readonly table: string;
  readonly job: Job;
  readonly process: number;
  readonly processes: number;
  readonly inFlight: number;
}

type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly rows: number; readonly cpuSeconds: number };

/** Marks the client processes (bench/process-peaks.ts names them by it). */
export const STORE_CLIENT_ENV = 'KEEL_BENCH_STORE_CLIENT';

const WRITE_BATCH = 25;
/** The batch-scoring segment's page. */
const SCAN_PAGE = 1000;
const ITEM_POOL = 1000;

/** Writes `rows` items (ids `${idPrefix}…`, none the pipelines use) in 25-item batches. */
export const measureWrites = (clients: StoreClients, rows: number, idPrefix: string) =>
  measure(clients, { kind: 'write', rows, idPrefix });

/** Scans the whole table, one segment per process, pages of 1,000 items. */
export const measureScan = (clients: StoreClients) =>
  measure({ ...clients, inFlight: 1 }, { kind: 'scan', totalSegments: clients.processes });

/** Starts the client processes, lets them prepare, then times them from one start to the last finish. */
async function measure(clients: StoreClients, job: Job): Promise<StoreRate> {
  const script = fileURLToPath(import.meta.url);
  const children = Array.from({ length: clients.processes }, (_, index) => {
    const task: ChildTask = {
      endpoint: clients.endpoint,
      region: clients.region,
      table: clients.table,
      job,
      process: index,
      processes: clients.processes,
      inFlight: clients.inFlight,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(task)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: {
        ...process.env,
        [STORE_CLIENT_ENV]: '1',
        ...(clients.role ? roleSessionEnvironment(clients.role.arn, clients.role.session) : {}),
      },
    });
    const exited = new Promise<void>((resolve, reject) => {
      child.once('error', reject).once('exit', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`store-rates client ${index} exited with ${code}`));
      });
    });
    const next = () =>
      Promise.race([
        new Promise<ChildMessage>((resolve) => child.once('message', resolve)),
        exited.then(() => Promise.reject(new Error(`store-rates client ${index} ended early`))),
      ]);
    return { child, exited, next };
  });
  try {
    await Promise.all(children.map(({ next }) => next()));
    const started = performance.now();
    const serverCpu = () =>
      clients.serverPid === undefined
        ? cpuSecondsOf(process.cpuUsage())
        : processCpuSeconds(clients.serverPid);
    const cpu = serverCpu();
    const done = children.map(({ next }) => next());
    for (const { child } of children) child.send('go');
    const reports = await Promise.all(done);
    const seconds = (performance.now() - started) / 1000;
    const serverCpuSeconds = serverCpu() - cpu;
    const sum = (pick: (m: ChildMessage & { type: 'done' }) => number) =>
      reports.reduce((n, m) => n + (m.type === 'done' ? pick(m) : 0), 0);
    const rows = sum((m) => m.rows);
    await Promise.all(children.map(({ exited }) => exited));
    return {
      rows,
      seconds,
      rowsPerSecond: Math.round(rows / seconds),
      processes: clients.processes,
      inFlight: clients.inFlight,
      clientCpuSeconds: Math.round(sum((m) => m.cpuSeconds) * 10) / 10,
      serverCpuSeconds: Math.round(serverCpuSeconds * 10) / 10,
    };
  } finally {
    for (const { child } of children) if (child.exitCode === null) child.kill();
  }
}

/** This process's share of the batches: every `processes`-th, `inFlight` at a time. */
async function writeShare(dynamo: DynamoDBClient, task: ChildTask, job: Job & { kind: 'write' }) {
  // Items as the ETL writes them (the generated records without their label), built before the clock starts.
  const pool: Record<string, AttributeValue>[] = [];
  for (const { churned: _label, ...record } of generateRecords({
    rows: ITEM_POOL,
    seed: 11,
    asOf: new Date(),
  }))
    pool.push(marshall(record));
  const batches = Math.ceil(job.rows / WRITE_BATCH);
  let next = task.process;
  let rows = 0;
  await waitForGo();
  const worker = async () => {
    for (let batch = next; batch < batches; batch = next) {
      next += task.processes;
      const first = batch * WRITE_BATCH;
      let pending = Array.from({ length: Math.min(WRITE_BATCH, job.rows - first) }, (_, i) => ({
        PutRequest: {
          Item: { ...pool[(first + i) % ITEM_POOL]!, customer_id: { S: `${job.idPrefix}${first + i}` } },
        },
      }));
      rows += pending.length;
      while (pending.length > 0) {
        const result = await dynamo.send(
          new BatchWriteItemCommand({ RequestItems: { [task.table]: pending } }),
        );
        pending = (result.UnprocessedItems?.[task.table] ?? []) as typeof pending;
      }
    }
  };
  await Promise.all(Array.from({ length: task.inFlight }, worker));
  return rows;
}

async function scanSegment(dynamo: DynamoDBClient, task: ChildTask, job: Job & { kind: 'scan' }) {
  await waitForGo();
  let rows = 0;
  let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({
        TableName: task.table,
        Segment: task.process,
        TotalSegments: job.totalSegments,
        Limit: SCAN_PAGE,
        ExclusiveStartKey,
      }),
    );
    rows += page.Items?.length ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return rows;
}

/** From the go on: what the client's CPU time is counted from. */
let goCpu: NodeJS.CpuUsage | undefined;

function waitForGo(): Promise<void> {
  const ready: ChildMessage = { type: 'ready' };
  process.send?.(ready);
  return new Promise((resolve) =>
    process.once('message', () => {
      goCpu = process.cpuUsage();
      resolve();
    }),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const task = JSON.parse(process.argv[2]!) as ChildTask;
  const dynamo = createDynamoClient({
    region: task.region,
    endpoints: { s3: task.endpoint, dynamodb: task.endpoint },
  });
  const rows =
    task.job.kind === 'write'
      ? await writeShare(dynamo, task, task.job)
      : await scanSegment(dynamo, task, task.job);
  const done: ChildMessage = { type: 'done', rows, cpuSeconds: cpuSecondsOf(process.cpuUsage(goCpu)) };
  process.send?.(done, () => {
    dynamo.destroy();
    process.disconnect();
  });
}
