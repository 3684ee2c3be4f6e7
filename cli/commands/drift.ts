import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Output } from '#cli/output.ts';
import { runLocalJob } from '#cli/run-pipeline.ts';
import { stageMonitoringOptions } from '#cli/stage/monitoring-options.ts';
import type { DriftReport } from '#shared/drift/compute.ts';
import type { DriftCheck, DriftJobInput, DriftReportDocument } from '#shared/drift/job.ts';
import { renderDriftReport } from '#shared/drift/report-html.ts';

/** What both ways print: the run's summary (locally also its report key, metric lines and notice). */
type DriftSummary = Omit<DriftCheck, 'report' | 'message' | 'generatedAt'>;

/** The local platform's run: the drift function itself, with its role, whose notice goes through the same checks. */
async function localCheck(output: Output, input: DriftJobInput) {
  const run = await runLocalJob(output, 'drift', { ...input });
  const [{ createS3Client }, { getJson }] = await Promise.all([
    import('#shared/aws/clients.ts'),
    import('#shared/pipelines/run-objects.ts'),
  ]);
  const s3 = createS3Client(run.target);
  const document = await getJson<DriftReportDocument>(s3, run.names.outputs, run.output.reportKey).finally(
    () => s3.destroy(),
  );
  return { summary: run.output, report: document.report };
}

/**
 * A deployed stage's drift, computed here with the caller's credentials from the champion's captures
 * and baseline: it reads only (no metrics, no report written, nobody paged), at the thresholds of the
 * stage's configuration when this checkout has it.
 */
async function stageCheck(output: Output, stage: string, input: DriftJobInput) {
  return output.withPlatform(async (ctx) => {
    const { checkDrift } = await import('#shared/drift/job.ts');
    const {
      report,
      message: _message,
      generatedAt: _at,
      ...summary
    } = await checkDrift(
      {
        s3: ctx.clients.s3,
        registry: ctx.registry,
        outputsBucket: ctx.names.outputs,
        modelName: ctx.modelName,
        monitoring: stageMonitoringOptions(stage),
      },
      input,
    );
    return { summary, report };
  });
}

function driftLines(summary: DriftSummary, report: DriftReport): string[] {
  const lines = [
    `drift of ${summary.model.name} ${summary.model.version} over ${summary.window.from} → ${summary.window.to}: ${summary.status.toUpperCase()}`,
    `  ${summary.rows} predictions${summary.insufficientData ? ' (too few to judge)' : ''}`,
  ];
  for (const feature of report.features.filter((f) => f.status === 'warn' || f.status === 'page')) {
    const name = feature.kind === 'numeric' ? feature.feature : feature.field;
    lines.push(`  ${feature.status.padEnd(5)} ${name} PSI ${feature.psi?.toFixed(3)}`);
  }
  const p = report.prediction;
  lines.push(
    `  prediction: ${p.status}, score PSI ${p.scorePsi?.toFixed(3) ?? '–'}, positive rate change ${p.positiveRateDelta?.toFixed(1) ?? '–'} points`,
  );
  return lines;
}

export function registerDrift(program: Command, output: Output): void {
  const drift = program.command('drift').description('data and prediction drift of the served model');
  drift
    .command('check')
    .description(
      "compare the champion's captured predictions of a window (default: the last hour) with its training baseline, as the drift job's schedule does",
    )
    .option('--from <iso>', 'window start (default: one hour before --to)')
    .option('--to <iso>', 'window end (default: now)')
    .option('--report <file.html>', 'also write a self-contained HTML report')
    .addHelpText(
      'after',
      `
Locally this runs the drift job's function as its hourly schedule does: it publishes the drift metrics
(what the alarms watch), writes the report under drift-reports/ and notifies on-call when a feature
warns or pages. With --stage it reads the deployed stage's champion, baseline and captures with your
credentials and changes nothing.

Examples:
  $ keel drift check --report drift.html
  $ keel drift check --from 2026-03-02T09:00:00Z --to 2026-03-02T10:00:00Z
  $ keel --stage prod drift check --report drift.html`,
    )
    .action(async (options: { from?: string; to?: string; report?: string }) => {
      const input = {
        ...(options.from ? { from: options.from } : {}),
        ...(options.to ? { to: options.to } : {}),
      };
      const stage = output.target().stage;
      const { summary, report } = stage
        ? await stageCheck(output, stage, input)
        : await localCheck(output, input);
      if (options.report) {
        const file = resolve(options.report);
        await writeFile(
          file,
          renderDriftReport({
            model: summary.model,
            window: summary.window,
            rows: summary.rows,
            report,
            generatedAt: new Date().toISOString(),
          }),
        );
        output.info(`report written to ${file}`);
      }
      output.result(summary, () => driftLines(summary, report).join('\n'));
    });
}
