import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type Output, UserError } from '#cli/output.ts';
import { runLocalJob } from '#cli/run-pipeline.ts';
import { stageMonitoringOptions } from '#cli/stage/monitoring-options.ts';
import { renderQualityReport } from '#shared/quality/report-html.ts';
import type { QualityReport, VersionQuality } from '#shared/quality/types.ts';
import { parseDuration } from '#shared/registry/rollout.ts';

interface CheckOptions {
  readonly window?: string;
  readonly to?: string;
  readonly report?: string;
}

/** [to − window, to) as the job's input; the job's configured window when --window is absent. */
function windowInput(options: CheckOptions): { from?: string; to?: string } {
  const to = options.to ? new Date(options.to) : new Date();
  if (Number.isNaN(to.getTime())) throw new UserError(`--to "${options.to}" is not an ISO 8601 time`);
  if (!options.window) return options.to ? { to: to.toISOString() } : {};
  let seconds: number;
  try {
    seconds = parseDuration(options.window, '--window');
  } catch (error) {
    throw new UserError((error as Error).message);
  }
  return { from: new Date(to.getTime() - seconds * 1000).toISOString(), to: to.toISOString() };
}

const fmt = (value: number | null | undefined, digits = 3) =>
  value === null || value === undefined ? '–' : value.toFixed(digits);
const pct = (share: number | null) => (share === null ? '–' : `${(100 * share).toFixed(1)}%`);

function versionLines(v: VersionQuality): string[] {
  const r = v.realized;
  const e = v.estimated;
  const shortfall = v.aucShortfall === null ? '' : `, ${fmt(v.aucShortfall)} below held out`;
  return [
    `  ${v.version}: ${v.predictions} predictions, ${r?.matched ?? 0} with an outcome`,
    `    AUC       realized ${fmt(r?.auc)}  estimated ${fmt(e?.auc)}  held out ${fmt(v.heldOut.auc)}${shortfall}`,
    `    accuracy  realized ${fmt(r?.accuracy)}  estimated ${fmt(e?.accuracy)}  held out ${fmt(v.heldOut.accuracy)}`,
    ...(r
      ? [
          `    at threshold ${v.threshold}: precision ${fmt(r.precision)}, recall ${fmt(r.recall)}, positive rate ${pct(r.positiveRate)} (churned ${pct(r.observedRate)}), log loss ${fmt(r.logloss)}, calibration error ${fmt(r.expectedCalibrationError)}`,
        ]
      : []),
  ];
}

export function qualityLines(report: QualityReport): string[] {
  const { consistency: c, skew: s, outcomes: o } = report;
  return [
    `quality of ${report.model.name} over ${report.window.from} → ${report.window.to} (outcomes within ${report.labelWindowDays} days of a prediction)`,
    `  outcomes: ${o.rows} rows in ${o.files} files, ${o.quarantined} quarantined`,
    ...(report.versions.length === 0 ? ['  no captured predictions in the window'] : []),
    ...report.versions.flatMap(versionLines),
    c.pairs === 0
      ? '  consistency: no customer was answered by both batch and real time from the same record'
      : `  consistency: ${pct(c.share)} of ${c.pairs} batch/real-time pairs decide alike, largest score difference ${fmt(c.maxScoreDifference, 6)}`,
    s.compared === 0
      ? `  skew: none of ${s.sampled} sampled served vectors had offline features of the same record`
      : `  skew: ${s.differing} of ${s.compared} served vectors differ from their offline features (${pct(s.share)})${
          s.features.length > 0 ? `: ${s.features.map((f) => `${f.name} (${f.differing})`).join(', ')}` : ''
        }`,
  ];
}

/** The quality report of the running local platform: the job's function, as its schedule runs it. */
async function localReport(output: Output, input: { from?: string; to?: string }) {
  const run = await runLocalJob(output, 'quality', input);
  const [{ createS3Client }, { getJson }] = await Promise.all([
    import('#shared/aws/clients.ts'),
    import('#shared/pipelines/run-objects.ts'),
  ]);
  const s3 = createS3Client(run.target);
  const report = await getJson<QualityReport>(s3, run.names.outputs, run.output.reportKey).finally(() =>
    s3.destroy(),
  );
  return { report, reportKey: run.output.reportKey };
}

/**
 * A deployed stage's report, computed here with the caller's credentials from the stage's captures,
 * outcomes and offline features: it reads only (no metrics, no report written, nobody paged), at the
 * thresholds of the stage's configuration when this checkout has it.
 */
async function stageReport(output: Output, stage: string, input: { from?: string; to?: string }) {
  return output.withPlatform(async (ctx) => {
    const { qualityDataOf, runQuality } = await import('#shared/quality/job.ts');
    const { report } = await runQuality(
      { ...qualityDataOf(ctx), monitoring: stageMonitoringOptions(stage), publish: false },
      input,
    );
    return { report, reportKey: undefined };
  });
}

export function registerQuality(program: Command, output: Output): void {
  const quality = program
    .command('quality')
    .description(
      'ground truth: how good the served versions were once outcomes arrived, and are estimated to be',
    );
  quality
    .command('check')
    .description(
      'judge the captured predictions of a window against the outcomes that arrived (realized), from their scores alone (estimated), batch against real time (consistency) and served against offline features (skew)',
    )
    .option(
      '--window <duration>',
      'how far back from --to predictions are judged, e.g. 30d or 12h (default: the configured alarms.quality.windowDays)',
    )
    .option('--to <iso>', 'window end (default: now)')
    .option(
      '--report <file.html>',
      'also write a self-contained HTML report: quality over time, the reliability curve',
    )
    .addHelpText(
      'after',
      `
Locally this runs the quality job's function as its daily schedule does: it publishes the quality
metrics (what the alarms watch), writes the report under quality-reports/ and pages on-call when a
version's AUC fell. With --stage it reads the deployed stage's captures, outcomes and offline features
with your credentials and changes nothing.

Examples:
  $ keel quality check
  $ keel quality check --window 7d --report quality.html
  $ keel --stage prod quality check --json`,
    )
    .action(async (options: CheckOptions) => {
      const input = windowInput(options);
      const stage = output.target().stage;
      const { report, reportKey } = stage
        ? await stageReport(output, stage, input)
        : await localReport(output, input);
      if (options.report) {
        const file = resolve(options.report);
        await writeFile(file, renderQualityReport(report, { aucDropAlarm: report.thresholds.aucDrop }));
        output.info(`report written to ${file}`);
      }
      output.result({ ...report, ...(reportKey ? { reportKey } : {}) }, () =>
        qualityLines(report).join('\n'),
      );
    });
}
