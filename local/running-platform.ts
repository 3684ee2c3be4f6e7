import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { AwsTarget } from '#shared/aws/clients.ts';
import { optionalEnv } from '#shared/env.ts';
import { KeelError } from '#shared/errors.ts';

/** Variables of the local platform's own process (`keel up`), which its functions are not given. */
export const LOCAL_PROCESS_ENV = {
  home: 'KEEL_HOME',
  port: 'KEEL_PORT',
  s3Port: 'KEEL_S3_PORT',
  dynamodbPort: 'KEEL_DYNAMODB_PORT',
  /** How the API runs the predict code: `lambda` (the local stage's compute) or `ecs`. */
  apiCompute: 'KEEL_API_COMPUTE',
  /** With `ecs`: container processes. */
  apiWorkers: 'KEEL_API_WORKERS',
} as const;

/** The state directory of the local platform: `${KEEL_HOME:-.keel}`, resolved against the cwd. */
export function keelHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return resolve(optionalEnv(LOCAL_PROCESS_ENV.home, '.keel', env));
}

const runtimeSchema = z.object({
  pid: z.number().int(),
  startedAt: z.string(),
  stage: z.string(),
  region: z.string(),
  endpoints: z.object({ s3: z.string(), dynamodb: z.string(), api: z.string().optional() }),
  names: z.record(z.string(), z.string()),
  /** The processes of the platform besides `pid` (the supervisor): none outlives it. */
  processes: z.object({ storage: z.number().int(), api: z.array(z.number().int()) }).optional(),
});

/** What a running `keel up` publishes so that commands in other terminals can find it. */
export type RuntimeInfo = z.infer<typeof runtimeSchema>;

export class NotRunningError extends KeelError {
  readonly code = 'Unavailable';
}

const runtimeFile = (home: string) => join(home, 'runtime.json');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live runtime recorded in `home`, or undefined (a file left by a killed process does not count). */
export async function readRuntime(home: string): Promise<RuntimeInfo | undefined> {
  let text: string;
  try {
    text = await readFile(runtimeFile(home), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = runtimeSchema.safeParse(JSON.parse(text));
  if (!parsed.success || !isAlive(parsed.data.pid)) return undefined;
  return parsed.data;
}

export async function requireRuntime(home: string): Promise<RuntimeInfo> {
  const runtime = await readRuntime(home);
  if (!runtime) {
    throw new NotRunningError(
      `nothing is running in ${home}: start the local platform with \`npm start\` (or \`npx keel up\`) ` +
        'in another terminal, or set KEEL_HOME to the directory it runs in',
    );
  }
  return runtime;
}

export async function writeRuntime(home: string, info: RuntimeInfo): Promise<void> {
  await writeFile(runtimeFile(home), `${JSON.stringify(info, null, 2)}\n`);
}

export async function removeRuntime(home: string): Promise<void> {
  await rm(runtimeFile(home), { force: true });
}

export function runtimeTarget(runtime: Pick<RuntimeInfo, 'region' | 'endpoints'>): AwsTarget {
  return {
    region: runtime.region,
    endpoints: { s3: runtime.endpoints.s3, dynamodb: runtime.endpoints.dynamodb },
  };
}
