import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { readStageAlarms } from '#cli/stage/alarms.ts';
import { type AlarmStatus, readAlarmsSnapshot } from '#local/alarms.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { keelHome } from '#local/running-platform.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { parseEmf } from '#shared/monitoring/emf.ts';
import {
  DEFAULT_SERVICE,
  KEEL_NAMESPACE,
  ROLLOUT_METRICS,
  SERVICE_DIMENSION,
  VARIANT_DIMENSION,
  type VariantDimension,
} from '#shared/monitoring/metrics.ts';
import type { Rollout } from '#shared/registry/rollout.ts';
import type { Output } from './output.ts';

/** What `keel models rollout` shows of a running rollout beside its registry record. */
export interface RolloutFigures {
  /** Requests each variant scored since the rollout started (a shadow's challenger scores all of them). */
  readonly requests: Readonly<Record<VariantDimension, number>>;
  /** Each guardrail alarm: its state, since when, its condition and newest value. */
  readonly guardrails: readonly Pick<AlarmStatus, 'id' | 'state' | 'since' | 'condition' | 'lastValue'>[];
  /** Where they were read: the running platform's metrics and alarms, or the stage's CloudWatch. */
  readonly source: string;
}

const VARIANTS: readonly VariantDimension[] = ['champion', 'challenger'];

const guardrailsOf = (alarms: readonly AlarmStatus[]) =>
  alarms
    .filter((a) => ROLLOUT_GUARDRAIL_IDS.includes(a.id))
    .map(({ id, state, since, condition, lastValue }) => ({ id, state, since, condition, lastValue }));

/**
 * The per-variant requests and guardrail values of `rollout`: locally from the running platform's EMF
 * file and alarm states, with `--stage` from CloudWatch (the guardrail alarms and VariantRequests).
 */
export async function rolloutFigures(output: Output, rollout: Rollout): Promise<RolloutFigures> {
  const since = Date.parse(rollout.started_at);
  const { stage, region } = output.target();
  if (stage) {
    const resolved = await output.stage();
    const where = resolved?.target.region ?? region;
    if (!where) throw new Error('no region for the stage');
    const [alarms, requests] = await Promise.all([
      readStageAlarms(stage, where, { historyLimit: 1 }),
      stageRequests(where, since),
    ]);
    return { requests, guardrails: guardrailsOf(alarms.alarms), source: `CloudWatch (${where})` };
  }
  const home = keelHome();
  const [snapshot, requests] = await Promise.all([readAlarmsSnapshot(home), localRequests(home, since)]);
  return {
    requests,
    guardrails: guardrailsOf(snapshot?.alarms ?? []),
    source: `${metricsFile(home)} and the alarm loop`,
  };
}

/** VariantRequests summed per variant over the EMF lines written since `since` (epoch ms). */
async function localRequests(home: string, since: number): Promise<Record<VariantDimension, number>> {
  const requests: Record<VariantDimension, number> = { champion: 0, challenger: 0 };
  const file = metricsFile(home);
  if (!existsSync(file)) return requests;
  const lines = createInterface({
    input: createReadStream(file, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    // Most lines are other metrics: skip them before parsing.
    if (!line.includes(ROLLOUT_METRICS.requests)) continue;
    for (const sample of parseEmf(line)) {
      const variant = sample.dimensions[VARIANT_DIMENSION] as VariantDimension | undefined;
      if (sample.metricName === ROLLOUT_METRICS.requests && variant && sample.timestamp >= since) {
        requests[variant] += sample.value;
      }
    }
  }
  return requests;
}

/** VariantRequests' Sum per variant from CloudWatch since `since`, in at most 1,440 periods. */
async function stageRequests(region: string, since: number): Promise<Record<VariantDimension, number>> {
  const end = new Date();
  const spanS = Math.max(60, (end.getTime() - since) / 1000);
  const period = Math.ceil(spanS / 1440 / 60) * 60;
  const cloudwatch = new CloudWatchClient({ region });
  try {
    const sums = await Promise.all(
      VARIANTS.map(async (variant) => {
        const { Datapoints } = await cloudwatch.send(
          new GetMetricStatisticsCommand({
            Namespace: KEEL_NAMESPACE,
            MetricName: ROLLOUT_METRICS.requests,
            Dimensions: [
              { Name: SERVICE_DIMENSION, Value: DEFAULT_SERVICE },
              { Name: VARIANT_DIMENSION, Value: variant },
            ],
            StartTime: new Date(since - (since % (period * 1000))),
            // Through the end of the period in progress: its requests count too (an emulator that
            // returns whole periods only would otherwise drop them).
            EndTime: new Date(end.getTime() + period * 1000),
            Period: period,
            Statistics: ['Sum'],
          }),
        );
        return [variant, (Datapoints ?? []).reduce((total, d) => total + (d.Sum ?? 0), 0)] as const;
      }),
    );
    return Object.fromEntries(sums) as Record<VariantDimension, number>;
  } finally {
    cloudwatch.destroy();
  }
}
