import { InvalidArgumentError } from 'commander';
import { type PlatformContext, platformContext } from '#local/context.ts';
import { keelHome, requireRuntime } from '#local/runtime.ts';
import { Progress } from './progress.ts';

/** A mistake the user can fix; printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * Where commands write: a human summary on stdout, or one JSON document with `--json` (then progress
 * and notes are kept off stdout so scripts can parse it).
 */
export class Output {
  constructor(private readonly json: () => boolean) {}

  result(value: unknown, human: () => string): void {
    process.stdout.write(this.json() ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  }

  info(message: string): void {
    (this.json() ? process.stderr : process.stdout).write(`${message}\n`);
  }

  progress(label: string, total?: number, unit?: string): Progress | undefined {
    return this.json() ? undefined : new Progress(label, total, unit);
  }
}

export function parseInteger(flag: string) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${flag} must be an integer, got "${value}"`);
    return Number(value);
  };
}

/** Runs a command body against the running platform (found through KEEL_HOME), closing clients after. */
export async function withPlatform<T>(body: (ctx: PlatformContext) => Promise<T>): Promise<T> {
  const ctx = platformContext(await requireRuntime(keelHome()));
  try {
    return await body(ctx);
  } finally {
    ctx.close();
  }
}
