import type { Command } from 'commander';
import { type Output, parseInteger } from '#cli/output.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import { parseDriftSpec } from '#shared/data/generate.ts';
import { writeRawData } from '#shared/data/raw-data.ts';
import type { NumericField } from '#shared/features/index.ts';

export function registerData(program: Command, output: Output): void {
  const data = program.command('data').description('synthetic customer data');
  data
    .command('generate')
    .description('stream generated customers as CSV into the raw-data bucket of the running platform')
    .requiredOption('--rows <n>', 'number of customers (1 … 100,000,000)', parseInteger('--rows'))
    .option(
      '--seed <s>',
      'random seed: same rows and seed give the same customers',
      parseInteger('--seed'),
      42,
    )
    .option(
      '--drift <field=factor>',
      'multiply a numeric field, e.g. income=1.9 (repeatable)',
      (spec: string, previous: Record<string, number>) => {
        const [field, factor] = parseDriftSpec(spec);
        return { ...previous, [field]: factor };
      },
      {} as Record<string, number>,
    )
    .option('--as-of <iso>', 'event times fall in the week before this instant (default: now)')
    .addHelpText(
      'after',
      `
Examples:
  $ keel data generate --rows 100000 --seed 7
  $ keel data generate --rows 20000 --drift income=1.9   # a drifted month, for keel drift check`,
    )
    .action(async (options: { rows: number; seed: number; drift: Record<string, number>; asOf?: string }) => {
      const runtime = await requireRuntime(keelHome());
      const asOf = options.asOf ? new Date(options.asOf) : new Date();
      const s3 = createS3Client(runtimeTarget(runtime));
      const progress = output.progress('generating', options.rows);
      const summary = await writeRawData(
        s3,
        runtime.names.raw!,
        {
          rows: options.rows,
          seed: options.seed,
          asOf,
          drift: options.drift as Partial<Record<NumericField, number>>,
        },
        { onProgress: (done) => progress?.update(done) },
      );
      progress?.finish(summary.rows);
      s3.destroy();
      output.result(summary, () =>
        [
          `wrote s3://${summary.bucket}/${summary.key}`,
          `  rows ${summary.rows.toLocaleString('en-US')}, ${(summary.bytes / 1e6).toFixed(1)} MB`,
          `  churn rate ${(summary.churnRate * 100).toFixed(1)}%, mean income ${Math.round(summary.meanIncome).toLocaleString('en-US')}, zero-order customers ${(summary.zeroOrderShare * 100).toFixed(1)}%`,
        ].join('\n'),
      );
    });
}
