import { InvalidArgumentError } from 'commander';
import type { StageInfo } from '#cli/stage/stage-info.ts';
import type { PlatformContext } from '#local/platform-context.ts';
import { keelHome, requireRuntime } from '#local/running-platform.ts';
import { Progress } from './progress.ts';

/** A mistake the user can fix; printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** The global options that choose what a command acts on: the local platform, or a deployed stage. */
export interface TargetOptions {
  readonly stage?: string;
  readonly region?: string;
  readonly profile?: string;
  /** The inference API's base URL, instead of the one the platform or stage publishes. */
  readonly endpoint?: string;
}

/**
 * Where commands write: a human summary on stdout, or one JSON document with `--json` (then progress
 * and notes are kept off stdout so scripts can parse it); and what they act on (`--stage`).
 */
export class Output {
  constructor(
    private readonly json: () => boolean,
    readonly target: () => TargetOptions = () => ({}),
  ) {}

  result(value: unknown, human: () => string): void {
    process.stdout.write(this.json() ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  }

  info(message: string): void {
    (this.json() ? process.stderr : process.stdout).write(`${message}\n`);
  }

  progress(label: string, total?: number, unit?: string): Progress | undefined {
    return this.json() ? undefined : new Progress(label, total, unit);
  }

  /** The deployed stage of `--stage`, resolved from its stack outputs; undefined when acting locally. */
  async stage(): Promise<StageInfo | undefined> {
    const { stage, region } = this.target();
    if (!stage) return undefined;
    const { resolveStage } = await import('#cli/stage/stage-info.ts');
    return resolveStage(stage, { region });
  }

  /**
   * Runs a command body against the platform: the deployed stage of `--stage`, else the running local
   * one (found through KEEL_HOME); closes the clients after.
   */
  async withPlatform<T>(body: (ctx: PlatformContext) => Promise<T>): Promise<T> {
    const stage = await this.stage();
    const platform = stage
      ? { region: stage.target.region, endpoints: stage.target.endpoints, names: stage.names }
      : await requireRuntime(keelHome());
    const { platformContext } = await import('#local/platform-context.ts');
    const ctx = platformContext(platform);
    try {
      return await body(ctx);
    } finally {
      ctx.close();
    }
  }
}

export function parseInteger(flag: string) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${flag} must be an integer, got "${value}"`);
    return Number(value);
  };
}
