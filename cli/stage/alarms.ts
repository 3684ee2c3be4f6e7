import {
  type AlarmHistoryItem,
  CloudWatchClient,
  type CompositeAlarm,
  DescribeAlarmHistoryCommand,
  DescribeAlarmsCommand,
  type MetricAlarm,
} from '@aws-sdk/client-cloudwatch';
import {
  type AlarmStatus,
  type AlarmsSnapshot,
  compositeConditionText,
  conditionText,
  localAlarmCatalog,
  metricMathText,
  metricStatText,
} from '#local/alarms.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { assertValidStage } from '#shared/resources.ts';
import { StageError } from './stage-info.ts';

/**
 * A deployed stage's alarms, read from CloudWatch (which evaluates them itself): the alarms the
 * monitoring stack creates, by their names `alarmName(stage, id)`, in the shape of the local
 * `alarms.json` so `keel alarms` shows both alike, each with its recent state changes. The client
 * takes the SDK's default credential chain; AWS_ENDPOINT_URL_CLOUDWATCH points it at an emulator.
 */

/** One state change from DescribeAlarmHistory. */
export interface StateChange {
  readonly at: string;
  readonly from: string | null;
  readonly to: string | null;
  /** CloudWatch's reason for the new state, else the item's summary. */
  readonly reason: string;
}

export interface StageAlarmStatus extends AlarmStatus {
  /** Newest first; null when the history could not be read (see `historyError`). */
  readonly history: readonly StateChange[] | null;
}

export interface StageAlarmsSnapshot extends AlarmsSnapshot {
  readonly region: string;
  readonly alarms: readonly StageAlarmStatus[];
  /** Why the state-change history is missing (e.g. no cloudwatch:DescribeAlarmHistory permission). */
  readonly historyError?: string;
}

/** The SDK's error name and message, as a StageError that says which call failed. */
async function call<T>(action: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const { name, message } = error as Error;
    // The first line: the SDK appends hints on how to inspect the raw response.
    throw new StageError(`CloudWatch ${action} failed: ${name}: ${message.split('\n')[0]}`, {
      cause: error,
    });
  }
}

const parseJson = (text: string | undefined): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text ?? '');
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/** A DescribeAlarmHistory StateUpdate item: its HistoryData holds the old and new state. */
export function stateChange(item: AlarmHistoryItem): StateChange {
  const data = parseJson(item.HistoryData);
  const state = (key: 'oldState' | 'newState') => {
    const value = (data[key] as { stateValue?: unknown; stateReason?: unknown } | undefined) ?? {};
    return {
      value: typeof value.stateValue === 'string' ? value.stateValue : null,
      reason: typeof value.stateReason === 'string' ? value.stateReason : null,
    };
  };
  const to = state('newState');
  return {
    at: item.Timestamp?.toISOString() ?? '',
    from: state('oldState').value,
    to: to.value,
    reason: to.reason ?? item.HistorySummary ?? '',
  };
}

/** `[page] what is wrong\nRunbook: what to do`, as `alarmDescription` writes it. */
function describedAs(description: string | undefined) {
  const match = /^\[(warn|page)\] ([\s\S]*?)(?:\nRunbook: ([\s\S]*))?$/.exec(description ?? '');
  return {
    severity: match?.[1] as AlarmStatus['severity'] | undefined,
    description: match?.[2] ?? description ?? '',
    runbook: match?.[3] ?? '',
  };
}

/** The newest datapoint CloudWatch evaluated, from the state's reason data. */
function lastValueOf(reasonData: string | undefined): number | null {
  const points = parseJson(reasonData).recentDatapoints;
  const last = Array.isArray(points) ? points.at(-1) : undefined;
  return typeof last === 'number' ? last : null;
}

function metricOf(alarm: MetricAlarm): string {
  const math = alarm.Metrics?.find((m) => m.Expression && m.ReturnData !== false);
  if (math) return metricMathText(math.Label ?? math.Id ?? '', math.Expression!);
  return metricStatText({
    namespace: alarm.Namespace ?? '',
    metricName: alarm.MetricName ?? '',
    statistic: alarm.Statistic ?? alarm.ExtendedStatistic ?? '',
  });
}

type Common = Pick<
  MetricAlarm,
  'StateValue' | 'StateReason' | 'StateUpdatedTimestamp' | 'StateTransitionedTimestamp' | 'AlarmDescription'
>;

/** An alarm's status; `shown` gives what the alarm's kind knows (metric, condition, last value). */
function statusOf(
  alarm: Common,
  shown: Pick<AlarmStatus, 'id' | 'name' | 'severity' | 'metric' | 'condition' | 'lastValue'>,
): Omit<StageAlarmStatus, 'history'> {
  const described = describedAs(alarm.AlarmDescription);
  // StateTransitioned: when the state changed; StateUpdated also moves when only the reason does.
  const since = alarm.StateTransitionedTimestamp ?? alarm.StateUpdatedTimestamp;
  return {
    ...shown,
    severity: described.severity ?? shown.severity,
    state: (alarm.StateValue ?? 'INSUFFICIENT_DATA') as AlarmStatus['state'],
    since: since?.toISOString() ?? null,
    reason: alarm.StateReason ?? '',
    description: described.description,
    runbook: described.runbook,
  };
}

/**
 * The stage's alarms (in catalog order, the composite last) with up to `historyLimit` state changes
 * each. A stage without any is an error naming the stage and region (not deployed, or elsewhere).
 */
export async function readStageAlarms(
  stage: string,
  region: string,
  options: { historyLimit: number; now?: () => Date },
): Promise<StageAlarmsSnapshot> {
  try {
    assertValidStage(stage);
  } catch (error) {
    throw new StageError((error as Error).message, { cause: error });
  }
  // Every alarm the monitoring stack can create: the same ids whichever optional parts it deploys.
  const catalog = localAlarmCatalog({}, stage);
  const definitions = new Map(catalog.alarms.map((d) => [alarmName(stage, d.id), d]));
  const pageName = alarmName(stage, catalog.page.id);
  const names = [...definitions.keys(), pageName];
  const cloudwatch = new CloudWatchClient({ region });
  try {
    const metricAlarms = new Map<string, MetricAlarm>();
    const compositeAlarms = new Map<string, CompositeAlarm>();
    let NextToken: string | undefined;
    do {
      const page = await call('DescribeAlarms', () =>
        cloudwatch.send(
          // Without AlarmTypes CloudWatch answers metric alarms only.
          new DescribeAlarmsCommand({
            AlarmNames: names,
            AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
            NextToken,
          }),
        ),
      );
      for (const a of page.MetricAlarms ?? []) if (a.AlarmName) metricAlarms.set(a.AlarmName, a);
      for (const a of page.CompositeAlarms ?? []) if (a.AlarmName) compositeAlarms.set(a.AlarmName, a);
      NextToken = page.NextToken;
    } while (NextToken);
    if (metricAlarms.size + compositeAlarms.size === 0) {
      throw new StageError(
        `stage ${stage} has no Keel alarms in ${region}: deploy its monitoring stack (Keel-${stage}-Monitoring) ` +
          'or pass the --region (and --profile) it was deployed with',
      );
    }

    const statuses: Omit<StageAlarmStatus, 'history'>[] = [];
    for (const [name, definition] of definitions) {
      const alarm = metricAlarms.get(name);
      if (!alarm) continue;
      const period = alarm.Period ?? alarm.Metrics?.find((m) => m.MetricStat)?.MetricStat?.Period ?? 0;
      statuses.push(
        statusOf(alarm, {
          id: definition.id,
          name,
          severity: definition.severity,
          metric: metricOf(alarm),
          condition: conditionText({
            comparisonOperator: alarm.ComparisonOperator ?? '',
            threshold: alarm.Threshold ?? 0,
            evaluationPeriods: alarm.EvaluationPeriods ?? 0,
            datapointsToAlarm: alarm.DatapointsToAlarm ?? alarm.EvaluationPeriods ?? 0,
            periodSeconds: period,
          }),
          lastValue: lastValueOf(alarm.StateReasonData),
        }),
      );
    }
    const composite = compositeAlarms.get(pageName);
    if (composite) {
      const children = composite.AlarmRule?.match(/ALARM\(/g)?.length ?? 0;
      statuses.push(
        statusOf(composite, {
          id: catalog.page.id,
          name: pageName,
          severity: 'page',
          metric: 'composite',
          condition: compositeConditionText(children),
          lastValue: null,
        }),
      );
    }

    // One request per alarm (the history API takes one name), at most ~20 of them.
    const histories = await Promise.allSettled(
      statuses.map((s) =>
        call('DescribeAlarmHistory', () =>
          cloudwatch.send(
            new DescribeAlarmHistoryCommand({
              AlarmName: s.name,
              AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
              HistoryItemType: 'StateUpdate',
              ScanBy: 'TimestampDescending',
              MaxRecords: options.historyLimit,
            }),
          ),
        ),
      ),
    );
    const failed = histories.find((h) => h.status === 'rejected');
    return {
      evaluatedAt: (options.now?.() ?? new Date()).toISOString(),
      stage,
      region,
      alarms: statuses.map((status, i) => {
        const history = histories[i]!;
        return {
          ...status,
          history:
            history.status === 'fulfilled'
              ? (history.value.AlarmHistoryItems ?? []).slice(0, options.historyLimit).map(stateChange)
              : null,
        };
      }),
      ...(failed ? { historyError: (failed.reason as Error).message } : {}),
    };
  } finally {
    cloudwatch.destroy();
  }
}
