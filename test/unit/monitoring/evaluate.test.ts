import { describe, expect, it } from 'vitest';
import type { AlarmDefinition, TreatMissingData } from '#shared/monitoring/alarm-catalog.ts';
import { ALARM_IDS, alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import type { MetricSample } from '#shared/monitoring/emf.ts';
import {
  type AlarmCondition,
  type AlarmState,
  type Datapoint,
  evaluateAlarm,
  evaluateComposite,
  evaluationRange,
  periodDatapoints,
  statistic,
} from '#shared/monitoring/evaluate.ts';

/** `0` non-breaching, `X` breaching, `-` missing, oldest first (the notation of CloudWatch's docs). */
const points = (text: string): Datapoint[] =>
  text.split(' ').map((c) => (c === '-' ? null : c === 'X' ? 10 : 0));

const condition = (m: number, n: number, treatMissingData: TreatMissingData): AlarmCondition => ({
  evaluationPeriods: n,
  datapointsToAlarm: m,
  comparisonOperator: 'GreaterThanOrEqualToThreshold',
  threshold: 5,
  treatMissingData,
});

const RETAIN = 'retain';
type Expected = AlarmState | typeof RETAIN;
const TREATMENTS: TreatMissingData[] = ['missing', 'ignore', 'breaching', 'notBreaching'];

function expectTable(m: number, n: number, rows: [string, Expected, Expected, Expected, Expected][]) {
  for (const [data, ...expected] of rows) {
    TREATMENTS.forEach((treat, i) => {
      const want = expected[i]!;
      for (const previous of ['OK', 'ALARM'] as const) {
        expect(
          evaluateAlarm(condition(m, n, treat), points(data), previous),
          `${data} ${treat} from ${previous}`,
        ).toBe(want === RETAIN ? previous : want);
      }
    });
  }
}

describe('evaluateAlarm: the tables of CloudWatch "How alarm state is evaluated when data is missing"', () => {
  it('3 out of 3, evaluation range 5', () => {
    expect(evaluationRange({ evaluationPeriods: 3 })).toBe(5);
    expectTable(3, 3, [
      // data           MISSING               IGNORE   BREACHING  NOT BREACHING
      ['0 - X - X', 'OK', 'OK', 'OK', 'OK'],
      ['0 - - - -', 'OK', 'OK', 'OK', 'OK'],
      ['- - - - -', 'INSUFFICIENT_DATA', RETAIN, 'ALARM', 'OK'],
      ['0 X X - X', 'ALARM', 'ALARM', 'ALARM', 'ALARM'],
      ['- - X - -', 'ALARM', RETAIN, 'ALARM', 'OK'], // premature alarm state
    ]);
  });

  it('2 out of 3 (M out of N), evaluation range 5', () => {
    expectTable(2, 3, [
      ['0 - X - X', 'ALARM', 'ALARM', 'ALARM', 'ALARM'],
      ['0 0 X 0 X', 'ALARM', 'ALARM', 'ALARM', 'ALARM'],
      ['0 - X - -', 'OK', 'OK', 'ALARM', 'OK'],
      ['- - - - 0', 'OK', 'OK', 'ALARM', 'OK'],
      ['- - - X -', 'ALARM', RETAIN, 'ALARM', 'OK'], // premature alarm state
    ]);
  });

  it('does not alarm prematurely on a lone recent breach', () => {
    // "the alarm does not go immediately into ALARM state when the data is - - - - X or - - - X -"
    for (const data of ['- - - - X', '- - - X -']) {
      expect(evaluateAlarm(condition(3, 3, 'missing'), points(data))).toBe('OK');
    }
  });
});

describe('evaluateAlarm: M out of N', () => {
  it('needs M breaching datapoints among the newest N', () => {
    const c = condition(3, 5, 'missing');
    expect(evaluateAlarm(c, points('X 0 X 0 X'))).toBe('ALARM');
    expect(evaluateAlarm(c, points('X 0 X 0 0'))).toBe('OK');
    // Only the newest N count when all are present: the old breaches are out of the window.
    expect(evaluateAlarm(c, points('X X X 0 0 0 0 X'))).toBe('OK');
  });

  it('counts the missing older periods of a short array as missing', () => {
    expect(evaluateAlarm(condition(1, 1, 'missing'), [])).toBe('INSUFFICIENT_DATA');
    expect(evaluateAlarm(condition(1, 1, 'ignore'), [], 'ALARM')).toBe('ALARM');
    expect(evaluateAlarm(condition(1, 1, 'missing'), [7])).toBe('ALARM');
    expect(evaluateAlarm(condition(2, 3, 'breaching'), [7])).toBe('ALARM');
    expect(evaluateAlarm(condition(2, 3, 'notBreaching'), [7])).toBe('OK');
  });

  it('applies each comparison operator', () => {
    const at = (comparisonOperator: AlarmCondition['comparisonOperator'], value: number) =>
      evaluateAlarm({ ...condition(1, 1, 'missing'), comparisonOperator }, [value]);
    expect([at('GreaterThanOrEqualToThreshold', 5), at('GreaterThanThreshold', 5)]).toEqual(['ALARM', 'OK']);
    expect([at('LessThanThreshold', 5), at('LessThanOrEqualToThreshold', 5)]).toEqual(['OK', 'ALARM']);
  });
});

describe('evaluateComposite', () => {
  const composite = { anyOf: ['a', 'b', 'c'] };

  it('is in ALARM when any child is, else OK', () => {
    expect(evaluateComposite(composite, { a: 'OK', b: 'ALARM', c: 'INSUFFICIENT_DATA' })).toBe('ALARM');
    expect(evaluateComposite(composite, { a: 'OK', b: 'OK', c: 'INSUFFICIENT_DATA' })).toBe('OK');
  });

  it('treats a child without a state (an AWS-only alarm, locally) as not in ALARM', () => {
    expect(evaluateComposite(composite, { a: 'OK' })).toBe('OK');
    expect(evaluateComposite(composite, { c: 'ALARM', other: 'ALARM' })).toBe('ALARM');
    expect(evaluateComposite(composite, { other: 'ALARM' })).toBe('OK');
  });
});

describe('periodDatapoints', () => {
  const { alarms } = alarmDefinitions();
  const alarm = (id: string): AlarmDefinition => alarms.find((a) => a.id === id)!;
  const MINUTE = 60_000;
  const END = 1_800_000_000_000 - (1_800_000_000_000 % MINUTE);
  const sample = (metricName: string, minutesAgo: number, value: number, dimensions = { service: 'keel' }) =>
    ({
      namespace: 'Keel',
      metricName,
      dimensions,
      timestamp: END - minutesAgo * MINUTE + 1000,
      value,
    }) satisfies MetricSample;

  it('aggregates each period with the statistic, matching the exact dimension set', () => {
    const latency = alarm(ALARM_IDS.predictLatency);
    const samples = [
      ...Array.from({ length: 100 }, (_, i) => sample('Latency', 2, i + 1)), // p99 of 1..100 is 99
      sample('Latency', 1, 40),
      sample('Latency', 1, 5000, { service: 'keel', ModelVersion: 'v3' } as never), // another dimension set
      sample('Latency', 1, 5000, { service: 'other' }),
      sample('Latency', 6, 5000), // before the window
      sample('Latency', 0, 5000), // the current, partial period: at or after `end`
    ];
    expect(periodDatapoints(latency, samples, { end: END + 1, periods: 5 })).toEqual([
      null,
      null,
      null,
      99,
      40,
    ]);
  });

  it('computes the 5xx share with metric math: FILL, a minimum of requests, and 0 without traffic', () => {
    const errors = alarm(ALARM_IDS.predictServerErrors);
    const samples = [
      // 3 minutes ago: 90 ok, 10 server errors → 10%
      ...Array.from({ length: 90 }, () => sample('Http2xx', 3, 1)),
      ...Array.from({ length: 10 }, () => sample('Http5xx', 3, 1)),
      // 2 minutes ago: 5 server errors out of 5 requests: below minRequests (20) → 0
      ...Array.from({ length: 5 }, () => sample('Http5xx', 2, 1)),
      // 1 minute ago: 15 client errors, 15 server errors, no 2xx → 50%
      ...Array.from({ length: 15 }, () => sample('Http4xx', 1, 1)),
      ...Array.from({ length: 15 }, () => sample('Http5xx', 1, 1)),
    ];
    expect(periodDatapoints(errors, samples, { end: END, periods: 4 })).toEqual([0, 10, 0, 50]);
  });

  it('alarms on the largest positive-rate move either way within a period', () => {
    const rate = alarm(ALARM_IDS.positiveRateDrift);
    const HOUR = 60;
    const samples = [
      sample('PositiveRateDelta', 2 * HOUR - 1, 3),
      sample('PositiveRateDelta', HOUR - 1, -12),
    ];
    expect(periodDatapoints(rate, samples, { end: END, periods: 3 })).toEqual([null, 3, 12]);
    expect(evaluateAlarm(rate, [null, 3, 12])).toBe('ALARM');
  });

  it('knows the CloudWatch statistics', () => {
    const values = [4, 1, 3, 2];
    expect(
      ['Sum', 'Average', 'Minimum', 'Maximum', 'SampleCount', 'p50', 'p100'].map((s) =>
        statistic(values, s as never),
      ),
    ).toEqual([10, 2.5, 1, 4, 4, 2, 4]);
    expect(() => statistic(values, 'median' as never)).toThrow(/unknown statistic "median"/);
  });
});
