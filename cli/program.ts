import { Command, CommanderError } from 'commander';
import { KeelError } from '#shared/errors.ts';
import { registerAlarms } from './commands/alarms.ts';
import { registerBatch } from './commands/batch.ts';
import { registerData } from './commands/data.ts';
import { registerDrift } from './commands/drift.ts';
import { registerEtl } from './commands/etl.ts';
import { registerFeatures } from './commands/features.ts';
import { registerModels } from './commands/models.ts';
import { registerPredict } from './commands/predict.ts';
import { registerQuality } from './commands/quality.ts';
import { registerTrain } from './commands/train.ts';
import { registerUp } from './commands/up.ts';
import { Output, type TargetOptions, UserError } from './output.ts';

export function buildProgram(): Command {
  const program: Command = new Command('keel')
    .description('Keel: a churn model in production, on AWS or on this machine')
    .option('--json', 'print machine-readable JSON on stdout')
    .option(
      '--stage <name>',
      'act on a deployed stage (its Keel-<name>-* stacks) instead of the local platform',
    )
    .option('--region <region>', 'AWS region of the stage (default: AWS_REGION)')
    .option('--profile <name>', 'AWS profile for the stage (default: the standard credential chain)')
    .option('--endpoint <url>', 'base URL of the inference API (default: the local or stage API)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Commands act on the local platform (\`npm start\` in another terminal) unless --stage names a deployed
one; then \`models\`, \`features diff\` (reading its registry), \`predict\` (SigV4-signed), the pipelines
(\`etl run\`, \`train\`, \`batch run\`: an execution of the deployed state machine), \`data import\` (to
its raw bucket), \`alarms\` (read from CloudWatch), \`drift check\` and \`quality check\` (computed here
from its captures with your credentials, changing nothing) work against AWS; the others answer that
they are local only.
See docs/cli.md.

Examples:
  $ keel models list
  $ keel --stage prod --region eu-west-1 --profile ops models history
  $ keel --stage prod predict c-000042`,
    )
    .hook('preAction', (_program, action) => checkTarget(program.opts(), action))
    .exitOverride();
  const output = new Output(
    () => Boolean(program.opts().json),
    () => program.opts(),
  );
  registerUp(program, output);
  registerData(program, output);
  registerEtl(program, output);
  registerFeatures(program, output);
  registerTrain(program, output);
  registerBatch(program, output);
  registerDrift(program, output);
  registerQuality(program, output);
  registerModels(program, output);
  registerPredict(program, output);
  registerAlarms(program, output);
  return program;
}

/** Commands (or subcommands) that act on a deployed stage with --stage; the others are local by nature. */
const STAGE_COMMANDS = new Set([
  'models',
  'predict',
  'train',
  'etl',
  'batch',
  'alarms',
  'data import',
  'features diff',
  'features export',
  'drift check',
  'quality',
]);

function checkTarget(options: TargetOptions, action: Command): void {
  const path: string[] = [];
  for (let c: Command | null = action; c?.parent; c = c.parent) path.unshift(c.name());
  if (!options.stage && (options.region || options.profile)) {
    throw new UserError(
      '--region and --profile choose the AWS account of a deployed stage: add --stage NAME',
    );
  }
  if (
    options.stage &&
    !STAGE_COMMANDS.has(path[0] ?? '') &&
    !STAGE_COMMANDS.has(path.slice(0, 2).join(' '))
  ) {
    throw new UserError(`keel ${path.join(' ')} works on the local platform only; drop --stage`);
  }
  // The SDK's default credential chain reads the profile from the environment, for every client.
  if (options.profile) process.env.AWS_PROFILE = options.profile;
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
