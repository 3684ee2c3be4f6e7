import { type Command, Option } from 'commander';
import { type Output, parseInteger } from '#cli/output.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import { parseDriftSpec } from '#shared/data/generate.ts';
import { IMPORT_KINDS, type ImportKind, importCsvFile } from '#shared/data/import-file.ts';
import { writeRawData } from '#shared/data/raw-data.ts';
import type { NumericField } from '#shared/features/index.ts';

export function registerData(program: Command, output: Output): void {
  const data = program.command('data').description('customer data: generated, or your own CSV files');
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

  data
    .command('import')
    .description(
      "check a local CSV file's header, then stream it into the raw-data bucket (of the running platform, or of a stage with --stage)",
    )
    .argument('<file>', 'the CSV file: a header line, then one row per line')
    .addOption(
      new Option(
        '--kind <kind>',
        'customers (the raw customer record) or outcomes (customer_id,churned,observed_at)',
      )
        .choices(Object.keys(IMPORT_KINDS))
        .default('customers'),
    )
    .addHelpText(
      'after',
      `
The header is checked before anything is sent: a missing, renamed or unexpected column is refused with
the columns named. The printed key is what \`keel etl run --input\` takes (without --input the ETL takes
the newest file, which this one now is).

Examples:
  $ keel data import ./customers-november.csv
  $ keel etl run --input raw/20261206T020000Z-customers-november.csv
  $ keel --stage prod data import ./outcomes.csv --kind outcomes`,
    )
    .action(async (file: string, options: { kind: ImportKind }) => {
      const summary = await output.withPlatform(async (ctx) => {
        const progress = output.progress('importing', undefined, 'bytes');
        const result = await importCsvFile(ctx.clients.s3, ctx.names.raw, {
          path: file,
          kind: options.kind,
          onProgress: (bytes) => progress?.update(bytes),
        });
        progress?.finish(result.bytes);
        return result;
      });
      output.result(summary, () =>
        [
          `imported ${file} as s3://${summary.bucket}/${summary.key}`,
          `  ${summary.kind}: ${summary.rows.toLocaleString('en-US')} rows, ${(summary.bytes / 1e6).toFixed(1)} MB`,
          ...(summary.kind === 'customers' ? [`  next: keel etl run --input ${summary.key}`] : []),
        ].join('\n'),
      );
    });
}
