import { Command, CommanderError } from 'commander';
import { KeelError } from '#shared/errors.ts';
import { registerAlarms } from './commands/alarms.ts';
import { registerBatch } from './commands/batch.ts';
import { registerData } from './commands/data.ts';
import { registerDrift } from './commands/drift.ts';
import { registerEtl } from './commands/etl.ts';
import { registerModels } from './commands/models.ts';
import { registerPredict } from './commands/predict.ts';
import { registerTrain } from './commands/train.ts';
import { registerUp } from './commands/up.ts';
import { Output, UserError } from './output.ts';

export function buildProgram(): Command {
  const program = new Command('keel')
    .description('Keel: a churn model in production, on AWS or on this machine')
    .option('--json', 'print machine-readable JSON on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const output = new Output(() => Boolean(program.opts().json));
  registerUp(program, output);
  registerData(program, output);
  registerEtl(program, output);
  registerTrain(program, output);
  registerBatch(program, output);
  registerDrift(program, output);
  registerModels(program, output);
  registerPredict(program, output);
  registerAlarms(program, output);
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof UserError || error instanceof KeelError || error instanceof RangeError) {
      process.stderr.write(`keel: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`keel: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
