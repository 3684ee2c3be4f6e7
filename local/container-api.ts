import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '#lib/paths.ts';
import type { AwsTarget } from '#shared/aws/clients.ts';
import type { ApiServer } from '#shared/http/apigw-server.ts';
import type { ResourceNames } from '#shared/resources.ts';
import { type CaptureDelivery, platformCaptureDelivery } from './capture-delivery.ts';
import { functionOf, loadLocalDeployment } from './deployment/deployment.ts';
import { freePort } from './free-port.ts';
import { builtModules } from './lambda/function-build.ts';
import { functionLogRouter, localFunctionVariables } from './lambda/functions.ts';
import { functionProcessEnvironment } from './lambda/service.ts';

/**
 * The predict API as the ECS service runs it (`inference.compute: "ecs"`): the container's entry,
 * lambdas/predict/container.ts, in `workers` processes sharing one port (node:cluster), as a user runs
 * one task per core. Each process serves many requests at once, so concurrent requests share the online
 * store's reads (coalescedReader) as they do in the container in AWS.
 *
 * Each worker gets what the ECS task definition gives the container: the predict function's variables
 * (lib/process-environment.ts builds both from one place) and a session of the predict role, whose
 * grants the task role shares (grantPredictAccess). Where it differs: node:cluster adds this process's
 * own variables under them. Their output goes where the awslogs driver sends it: capture lines to the
 * stand-in for the log subscription and Firehose, EMF lines to the metrics file, the rest to
 * `${home}/logs`. A worker that dies is replaced, as ECS replaces a stopped task.
 */

export interface ContainerApiOptions {
  readonly home: string;
  readonly target: AwsTarget;
  readonly names: ResourceNames;
  /** 0 picks a free port. */
  readonly port: number;
  /** @default - the machine's cores (os.availableParallelism) */
  readonly workers?: number;
  /** Variables over the predict function's own (a test's refresh interval or capture rate). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Told when a worker dies and is replaced. */
  readonly log?: (message: string) => void;
}

export interface ContainerApi extends ApiServer {
  readonly delivery: CaptureDelivery;
  /** The workers' pids now. */
  pids(): number[];
}

const CONTAINER_SOURCE = 'lambdas/predict/container.ts';
const CONTAINER_DOCKERFILE = 'lambdas/predict/Dockerfile';

/**
 * The options the image gives node: its Dockerfile's last `CMD`, in exec form `["node", …options,
 * "<script>"]`. The local workers start with them, so that they run the bundle as a task does.
 */
export function imageNodeOptions(dockerfile: string): string[] {
  const cmd = dockerfile
    .split('\n')
    .filter((line) => line.startsWith('CMD '))
    .at(-1);
  let argv: unknown;
  try {
    argv = cmd && JSON.parse(cmd.slice('CMD '.length));
  } catch {
    argv = undefined;
  }
  if (
    !Array.isArray(argv) ||
    argv.length < 2 ||
    argv[0] !== 'node' ||
    !argv.every((arg): arg is string => typeof arg === 'string')
  ) {
    throw new Error(
      `${CONTAINER_DOCKERFILE}: expected a last CMD in exec form ["node", …options, "<script>"], got ${cmd ?? 'none'}`,
    );
  }
  return argv.slice(1, -1);
}

/** {@link imageNodeOptions} of the predict image's Dockerfile in this repository. */
export const containerNodeOptions = (): string[] =>
  imageNodeOptions(readFileSync(join(REPO_ROOT, CONTAINER_DOCKERFILE), 'utf8'));

const HOST = '127.0.0.1';

export async function startContainerApi(options: ContainerApiOptions): Promise<ContainerApi> {
  if (!cluster.isPrimary) throw new Error('startContainerApi runs in a cluster primary only');
  const count = options.workers ?? availableParallelism();
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`workers must be a whole number ≥ 1 (got ${count})`);
  const deployment = await loadLocalDeployment();
  const predict = functionOf(deployment, 'lambdas/predict/handler.ts');
  const delivery = platformCaptureDelivery(options.target, options.names);
  const logs = functionLogRouter(options.home, delivery.accept);
  const source = { name: `${predict.name}-container`, logicalId: `${predict.logicalId}Container` };
  const variables = localFunctionVariables(options.target, options.environment);
  // The container's bundle, as its image runs it, while the build is current; else its source.
  const [built] = builtModules([CONTAINER_SOURCE]) ?? [];
  const nodeOptions = containerNodeOptions();
  cluster.setupPrimary({
    exec: built ?? join(REPO_ROOT, CONTAINER_SOURCE),
    execArgv: built ? nodeOptions : [...nodeOptions, '--import', 'tsx'],
    cwd: REPO_ROOT,
    silent: true,
  });

  /** Live workers, each with the end of its output. */
  const workers = new Map<Worker, Promise<void>>();
  let closing = false;
  // The container takes a fixed PORT: the first worker gets a free one, the cluster shares it.
  let port = options.port === 0 ? await freePort() : options.port;
  let next = 0;
  const fork = (): Promise<number> => {
    const index = ++next;
    const worker = cluster.fork({
      ...functionProcessEnvironment(predict, deployment.env.region, variables, `container-${index}`),
      HOST,
      // Every worker after the first listens where the first did (the cluster shares that port).
      PORT: String(port),
    });
    workers.set(worker, new Promise((resolve) => worker.process.once('close', () => resolve())));
    for (const stream of [worker.process.stdout, worker.process.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => line && logs.write(source, line));
    }
    return new Promise<number>((resolve, reject) => {
      let listened = false;
      worker.once('listening', (address) => {
        listened = true;
        resolve(address.port);
      });
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        reject(new Error(`predict container exited (${signal ?? `code ${code}`}) before it listened`));
        // One that never served is not replaced: it would fail the same way again.
        if (closing || !listened) return;
        options.log?.(
          `predict container ${worker.process.pid} died (${signal ?? `code ${code}`}): replacing it`,
        );
        fork().catch((error: Error) => options.log?.(error.message));
      });
    });
  };

  try {
    port = await fork();
    await Promise.all(Array.from({ length: count - 1 }, fork));
  } catch (error) {
    closing = true;
    await stopWorkers(workers);
    logs.close();
    await delivery.close();
    throw error;
  }
  return {
    url: `http://${HOST}:${port}`,
    port,
    delivery,
    pids: () =>
      [...workers.keys()].map((w) => w.process.pid).filter((pid): pid is number => pid !== undefined),
    async close() {
      closing = true;
      await stopWorkers(workers);
      logs.close();
      await delivery.close();
    },
  };
}

/**
 * SIGTERM, as ECS stops a task: each server drains its requests and exits. Resolves once every worker's
 * output is read to its end (its last capture lines are then in the delivery).
 */
async function stopWorkers(workers: ReadonlyMap<Worker, Promise<void>>): Promise<void> {
  for (const worker of workers.keys()) {
    const child = worker.process;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
  await Promise.all(workers.values());
}
