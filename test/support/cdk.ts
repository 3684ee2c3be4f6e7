/**
 * What the infrastructure tests share: the context `cdk synth` runs with, running the CDK app as the
 * CLI does, and reading a cloud assembly: its validation report (cdk-nag and CDK's own checks) and the
 * files of its assets.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { type App, Validations } from 'aws-cdk-lib';
import { VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import { CDK_JSON_CONTEXT } from '#lib/offline-synth.ts';
import { REPO_ROOT } from '#lib/paths.ts';

/** The context `cdk synth` gets from cdk.json (feature flags the constructs rely on). */
export const CDK_CONTEXT = CDK_JSON_CONTEXT;

/** Skips asset bundling (esbuild, the layer copy) in apps whose assets no test reads. */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/** One unacknowledged finding of a validation plugin (cdk-nag packs, CDK's own template checks). */
export interface Finding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  readonly paths: string[];
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

/**
 * Every finding, errors and warnings alike, in the validation report of the cloud assembly in `outdir`.
 * A synthesis fails on error findings; `failure` is rethrown only when the report does not explain it.
 */
export function findingsIn(outdir: string, failure?: unknown): Finding[] {
  const file = join(outdir, VALIDATION_REPORT_FILE);
  if (!existsSync(file)) throw failure ?? new Error(`no ${VALIDATION_REPORT_FILE} in ${outdir}`);
  const report: ValidationReport = JSON.parse(readFileSync(file, 'utf8'));
  const findings = report.pluginReports.flatMap((plugin) =>
    plugin.violations.map((v) => ({
      plugin: plugin.pluginName,
      rule: v.ruleName,
      severity: v.severity,
      paths: v.violatingConstructs.map((c) => c.constructPath),
    })),
  );
  if (failure !== undefined && !findings.some((f) => f.severity === 'error')) throw failure;
  return findings;
}

export function synthFindings(app: App): Finding[] {
  try {
    app.synth();
  } catch (error) {
    return findingsIn(app.outdir, error);
  }
  return findingsIn(app.outdir);
}

/**
 * Runs `bin/app.ts` as the CDK CLI does (output directory and cdk.json's context, plus `context`, in
 * the environment; no CDK_DEFAULT_* so the dummy account applies); resolves to the failure, if any.
 */
export async function runApp(outdir: string, context: Record<string, string> = {}): Promise<unknown> {
  const { CDK_DEFAULT_ACCOUNT: _account, CDK_DEFAULT_REGION: _region, ...env } = process.env;
  return promisify(execFile)(join(REPO_ROOT, 'node_modules/.bin/tsx'), ['bin/app.ts'], {
    cwd: REPO_ROOT,
    env: { ...env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_CONTEXT, ...context }) },
  }).then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** Every acknowledged finding in the app: rule id and reason, by construct path. */
export function acknowledgementsIn(app: App): { path: string; id: string; reason: string }[] {
  return app.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

/** Every file below `dir` (an asset or image context in a cloud assembly), relative to it, sorted. */
export function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}
