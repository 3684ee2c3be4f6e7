/**
 * One Lambda execution environment of the local platform, run as its own process by
 * `local/lambda/service.ts`: the init phase imports the handler's module once (its top-level code and
 * top-level await run here, as in Lambda), then invocations arrive one at a time over IPC. Between
 * invocations the parent stops this process (SIGSTOP), as Lambda freezes an environment: a timer or a
 * promise left behind by an invocation runs only when a later invocation thaws it, and dies with the
 * environment when it is reaped.
 */
import module from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import { BOOT_VARIABLES } from './boot-variables.ts';

type Handler = (event: unknown, context: Context) => unknown;

export type EnvironmentMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'init-error'; readonly error: SerializedError }
  | { readonly type: 'result'; readonly id: string; readonly payload: string }
  | { readonly type: 'error'; readonly id: string; readonly error: SerializedError };

export interface Invocation {
  readonly type: 'invoke';
  readonly id: string;
  /** The event as JSON, as Lambda receives it. */
  readonly event: string;
  readonly deadlineMs: number;
}

/** Lambda's error response: the error's class name, its message and its stack. */
export interface SerializedError {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace: string[];
}

const serialize = (error: unknown): SerializedError => {
  const e = error instanceof Error ? error : new Error(String(error));
  return { errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') };
};

const send = (message: EnvironmentMessage) =>
  new Promise<void>((resolve) => {
    process.send?.(message, undefined, {}, () => resolve());
  });

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`the local Lambda environment lacks ${name}`);
  return value;
};

async function init(): Promise<Handler> {
  const module = (await import(
    pathToFileURL(join(env('LAMBDA_TASK_ROOT'), env(BOOT_VARIABLES.entry))).href
  )) as Record<string, unknown>;
  const name = env(BOOT_VARIABLES.handler);
  const handler = module[name];
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${env(BOOT_VARIABLES.entry)} does not export a function "${name}"`), {
      name: 'Runtime.HandlerNotFound',
    });
  }
  return handler as Handler;
}

function contextOf(invocation: Invocation): Context {
  const functionName = env('AWS_LAMBDA_FUNCTION_NAME');
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: env('AWS_LAMBDA_FUNCTION_VERSION'),
    invokedFunctionArn: env(BOOT_VARIABLES.functionArn),
    memoryLimitInMB: env('AWS_LAMBDA_FUNCTION_MEMORY_SIZE'),
    awsRequestId: invocation.id,
    logGroupName: env('AWS_LAMBDA_LOG_GROUP_NAME'),
    logStreamName: env('AWS_LAMBDA_LOG_STREAM_NAME'),
    getRemainingTimeInMillis: () => Math.max(0, invocation.deadlineMs - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * Lambda's Node.js runtimes resolve the ES module imports of a function from its layers
 * (`/opt/nodejs/node_modules`) too, which Node's own ESM resolution ignores (it does not read
 * NODE_PATH): a bare specifier not found beside the code is looked up in each NODE_PATH folder.
 */
function resolveFromLayers(register: RegisterHooks, nodePath: string): void {
  const folders = nodePath.split(':').filter(Boolean);
  register({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (error) {
        const bare = !/^(\.|\/|[a-z]+:)/.test(specifier);
        if (!bare || (error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
        for (const folder of folders) {
          try {
            return nextResolve(specifier, {
              ...context,
              parentURL: pathToFileURL(join(folder, 'index.js')).href,
            });
          } catch {
            // Not in this layer: the next one.
          }
        }
        throw error;
      }
    },
  });
}

/** `module.registerHooks` (Node.js 22.15+; the types of Node 20 do not know it). */
type ResolveContext = { parentURL?: string } & Record<string, unknown>;
type RegisterHooks = (hooks: {
  resolve(
    specifier: string,
    context: ResolveContext,
    nextResolve: (specifier: string, context?: ResolveContext) => unknown,
  ): unknown;
}) => void;
const { registerHooks } = module as unknown as { registerHooks?: RegisterHooks };
if (process.env.NODE_PATH && registerHooks) {
  resolveFromLayers(registerHooks.bind(module), process.env.NODE_PATH);
}

let handler: Handler;
try {
  handler = await init();
} catch (error) {
  await send({ type: 'init-error', error: serialize(error) });
  process.exit(1);
}

process.on('message', (invocation: Invocation) => {
  void (async () => {
    try {
      const result = await handler(JSON.parse(invocation.event), contextOf(invocation));
      // Lambda returns the handler's value as JSON (undefined becomes null).
      await send({ type: 'result', id: invocation.id, payload: JSON.stringify(result ?? null) });
    } catch (error) {
      await send({ type: 'error', id: invocation.id, error: serialize(error) });
    }
  })();
});
await send({ type: 'ready' });
// The platform that started this environment is gone: so is the environment.
process.on('disconnect', () => process.exit(0));
