import { existsSync } from 'node:fs';
import { REPO_ROOT } from '#lib/paths.ts';
import { loadKeelConfig, stageConfigPath } from '#shared/config/keel-config.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';

/**
 * The alarm thresholds a deployed stage's monitoring jobs run with: those of its configuration when this
 * checkout has `config/<stage>.json`, else the defaults (a stage deployed from elsewhere).
 */
export function stageMonitoringOptions(stage: string): MonitoringOptionsInput {
  return existsSync(stageConfigPath(REPO_ROOT, stage))
    ? loadKeelConfig({ root: REPO_ROOT, stage }).alarms
    : {};
}
