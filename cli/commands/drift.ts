import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Output } from '#cli/output.ts';
import { runDriftJob } from '#local/pipelines.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/running-platform.ts';
import { renderDriftReport } from '#shared/drift/report-html.ts';
import type { ResourceNames } from '#shared/resources.ts';

export function registerDrift(program: Command, output: Output): void {
  const drift = program.command('drift').description('data and prediction drift of the served model');
  drift
    .command('check')
    .description('run the drift job now over a window of captured predictions (default: the last hour)')
    .option('--from <iso>', 'window start (default: one hour before --to)')
    .option('--to <iso>', 'window end (default: now)')
    .option('--report <file.html>', 'also write a self-contained HTML report')
    .action(async (options: { from?: string; to?: string; report?: string }) => {
      const home = keelHome();
      const runtime = await requireRuntime(home);
      const result = await runDriftJob(
        { home, target: runtimeTarget(runtime), names: runtime.names as ResourceNames },
        { ...(options.from ? { from: options.from } : {}), ...(options.to ? { to: options.to } : {}) },
      );
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
      const { report: _full, ...summary } = result;
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
