import type { Command } from 'commander';
import { type Output, parseInteger } from '#cli/output.ts';
import { runPipelineCommand } from '#cli/run-pipeline.ts';
import type { EtlRunPlan, EtlRunSummary } from '#shared/etl/etl.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';

export function registerEtl(program: Command, output: Output): void {
  const etl = program.command('etl').description('raw CSV → validated offline features and the online store');
  etl
    .command('run')
    .description(
      'run the ETL state machine: validate a raw file, write features to S3 and customers to the online store',
    )
    .option('--input <key>', 'raw object key (default: the newest file under raw/)')
    .option('--max-bad-share <share>', 'fail when more than this share of rows is bad (default 0.01)', Number)
    .option(
      '--chunk-rows <n>',
      'rows per chunk of the Map state (default 100000)',
      parseInteger('--chunk-rows'),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ keel etl run
  $ keel etl run --input raw/customers-2026-11-24.csv --max-bad-share 0.05`,
    )
    .action(async (options: { input?: string; maxBadShare?: number; chunkRows?: number }) => {
      const report = await runPipelineCommand<EtlRunSummary>(
        output,
        'etl',
        {
          ...(options.input ? { inputKey: options.input } : {}),
          ...(options.maxBadShare !== undefined ? { maxBadRowShare: options.maxBadShare } : {}),
          ...(options.chunkRows ? { chunkRows: options.chunkRows } : {}),
        },
        {
          label: 'etl',
          unit: 'rows',
          total: (state, result) =>
            state === PIPELINES.etl.states.plan ? (result as EtlRunPlan).run.totalRows : undefined,
          done: (state, result) =>
            state === PIPELINES.etl.states.chunk ? (result as { rows: number }).rows : 0,
        },
      );
      output.result(report, () =>
        [
          `etl of ${report.inputKey}`,
          `  rows ${report.rowsRead}, valid ${report.valid}, quarantined ${report.quarantined}` +
            (report.quarantinePartCount > 0 ? ` (${report.quarantinePartCount} quarantine parts)` : ''),
          `  offline records: ${report.featurePrefix} (${report.featurePartCount} parts)`,
          `  online store: ${report.onlineWritten} customers`,
          ...Object.entries(report.imputed)
            .filter(([, rows]) => rows > 0)
            .map(([field, rows]) => `  imputed: ${field} in ${rows} rows (absent from the file or empty)`),
        ].join('\n'),
      );
    });
}
