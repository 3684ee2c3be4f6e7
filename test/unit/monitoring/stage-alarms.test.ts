import { describe, expect, it } from 'vitest';
import { stateChange } from '#cli/stage/alarms.ts';

/**
 * DescribeAlarmHistory StateUpdate items as CloudWatch writes them (moto does not implement the call,
 * so test/integration/cli-stage-alarms.test.ts cannot get one).
 */
describe('stateChange', () => {
  it('reads the old and new state and the new state’s reason from HistoryData', () => {
    const reason =
      'Threshold Crossed: 1 datapoint [0.31 (24/11/26 22:00:00)] was greater than or equal to the threshold (0.25).';
    expect(
      stateChange({
        AlarmName: 'keel-prod-data-drift-page',
        AlarmType: 'MetricAlarm',
        Timestamp: new Date('2026-11-24T22:01:02.345Z'),
        HistoryItemType: 'StateUpdate',
        HistorySummary: 'Alarm updated from OK to ALARM',
        HistoryData: JSON.stringify({
          version: '1.0',
          oldState: { stateValue: 'OK', stateReason: 'Threshold Crossed: 1 datapoint [0.02 …] was not …' },
          newState: {
            stateValue: 'ALARM',
            stateReason: reason,
            stateReasonData: { version: '1.0', statistic: 'Maximum', period: 3600, recentDatapoints: [0.31] },
          },
        }),
      }),
    ).toEqual({ at: '2026-11-24T22:01:02.345Z', from: 'OK', to: 'ALARM', reason });
  });

  it('falls back to the summary when HistoryData is not what it expects', () => {
    expect(
      stateChange({
        Timestamp: new Date('2026-11-24T22:00:00Z'),
        HistorySummary: 'Alarm updated from INSUFFICIENT_DATA to OK',
        HistoryData: 'not json',
      }),
    ).toEqual({
      at: '2026-11-24T22:00:00.000Z',
      from: null,
      to: null,
      reason: 'Alarm updated from INSUFFICIENT_DATA to OK',
    });
  });
});
