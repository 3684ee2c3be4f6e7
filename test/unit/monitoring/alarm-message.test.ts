import { describe, expect, it } from 'vitest';
import { alarmMessage, snsEnvelope, stateReason, type Transition } from '#local/alarms-message.ts';
import { ALARM_IDS, alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

/** What local alarms publish: CloudWatch's alarm message and SNS's HTTPS body, field for field. */

const catalog = alarmDefinitions();
const byId = (id: string) => catalog.alarms.find((a) => a.id === id)!;
const nameOf = (id: string) => alarmName(LOCAL_ENVIRONMENT.stage, id);
const at = new Date('2026-03-02T10:00:07.250Z');
const transition = (id: string, reason = 'r'): Transition => ({
  name: nameOf(id),
  from: 'OK',
  to: 'ALARM',
  reason,
  at,
});

describe('alarm messages', () => {
  it('gives a percentile alarm an ExtendedStatistic trigger and CloudWatch’s time format', () => {
    const message = alarmMessage(
      byId(ALARM_IDS.predictLatency),
      transition(ALARM_IDS.predictLatency),
      LOCAL_ENVIRONMENT,
      nameOf,
    );
    expect(message).toMatchObject({
      AlarmName: 'keel-local-predict-latency-p99',
      AlarmArn: 'arn:aws:cloudwatch:us-east-1:000000000000:alarm:keel-local-predict-latency-p99',
      AWSAccountId: '000000000000',
      StateChangeTime: '2026-03-02T10:00:07.250+0000',
      OldStateValue: 'OK',
      NewStateValue: 'ALARM',
      Trigger: {
        MetricName: 'Latency',
        Namespace: 'Keel',
        StatisticType: 'ExtendedStatistic',
        ExtendedStatistic: 'p99',
        Dimensions: [{ name: 'service', value: 'keel' }],
        Period: 60,
        EvaluationPeriods: 5,
        DatapointsToAlarm: 3,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1000,
        TreatMissingData: 'notBreaching',
      },
    });
    expect(message.AlarmDescription).toMatch(/^\[page\] Predict handler latency p99/);
  });

  it('describes a metric-math alarm by its expression and inputs', () => {
    const message = alarmMessage(
      byId(ALARM_IDS.positiveRateDrift),
      transition(ALARM_IDS.positiveRateDrift),
      LOCAL_ENVIRONMENT,
      nameOf,
    );
    const trigger = message.Trigger as {
      Metrics: { Id: string; Expression?: string; MetricStat?: unknown }[];
    };
    expect(trigger.Metrics.map((m) => m.Id)).toEqual(['expr', 'high', 'low']);
    expect(trigger.Metrics[0]!.Expression).toBe('MAX([ABS(high), ABS(low)])');
    expect(trigger.Metrics[2]!.MetricStat).toEqual({
      Metric: {
        Namespace: 'Keel',
        MetricName: 'PositiveRateDelta',
        Dimensions: [{ value: 'keel', name: 'service' }],
      },
      Period: 3600,
      Stat: 'Minimum',
    });
  });

  it('names the composite’s rule and the children that tripped it', () => {
    const message = alarmMessage(catalog.page, transition(ALARM_IDS.page), LOCAL_ENVIRONMENT, nameOf, [
      ALARM_IDS.dataDriftPage,
    ]);
    expect(message.AlarmRule).toContain('ALARM("keel-local-data-drift-page") OR ');
    expect(message.TriggeringChildren).toEqual([
      {
        Arn: 'arn:aws:cloudwatch:us-east-1:000000000000:alarm:keel-local-data-drift-page',
        State: { Value: 'ALARM' },
      },
    ]);
    expect(message.Trigger).toBeUndefined();
  });

  it('wraps the message as SNS posts it to an HTTPS subscriber', () => {
    const message = { AlarmName: 'a', NewStateValue: 'ALARM' };
    const body = snsEnvelope('ALARM: "a" in us-east-1', message, 'arn:aws:sns:us-east-1:0:t', at);
    expect(body).toEqual({
      Type: 'Notification',
      MessageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      TopicArn: 'arn:aws:sns:us-east-1:0:t',
      Subject: 'ALARM: "a" in us-east-1',
      Message: JSON.stringify(message),
      Timestamp: '2026-03-02T10:00:07.250Z',
    });
  });

  it('words the reason from the datapoints judged, newest first', () => {
    const definition = byId(ALARM_IDS.predictLatency);
    const end = Date.parse('2026-03-02T10:01:00Z');
    expect(stateReason(definition, [null, 1200, 900, null, 1500], 'ALARM', end)).toBe(
      'Threshold Crossed: 2 out of the last 3 datapoints [1500 (2026-03-02T10:00:00.000Z), 900 (2026-03-02T09:58:00.000Z), 1200 (2026-03-02T09:57:00.000Z)] were greater than or equal to the threshold (1000) (minimum 3 of 5 for ALARM).',
    );
    expect(stateReason(definition, [1200, 900], 'OK', end)).toBe(
      'Threshold Crossed: 1 out of the last 2 datapoints [900 (2026-03-02T10:00:00.000Z), 1200 (2026-03-02T09:59:00.000Z)] was not greater than or equal to the threshold (1000) (minimum 3 of 5 for ALARM).',
    );
    expect(stateReason(byId(ALARM_IDS.dataDriftPage), [null, null, null], 'INSUFFICIENT_DATA', end)).toBe(
      'Insufficient Data: no datapoint in the last 3 periods.',
    );
  });
});
