import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmRule,
  ComparisonOperator,
  CompositeAlarm,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type {
  AlarmDefinition,
  CompositeAlarmDefinition,
  ComparisonOperator as DefinedComparison,
  TreatMissingData as DefinedMissingData,
  MetricStat,
} from '#shared/monitoring/alarm-catalog.ts';
import {
  alarmDescription,
  alarmName,
  renderAlarmRule,
  renderExpression,
} from '#shared/monitoring/cloudwatch-alarms.ts';

/** Props of {@link MonitoringAlarms}. */
export interface MonitoringAlarmsProps {
  /** Deployment stage: alarm names are `alarmName(stage, id)`. */
  readonly stage: string;
  /** The alarms, from `alarmDefinitions(…)` in `shared/monitoring/alarm-definitions.ts`; never restated here. */
  readonly alarms: readonly AlarmDefinition[];
  /** The paging composite over the `page` alarms (`alarmDefinitions(…).page`). */
  readonly page: CompositeAlarmDefinition;
  /** Where every alarm notifies (see the class comment for which transitions). */
  readonly topic: ITopic;
}

const COMPARISON: Record<DefinedComparison, ComparisonOperator> = {
  GreaterThanOrEqualToThreshold: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  GreaterThanThreshold: ComparisonOperator.GREATER_THAN_THRESHOLD,
  LessThanThreshold: ComparisonOperator.LESS_THAN_THRESHOLD,
  LessThanOrEqualToThreshold: ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
};

const MISSING_DATA: Record<DefinedMissingData, TreatMissingData> = {
  breaching: TreatMissingData.BREACHING,
  notBreaching: TreatMissingData.NOT_BREACHING,
  ignore: TreatMissingData.IGNORE,
  missing: TreatMissingData.MISSING,
};

/** A definition's metric stat as a CDK metric over `period`. */
export function metricOf(stat: MetricStat, period: Duration): Metric {
  return new Metric({
    namespace: stat.namespace,
    metricName: stat.metricName,
    dimensionsMap: { ...stat.dimensions },
    statistic: stat.statistic,
    period,
  });
}

/** What an alarm watches: the metric, or the metric math with its inputs, as the definition says. */
export function alarmMetricOf(definition: AlarmDefinition): IMetric {
  const period = Duration.seconds(definition.periodSeconds);
  const { metric } = definition;
  if (metric.kind === 'metric') return metricOf(metric.metric, period);
  return new MathExpression({
    expression: renderExpression(metric.expression),
    label: metric.label,
    period,
    usingMetrics: Object.fromEntries(
      Object.entries(metric.metrics).map(([id, stat]) => [id, metricOf(stat, period)]),
    ),
  });
}

/**
 * One CloudWatch alarm per definition and the paging composite over the `page` ones, named by
 * `alarmName(stage, id)` and described (what is wrong, then the runbook) by `alarmDescription`.
 *
 * Notifications: every alarm but the rollout guardrails tells the topic when it goes to ALARM (its
 * description carries the runbook). `page` alarms and the composite also tell it when they return to OK, so an incident is
 * seen to close; a `warn` alarm's return to OK is not worth a message.
 */
export class MonitoringAlarms extends Construct {
  /** The alarms by definition id. */
  public readonly alarms: ReadonlyMap<string, Alarm>;
  public readonly page: CompositeAlarm;

  constructor(scope: Construct, id: string, props: MonitoringAlarmsProps) {
    super(scope, id);
    this.validateProps(props);
    const action = new SnsAction(props.topic);
    const alarms = new Map<string, Alarm>();
    for (const definition of props.alarms) {
      const alarm = new Alarm(this, definition.id, {
        alarmName: alarmName(props.stage, definition.id),
        alarmDescription: alarmDescription(definition),
        metric: alarmMetricOf(definition),
        threshold: definition.threshold,
        evaluationPeriods: definition.evaluationPeriods,
        datapointsToAlarm: definition.datapointsToAlarm,
        comparisonOperator: COMPARISON[definition.comparisonOperator],
        treatMissingData: MISSING_DATA[definition.treatMissingData],
      });
      // A guardrail's move to ALARM reaches the rollout guard (an EventBridge rule), which pages naming
      // the version and the alarm: a message from the alarm too would page twice for one event.
      if (!definition.guardrail) alarm.addAlarmAction(action);
      if (definition.severity === 'page') alarm.addOkAction(action);
      alarms.set(definition.id, alarm);
    }
    this.alarms = alarms;

    this.page = new CompositeAlarm(this, props.page.id, {
      compositeAlarmName: alarmName(props.stage, props.page.id),
      alarmDescription: alarmDescription(props.page),
      alarmRule: AlarmRule.fromString(renderAlarmRule(props.page, (child) => alarmName(props.stage, child))),
    });
    this.page.addAlarmAction(action);
    this.page.addOkAction(action);
    // The rule names its children as text: CloudFormation must create them first.
    for (const child of props.page.anyOf) this.page.node.addDependency(alarms.get(child)!);
  }

  /** Refuses definitions that are not one catalog: ids twice, a composite over missing or no alarms. */
  private validateProps(props: MonitoringAlarmsProps): void {
    const owner = `MonitoringAlarms ${this.node.path}`;
    const ids = new Set<string>();
    for (const { id } of props.alarms) {
      if (ids.has(id)) {
        throw new Error(`${owner}: alarm id "${id}" is defined twice: give each definition its own id`);
      }
      ids.add(id);
    }
    const missing = props.page.anyOf.filter((child) => !ids.has(child));
    if (missing.length > 0) {
      throw new Error(
        `${owner}: the composite "${props.page.id}" refers to alarms that are not defined (${missing.join(', ')}): pass the definitions of the same catalog`,
      );
    }
    if (props.page.anyOf.length === 0) {
      throw new Error(
        `${owner}: the composite "${props.page.id}" has no alarm to watch: define a page alarm`,
      );
    }
  }
}
