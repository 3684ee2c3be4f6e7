import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Output } from '#cli/output.ts';
import { runLocalJob } from '#cli/run-pipeline.ts';
import type { DriftReportDocument } from '#shared/drift/job.ts';
import { renderDriftReport } from '#shared/drift/report-html.ts';

export function registerDrift(program: Command, output: Output): void {
  const drift = program.command('drift').description('data and prediction drift of the served model');
  drift
    .command('check')
    .description(
      'run the drift job now over a window of captured predictions (default: the last hour), as its schedule runs it',
    )
    .option('--from <iso>', 'window start (default: one hour before --to)')
    .option('--to <iso>', 'window end (default: now)')
    .option('--report <file.html>', 'also write a self-contained HTML report')
    .action(async (options: { from?: string; to?: string; report?: string }) => {
      // The drift function itself, with its role: its notice to on-call goes through the same checks.
      const run = await runLocalJob(output, 'drift', {
        ...(options.from ? { from: options.from } : {}),
        ...(options.to ? { to: options.to } : {}),
      });
      const { target, names } = run;
      const summary = run.output;
      const [{ createS3Client }, { getJson }] = await Promise.all([
        import('#shared/aws/clients.ts'),
        import('#shared/pipelines/run-objects.ts'),
      ]);
      const s3 = createS3Client(target);
      const document = await getJson<DriftReportDocument>(s3, names.outputs, summary.reportKey).finally(() =>
        s3.destroy(),
      );
      const result = { ...summary, report: document.report };
      if (options.report) {
        const file = resolve(options.report);
        await writeFile(
          file,
          renderDriftReport({
            model: result.model,
            window: result.window,
            rows: result.rows,
            report: result.report,
            generatedAt: new Date().toISOString(),
          }),
        );
        output.info(`report written to ${file}`);
      }
      output.result(summary, () => {
        const lines = [
          `drift of ${result.model.name} ${result.model.version} over ${result.window.from} → ${result.window.to}: ${result.status.toUpperCase()}`,
          `  ${result.rows} predictions${result.insufficientData ? ' (too few to judge)' : ''}`,
        ];
        for (const feature of result.report.features.filter(
          (f) => f.status === 'warn' || f.status === 'page',
        )) {
          const name = feature.kind === 'numeric' ? feature.feature : feature.field;
          lines.push(`  ${feature.status.padEnd(5)} ${name} PSI ${feature.psi?.toFixed(3)}`);
        }
        const p = result.report.prediction;
        lines.push(
          `  prediction: ${p.status}, score PSI ${p.scorePsi?.toFixed(3) ?? '–'}, positive rate change ${p.positiveRateDelta?.toFixed(1) ?? '–'} points`,
        );
        return lines.join('\n');
      });
    });
}
