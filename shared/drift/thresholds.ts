import type { Severity } from '#shared/monitoring/alarm-catalog.ts';
import { ALARM_IDS, alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import type { MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';

export interface DriftThresholds {
  /** A feature's PSI at or above `warn` warns, at or above `page` pages. */
  readonly featurePsi: { readonly warn: number; readonly page: number };
  /** Score PSI at or above `threshold` has `severity`. */
  readonly scorePsi: { readonly threshold: number; readonly severity: Severity };
  /** |positive-rate change| in percentage points at or above `threshold` has `severity`. */
  readonly positiveRateDeltaPoints: { readonly threshold: number; readonly severity: Severity };
  /** Fewer finite values than this make a comparison `insufficient` rather than noisy. */
  readonly minRows: number;
}

/**
 * The thresholds computeDrift applies, read from the drift alarm definitions, so a report's `page`
 * is exactly what the alarm on its published metric will call ALARM.
 */
export function driftThresholds(options: MonitoringOptionsInput = {}): DriftThresholds {
  const catalog = alarmDefinitions(options);
  const byId = new Map(catalog.alarms.map((alarm) => [alarm.id, alarm]));
  const get = (id: string) => byId.get(id)!;
  const score = get(ALARM_IDS.scoreDrift);
  const rate = get(ALARM_IDS.positiveRateDrift);
  return {
    featurePsi: {
      warn: get(ALARM_IDS.dataDriftWarn).threshold,
      page: get(ALARM_IDS.dataDriftPage).threshold,
    },
    scorePsi: { threshold: score.threshold, severity: score.severity },
    positiveRateDeltaPoints: { threshold: rate.threshold, severity: rate.severity },
    minRows: catalog.options.drift.minRows,
  };
}
