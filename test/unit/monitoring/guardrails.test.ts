import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAlarmLoop, localAlarmCatalog } from '#local/alarms.ts';
import type { Transition } from '#local/alarms-message.ts';
import { metricsFile } from '#local/metrics-file.ts';
import { fileNotifier, readNotifications } from '#local/notifications.ts';
import type { AlarmDefinition } from '#shared/monitoring/alarm-catalog.ts';
import {
  alarmDefinitions,
  GUARDRAIL_ALARM_IDS,
  ROLLOUT_GUARDRAIL_IDS,
} from '#shared/monitoring/alarm-definitions.ts';
import { MonitoringOptionsError, type MonitoringOptionsInput } from '#shared/monitoring/alarm-options.ts';
import { renderExpression } from '#shared/monitoring/cloudwatch-alarms.ts';
import { type MetricSample, toEmf } from '#shared/monitoring/emf.ts';
import { evaluateAlarm, evaluationRange, periodDatapoints } from '#shared/monitoring/evaluate.ts';
import {
  KEEL_NAMESPACE,
  ROLLOUT_METRICS,
  VARIANT_DIMENSION,
  type VariantDimension,
} from '#shared/monitoring/metrics.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

/**
 * The rollout guardrails of the alarm catalog: what they watch, their metric math, and how the local
 * evaluator judges golden traffic of a good and a bad challenger (the same code CloudWatch's alarms are
 * rendered from).
 */

const catalog = alarmDefinitions();
const guardrail = (id: string): AlarmDefinition => catalog.alarms.find((a) => a.id === id)!;
const T0 = Date.parse('2026-05-04T09:00:00Z');

/** Samples of one variant metric: `values` spread over the period starting at `period` minutes after T0. */
function samples(
  metricName: string,
  variant: VariantDimension,
  period: number,
  values: readonly number[],
): MetricSample[] {
  return values.map((value, i) => ({
    namespace: KEEL_NAMESPACE,
    metricName,
    dimensions: { service: 'keel', [VARIANT_DIMENSION]: variant },
    timestamp: T0 + period * 60_000 + i,
    value,
  }));
}

const repeat = (n: number, value: number) => Array.from({ length: n }, () => value);
/** `n` decisions of which `positives` are 1. */
const decisions = (n: number, positives: number) => [...repeat(positives, 1), ...repeat(n - positives, 0)];

/** The alarm's state after the three whole periods of samples from T0. */
function stateOver(id: string, data: readonly MetricSample[], options: MonitoringOptionsInput = {}) {
  const definition = alarmDefinitions(options).alarms.find((a) => a.id === id)!;
  const end = T0 + 3 * 60_000;
  const datapoints = periodDatapoints(definition, data, { end, periods: evaluationRange(definition) });
  return { state: evaluateAlarm(definition, datapoints), datapoints: datapoints.slice(-3) };
}

describe('rollout guardrails in the catalog', () => {
  it('are warn alarms marked guardrail, over the Variant metrics, off the paging composite', () => {
    expect(ROLLOUT_GUARDRAIL_IDS).toEqual([
      'rollout-challenger-5xx-rate',
      'rollout-challenger-latency-p99',
      'rollout-positive-rate-delta',
      'rollout-score-shift',
      'rollout-shadow-agreement',
      'rollout-challenger-refused',
    ]);
    for (const id of ROLLOUT_GUARDRAIL_IDS) {
      const alarm = guardrail(id);
      const refused = id === 'rollout-challenger-refused';
      expect(alarm, id).toMatchObject({
        severity: 'warn',
        source: 'emf',
        guardrail: true,
        periodSeconds: 60,
        // A refusal is deterministic: its first datapoint alarms.
        evaluationPeriods: refused ? 1 : 3,
        datapointsToAlarm: refused ? 1 : 2,
        // No rollout, no data: no alarm.
        treatMissingData: 'notBreaching',
      });
      expect(catalog.page.anyOf).not.toContain(id);
      expect(alarm.runbook).toMatch(/keel models rollout`/);
      expect(alarm.runbook).toMatch(/keel models rollout abort/);
      const stats =
        alarm.metric.kind === 'metric' ? [alarm.metric.metric] : Object.values(alarm.metric.metrics);
      for (const stat of stats) {
        expect(Object.values(ROLLOUT_METRICS)).toContain(stat.metricName);
        expect(Object.keys(stat.dimensions).sort()).toEqual([VARIANT_DIMENSION, 'service']);
      }
    }
    expect(catalog.alarms.filter((a) => a.guardrail).map((a) => a.id)).toEqual(ROLLOUT_GUARDRAIL_IDS);
  });

  it('compare the challenger with the champion in metric math, with minimum counts', () => {
    const math = (id: string) => {
      const { metric } = guardrail(id);
      if (metric.kind !== 'math') throw new Error(`${id} is not metric math`);
      return renderExpression(metric.expression);
    };
    expect(math(GUARDRAIL_ALARM_IDS.serverErrors)).toBe(
      'IF((MAX([FILL(requests, 0), FILL(errors, 0)]) >= 20), ((100 * FILL(errors, 0)) / MAX([FILL(requests, 0), FILL(errors, 0)])), 0)',
    );
    expect(math(GUARDRAIL_ALARM_IDS.positiveRate)).toBe(
      'IF(((FILL(nChallenger, 0) >= 500) * (FILL(nChampion, 0) >= 500)), (100 * ABS((challenger - champion))), 0)',
    );
    expect(math(GUARDRAIL_ALARM_IDS.agreement)).toBe('IF((FILL(n, 0) >= 500), (100 * agreement), 100)');
    expect(guardrail(GUARDRAIL_ALARM_IDS.agreement)).toMatchObject({
      comparisonOperator: 'LessThanThreshold',
      threshold: 90,
    });
    expect(guardrail(GUARDRAIL_ALARM_IDS.latency)).toMatchObject({
      metric: {
        kind: 'metric',
        metric: {
          metricName: ROLLOUT_METRICS.latency,
          dimensions: { [VARIANT_DIMENSION]: 'challenger' },
          statistic: 'p99',
        },
      },
      threshold: 1000,
    });
    const shift = guardrail(GUARDRAIL_ALARM_IDS.scoreShift);
    expect(shift.metric.kind === 'math' && shift.metric.metrics.champion).toMatchObject({
      metricName: ROLLOUT_METRICS.probability,
      dimensions: { [VARIANT_DIMENSION]: 'champion' },
      statistic: 'Average',
    });
  });

  it('validate their options, naming the key', () => {
    const keys = (input: MonitoringOptionsInput) => {
      try {
        alarmDefinitions(input);
      } catch (error) {
        expect(error).toBeInstanceOf(MonitoringOptionsError);
        return (error as MonitoringOptionsError).issues.map((i) => i.key);
      }
      return [];
    };
    expect(keys({ rollout: { minAgreementPercent: 120, periodSeconds: 45 } })).toEqual([
      'rollout.periodSeconds',
      'rollout.minAgreementPercent',
    ]);
    expect(keys({ rollout: { evaluationPeriods: 1, datapointsToAlarm: 2 } })).toEqual([
      'rollout.datapointsToAlarm',
    ]);
    expect(keys({ rollout: { minSamples: 0, scoreShiftPoint: 3 } as never }).sort()).toEqual([
      'rollout.minSamples',
      'rollout.scoreShiftPoint',
    ]);
    const custom = alarmDefinitions({ rollout: { scoreShiftPoints: 3, minSamples: 50 } });
    const shift = custom.alarms.find((a) => a.id === GUARDRAIL_ALARM_IDS.scoreShift)!;
    expect(shift.threshold).toBe(3);
    expect(shift.metric.kind === 'math' && renderExpression(shift.metric.expression)).toContain('>= 50');
  });
});

describe('rollout guardrails judging golden traffic (local evaluator)', () => {
  const perMinute = (fn: (minute: number) => MetricSample[]) => [0, 1, 2].flatMap(fn);

  it('5xx share: a failing challenger alarms, a healthy or quiet one does not', () => {
    const traffic = (requests: number, errors: number) =>
      perMinute((m) => [
        ...samples(ROLLOUT_METRICS.requests, 'challenger', m, repeat(requests, 1)),
        ...samples(ROLLOUT_METRICS.serverErrors, 'challenger', m, repeat(errors, 1)),
      ]);
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, traffic(100, 10))).toEqual({
      state: 'ALARM',
      datapoints: [10, 10, 10],
    });
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, traffic(100, 1)).state).toBe('OK');
    // 5 failures of 10 requests: under the minimum count, not an outage.
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, traffic(10, 5))).toEqual({
      state: 'OK',
      datapoints: [0, 0, 0],
    });
    // Every request failed and none was counted as served: still 100%, not a division by zero.
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, traffic(0, 30)).datapoints).toEqual([100, 100, 100]);
    // No rollout: no data, no alarm.
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, []).state).toBe('OK');
  });

  it('latency p99 of the challenger, not the champion', () => {
    const slow = perMinute((m) => [
      ...samples(ROLLOUT_METRICS.latency, 'challenger', m, [...repeat(95, 40), ...repeat(5, 1500)]),
      ...samples(ROLLOUT_METRICS.latency, 'champion', m, repeat(100, 40)),
    ]);
    expect(stateOver(GUARDRAIL_ALARM_IDS.latency, slow).state).toBe('ALARM');
    const slowChampion = perMinute((m) => samples(ROLLOUT_METRICS.latency, 'champion', m, repeat(100, 2000)));
    expect(stateOver(GUARDRAIL_ALARM_IDS.latency, slowChampion).state).toBe('OK');
  });

  it('positive rate and score shift against the champion of the same period', () => {
    const rates = (challenger: number, champion: number, n = 500) =>
      perMinute((m) => [
        ...samples(ROLLOUT_METRICS.positive, 'challenger', m, decisions(n, challenger)),
        ...samples(ROLLOUT_METRICS.positive, 'champion', m, decisions(n, champion)),
      ]);
    // 40% against 20%: 20 points apart.
    expect(stateOver(GUARDRAIL_ALARM_IDS.positiveRate, rates(200, 100))).toEqual({
      state: 'ALARM',
      datapoints: [20, 20, 20],
    });
    expect(stateOver(GUARDRAIL_ALARM_IDS.positiveRate, rates(120, 100)).state).toBe('OK');
    // The same gap on too few requests is not evidence.
    expect(stateOver(GUARDRAIL_ALARM_IDS.positiveRate, rates(40, 20, 100)).state).toBe('OK');
    // Lower as well as higher.
    expect(stateOver(GUARDRAIL_ALARM_IDS.positiveRate, rates(0, 100)).state).toBe('ALARM');

    const scores = (challenger: number, champion: number) =>
      perMinute((m) => [
        ...samples(ROLLOUT_METRICS.probability, 'challenger', m, repeat(600, challenger)),
        ...samples(ROLLOUT_METRICS.probability, 'champion', m, repeat(600, champion)),
      ]);
    const shifted = stateOver(GUARDRAIL_ALARM_IDS.scoreShift, scores(0.3, 0.22));
    expect(shifted.state).toBe('ALARM');
    expect(shifted.datapoints.map((v) => Number(v!.toFixed(6)))).toEqual([8, 8, 8]);
    expect(stateOver(GUARDRAIL_ALARM_IDS.scoreShift, scores(0.24, 0.22)).state).toBe('OK');
  });

  it('shadow agreement below the threshold, on enough requests', () => {
    const agreement = (agreeing: number, n = 600) =>
      perMinute((m) => samples(ROLLOUT_METRICS.agreement, 'challenger', m, decisions(n, agreeing)));
    expect(stateOver(GUARDRAIL_ALARM_IDS.agreement, agreement(480)).state).toBe('ALARM');
    expect(stateOver(GUARDRAIL_ALARM_IDS.agreement, agreement(590)).state).toBe('OK');
    expect(stateOver(GUARDRAIL_ALARM_IDS.agreement, agreement(10, 20)).datapoints).toEqual([100, 100, 100]);
  });

  it('need 2 bad periods of 3: one bad minute does not end a rollout', () => {
    const oneBad = [
      ...samples(ROLLOUT_METRICS.requests, 'challenger', 1, repeat(100, 1)),
      ...samples(ROLLOUT_METRICS.serverErrors, 'challenger', 1, repeat(50, 1)),
    ];
    expect(stateOver(GUARDRAIL_ALARM_IDS.serverErrors, oneBad).state).toBe('OK');
  });
});

describe('the local alarm loop and the guardrails', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'keel-guardrails-'));
    await mkdir(dirname(metricsFile(home)), { recursive: true });
  });
  afterEach(() => rm(home, { recursive: true, force: true }));

  it('hands a guardrail’s move to ALARM to the guard instead of notifying, and notifies nothing of it', async () => {
    const heard: [string, Transition][] = [];
    let clock = T0 + 30_000;
    const loop = await createAlarmLoop({
      home,
      environment: LOCAL_ENVIRONMENT,
      catalog: localAlarmCatalog({ rollout: { evaluationPeriods: 1, datapointsToAlarm: 1 } }, 'local'),
      notify: fileNotifier(home),
      onGuardrailAlarm: async (definition, transition) => {
        heard.push([definition.id, transition]);
      },
      now: () => new Date(clock),
    });
    const line = (metricName: string, value: number) =>
      `${JSON.stringify(
        toEmf(
          [
            {
              metricName,
              value,
              unit: 'Count',
              dimensions: { service: 'keel', [VARIANT_DIMENSION]: 'challenger' },
            },
          ],
          { namespace: KEEL_NAMESPACE, timestamp: T0 + 1_000 },
        )[0],
      )}\n`;
    await appendFile(
      metricsFile(home),
      `${line(ROLLOUT_METRICS.requests, 40)}${line(ROLLOUT_METRICS.serverErrors, 10)}`,
    );
    const snapshot = await loop.evaluate();
    expect(snapshot.alarms.find((a) => a.id === GUARDRAIL_ALARM_IDS.serverErrors)?.state).toBe('ALARM');
    expect(heard.map(([id, t]) => [id, t.name, t.to])).toEqual([
      [GUARDRAIL_ALARM_IDS.serverErrors, 'keel-local-rollout-challenger-5xx-rate', 'ALARM'],
    ]);
    expect((await readNotifications(home, 50)).map((n) => n.source)).toEqual([]);
    // Staying in ALARM is no new transition: the guard is not called again; the return to OK neither.
    clock += 60_000;
    await loop.evaluate();
    clock += 120_000;
    const later = await loop.evaluate();
    expect(later.alarms.find((a) => a.id === GUARDRAIL_ALARM_IDS.serverErrors)?.state).toBe('OK');
    expect(heard).toHaveLength(1);
    expect(await readNotifications(home, 50)).toEqual([]);
    await loop.stop();
  });
});
