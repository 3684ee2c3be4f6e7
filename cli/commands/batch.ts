import type { Command } from 'commander';
import { type Output, parseInteger } from '#cli/output.ts';
import { runPipelineCommand } from '#cli/run-pipeline.ts';
import type { BatchRunPlan, BatchRunSummary } from '#shared/batch/batch.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';

export function registerBatch(program: Command, output: Output): void {
  const batch = program.command('batch').description('batch scoring of every customer in the online store');
  batch
    .command('run')
    .description(
      'run the batch-scoring state machine now: every customer in the online store, or the rows of --input',
    )
    .option(
      '--segments <n>',
      'parallel scan segments of the online store (default 4)',
      parseInteger('--segments'),
    )
    .option('--input <key>', 'score the rows of this raw CSV (raw bucket key) instead of the online store')
    .addHelpText(
      'after',
      `
Examples:
  $ keel batch run
  $ keel batch run --input raw/customers-2026-11-24.csv`,
    )
    .action(async (options: { segments?: number; input?: string }) => {
      const report = await runPipelineCommand<BatchRunSummary>(
        output,
        'batch',
        {
          ...(options.segments ? { segments: options.segments } : {}),
          ...(options.input ? { inputKey: options.input } : {}),
        },
        {
          label: 'batch',
          unit: 'segments',
          total: (state, result) =>
            state === PIPELINES.batch.states.plan ? (result as BatchRunPlan).run.itemCount : undefined,
          done: (state) => (state === PIPELINES.batch.states.score ? 1 : 0),
        },
      );
      output.result(report, () =>
        [
          `scored ${report.rows} customers with ${report.model.name} ${report.model.version}`,
          `  positive rate ${(report.positiveRate * 100).toFixed(2)}% (${report.positives}), skipped ${report.skipped}`,
          `  predictions: ${report.manifestKey.replace(/_manifest\.json$/, '')} (${report.partCount} parts)`,
        ].join('\n'),
      );
    });
}
