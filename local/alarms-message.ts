import { randomUUID } from 'node:crypto';
import type {
  AlarmDefinition,
  CompositeAlarmDefinition,
  MetricStat,
} from '#shared/monitoring/alarm-catalog.ts';
import { alarmDescription, renderAlarmRule, renderExpression } from '#shared/monitoring/cloudwatch-alarms.ts';
import { type AlarmState, breaches, type Datapoint } from '#shared/monitoring/evaluate.ts';
import type { DeploymentEnvironment } from '#shared/resources.ts';
import type { AlarmStateChangeEvent } from '#shared/rollout/aws.ts';
import type { WebhookDelivery } from './notifications.ts';

/**
 * What CloudWatch publishes to the on-call topic when an alarm changes state, and the envelope SNS
 * wraps it in for an HTTPS subscriber, so on-call tooling written against AWS reads local alarms
 * unchanged. The envelope carries no Signature (nothing here holds SNS's signing key).
 */

export interface Transition {
  readonly name: string;
  readonly from: AlarmState;
  readonly to: AlarmState;
  readonly reason: string;
  readonly at: Date;
}

const OPERATOR_TEXT: Record<AlarmDefinition['comparisonOperator'], string> = {
  GreaterThanOrEqualToThreshold: 'greater than or equal to',
  GreaterThanThreshold: 'greater than',
  LessThanThreshold: 'less than',
  LessThanOrEqualToThreshold: 'less than or equal to',
};

const cloudWatchTime = (at: Date) => at.toISOString().replace('Z', '+0000');

/** CloudWatch's NewStateReason wording for a metric alarm, from the datapoints it judged (oldest first). */
export function stateReason(
  definition: AlarmDefinition,
  datapoints: readonly Datapoint[],
  state: AlarmState,
  end: number,
): string {
  const periodMs = definition.periodSeconds * 1000;
  const recent = datapoints
    .map((value, i) => ({ value, at: end - (datapoints.length - i) * periodMs }))
    .filter((d): d is { value: number; at: number } => d.value !== null)
    .slice(-definition.evaluationPeriods)
    .reverse();
  if (recent.length === 0) {
    return state === 'INSUFFICIENT_DATA'
      ? `Insufficient Data: no datapoint in the last ${datapoints.length} periods.`
      : `No datapoint in the last ${datapoints.length} periods (treatMissingData: ${definition.treatMissingData}).`;
  }
  const listed = recent.map((d) => `${round(d.value)} (${new Date(d.at).toISOString()})`).join(', ');
  const op = OPERATOR_TEXT[definition.comparisonOperator];
  const alarming = state === 'ALARM';
  const counted = recent.filter(
    (d) => breaches(d.value, definition.comparisonOperator, definition.threshold) === alarming,
  ).length;
  const verb = counted === 1 ? 'was' : 'were';
  return `Threshold Crossed: ${counted} out of the last ${recent.length} datapoint${recent.length === 1 ? '' : 's'} [${listed}] ${verb}${alarming ? '' : ' not'} ${op} the threshold (${definition.threshold}) (minimum ${definition.datapointsToAlarm} of ${definition.evaluationPeriods} for ALARM).`;
}

const round = (value: number) => Number(value.toPrecision(6));

function metricStatJson(stat: MetricStat, periodSeconds: number) {
  return {
    Metric: {
      Namespace: stat.namespace,
      MetricName: stat.metricName,
      Dimensions: Object.entries(stat.dimensions).map(([name, value]) => ({ value, name })),
    },
    Period: periodSeconds,
    Stat: stat.statistic,
  };
}

/** CloudWatch's `Trigger`: the metric (or metric math) and the condition. */
function trigger(definition: AlarmDefinition) {
  const common = {
    Period: definition.periodSeconds,
    EvaluationPeriods: definition.evaluationPeriods,
    DatapointsToAlarm: definition.datapointsToAlarm,
    ComparisonOperator: definition.comparisonOperator,
    Threshold: definition.threshold,
    TreatMissingData: definition.treatMissingData,
    EvaluateLowSampleCountPercentile: '',
  };
  const { metric } = definition;
  if (metric.kind === 'math') {
    return {
      ...common,
      Metrics: [
        {
          Id: 'expr',
          Expression: renderExpression(metric.expression),
          Label: metric.label,
          ReturnData: true,
        },
        ...Object.entries(metric.metrics).map(([id, stat]) => ({
          Id: id,
          MetricStat: metricStatJson(stat, definition.periodSeconds),
          ReturnData: false,
        })),
      ],
    };
  }
  const percentile = metric.metric.statistic.startsWith('p');
  return {
    ...common,
    MetricName: metric.metric.metricName,
    Namespace: metric.metric.namespace,
    StatisticType: percentile ? 'ExtendedStatistic' : 'Statistic',
    ...(percentile
      ? { ExtendedStatistic: metric.metric.statistic }
      : { Statistic: metric.metric.statistic.toUpperCase() }),
    Unit: null,
    Dimensions: Object.entries(metric.metric.dimensions).map(([name, value]) => ({ value, name })),
  };
}

/** The JSON CloudWatch publishes for a metric alarm's or a composite alarm's state change. */
export function alarmMessage(
  definition: AlarmDefinition | CompositeAlarmDefinition,
  transition: Transition,
  environment: DeploymentEnvironment,
  nameOf: (id: string) => string,
  triggeringChildren: readonly string[] = [],
): Record<string, unknown> {
  const common = {
    AlarmName: transition.name,
    AlarmDescription: alarmDescription(definition),
    AWSAccountId: environment.account,
    NewStateValue: transition.to,
    NewStateReason: transition.reason,
    StateChangeTime: cloudWatchTime(transition.at),
    Region: environment.region,
    AlarmArn: `arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${transition.name}`,
    OldStateValue: transition.from,
  };
  if ('anyOf' in definition) {
    return {
      ...common,
      AlarmRule: renderAlarmRule(definition, nameOf),
      TriggeringChildren: triggeringChildren.map((id) => ({
        Arn: `arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${nameOf(id)}`,
        State: { Value: 'ALARM' },
      })),
    };
  }
  return { ...common, Trigger: trigger(definition) };
}

/**
 * The event EventBridge delivers for an alarm's state change ("CloudWatch Alarm State Change"), for the
 * rules that act on one (the rollout guard's).
 */
export function alarmStateChangeEvent(
  transition: Transition,
  environment: DeploymentEnvironment,
): AlarmStateChangeEvent {
  const event = {
    version: '0',
    id: randomUUID(),
    'detail-type': 'CloudWatch Alarm State Change' as const,
    source: 'aws.cloudwatch' as const,
    account: environment.account,
    time: transition.at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: environment.region,
    resources: [`arn:aws:cloudwatch:${environment.region}:${environment.account}:alarm:${transition.name}`],
    detail: {
      alarmName: transition.name,
      state: { value: transition.to, reason: transition.reason, timestamp: cloudWatchTime(transition.at) },
      previousState: { value: transition.from },
    },
  };
  return event;
}

/** CloudWatch's subject line: `ALARM: "keel-local-data-drift-page" in us-east-1`. */
export function alarmSubject(transition: Transition, region: string): string {
  return `${transition.to}: "${transition.name}" in ${region}`;
}

/** The body SNS POSTs to an HTTPS subscriber: the alarm JSON as a string in `Message`. */
export function snsEnvelope(
  subject: string,
  message: Record<string, unknown>,
  topicArn: string,
  at: Date,
): Record<string, string> {
  return {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: topicArn,
    Subject: subject,
    Message: JSON.stringify(message),
    Timestamp: at.toISOString(),
  };
}

export interface WebhookOptions {
  readonly url: string;
  /** Per attempt (default 5 s). */
  readonly timeoutMs?: number;
  /** Attempts after the first (default 1). */
  readonly retries?: number;
}

/** POSTs `body` as SNS does; never throws: the outcome (delivered or why not) is returned. */
export async function postWebhook(
  options: WebhookOptions,
  body: Record<string, string>,
): Promise<WebhookDelivery> {
  const attempts = 1 + (options.retries ?? 1);
  let detail = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'text/plain; charset=UTF-8',
          'x-amz-sns-message-type': body.Type ?? 'Notification',
          'x-amz-sns-message-id': body.MessageId ?? '',
          'x-amz-sns-topic-arn': body.TopicArn ?? '',
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
      await response.body?.cancel();
      detail = `HTTP ${response.status}`;
      // As SNS: any 2xx is delivered; anything else is retried.
      if (response.ok) return { url: options.url, status: 'delivered', attempts: attempt, detail };
    } catch (error) {
      detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }
  return { url: options.url, status: 'failed', attempts, detail };
}
