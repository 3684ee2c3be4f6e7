import { type CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import type { SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { publishNotice } from '#shared/drift/notice.ts';
import type { AlarmStateChange, GuardrailReader, GuardrailState, Pager } from './decision.ts';

/**
 * The AWS side of the rollout decision: the guardrails' states from CloudWatch, the page to the on-call
 * topic, and the EventBridge event that carries a guardrail's state change to the guard.
 */

const STATES = new Set<GuardrailState['state']>(['OK', 'ALARM', 'INSUFFICIENT_DATA']);

/**
 * DescribeAlarms by name, metric alarms only: what the rollout role may read (the guardrails' ARNs;
 * composite alarms would need `*`). Lambda's clock decides nothing here: CloudWatch's times are kept.
 */
export function cloudWatchGuardrails(cloudwatch: CloudWatchClient): GuardrailReader {
  return async (names) => {
    const { MetricAlarms } = await cloudwatch.send(
      new DescribeAlarmsCommand({ AlarmNames: [...names], AlarmTypes: ['MetricAlarm'], MaxRecords: 100 }),
    );
    return (MetricAlarms ?? []).map((alarm) => {
      const state = alarm.StateValue as GuardrailState['state'];
      if (!STATES.has(state)) throw new Error(`alarm ${alarm.AlarmName} is in an unknown state "${state}"`);
      return {
        name: alarm.AlarmName ?? '',
        state,
        reason: alarm.StateReason ?? '',
        since: (alarm.StateTransitionedTimestamp ?? alarm.StateUpdatedTimestamp ?? new Date(0)).toISOString(),
      };
    });
  };
}

/** Pages through the on-call topic (SNS encrypts with the topic's key as the publisher). */
export const snsPager =
  (sns: SNSClient, topicArn: string): Pager =>
  (page) =>
    publishNotice(sns, topicArn, page);

/** The "CloudWatch Alarm State Change" event EventBridge delivers, the fields the guard reads. */
export const alarmStateChangeEventSchema = z.object({
  source: z.literal('aws.cloudwatch'),
  'detail-type': z.literal('CloudWatch Alarm State Change'),
  time: z.string(),
  resources: z.array(z.string()),
  detail: z.object({
    alarmName: z.string().min(1),
    state: z.object({ value: z.string(), reason: z.string(), timestamp: z.string() }),
  }),
}) satisfies z.ZodType<{ detail: AlarmStateChange }>;

export type AlarmStateChangeEvent = z.infer<typeof alarmStateChangeEventSchema>;
