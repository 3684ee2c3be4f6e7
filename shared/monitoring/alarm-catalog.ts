import type { MonitoringOptions } from './alarm-options.ts';

/**
 * The shape of Keel's alarm catalog: alarms declared once as data (alarm-definitions.ts builds them).
 * The CDK monitoring stack turns each definition into a CloudWatch alarm (the fields map one to one
 * onto `cloudwatch.Alarm` props; cloudwatch-alarms.ts renders names, descriptions and metric math),
 * and the local runtime evaluates the very same definitions over EMF lines with evaluate.ts.
 */

/** Every `page` alarm is a child of the paging composite ({@link AlarmCatalog}.page). */
export type Severity = 'warn' | 'page';
export type Statistic = 'Sum' | 'Average' | 'Minimum' | 'Maximum' | 'SampleCount' | `p${number}`;
export type ComparisonOperator =
  | 'GreaterThanOrEqualToThreshold'
  | 'GreaterThanThreshold'
  | 'LessThanThreshold'
  | 'LessThanOrEqualToThreshold';
export type TreatMissingData = 'breaching' | 'notBreaching' | 'ignore' | 'missing';
/** `emf`: Keel's own EMF lines (in AWS and locally); `aws`: an AWS service's metric (in AWS only). */
export type MetricSource = 'emf' | 'aws';

export interface MetricStat {
  readonly namespace: string;
  readonly metricName: string;
  /** The metric's complete dimension set. */
  readonly dimensions: Readonly<Record<string, string>>;
  readonly statistic: Statistic;
}

/** The subset of CloudWatch metric math Keel's alarms use; cloudwatch-alarms.ts renders it (`renderExpression`). */
export type Expression =
  | { readonly op: 'metric'; readonly id: string }
  | { readonly op: 'const'; readonly value: number }
  | { readonly op: '+' | '-' | '*' | '/' | '>='; readonly left: Expression; readonly right: Expression }
  | { readonly op: 'abs'; readonly of: Expression }
  /** Per-period maximum over series: CloudWatch's `MAX([a, b])`. */
  | { readonly op: 'max'; readonly args: readonly Expression[] }
  /** The metric's value, or `value` in a period where it has none. */
  | { readonly op: 'fill'; readonly id: string; readonly value: number }
  | {
      readonly op: 'if';
      readonly condition: Expression;
      readonly whenTrue: Expression;
      readonly whenFalse: Expression;
    };

export type AlarmMetric =
  | { readonly kind: 'metric'; readonly metric: MetricStat }
  | {
      readonly kind: 'math';
      readonly expression: Expression;
      readonly label: string;
      /** The expression's inputs by id (lower-case first letter, as CloudWatch requires). */
      readonly metrics: Readonly<Record<string, MetricStat>>;
    };

export interface AlarmDefinition {
  /** Stable, unique, lower-case: the CloudWatch name is `alarmName(stage, id)` (cloudwatch-alarms.ts). */
  readonly id: string;
  readonly severity: Severity;
  readonly source: MetricSource;
  readonly metric: AlarmMetric;
  readonly periodSeconds: number;
  /** N of "M out of N". */
  readonly evaluationPeriods: number;
  /** M of "M out of N". */
  readonly datapointsToAlarm: number;
  readonly comparisonOperator: ComparisonOperator;
  readonly threshold: number;
  readonly treatMissingData: TreatMissingData;
  /** What is wrong when this fires. */
  readonly description: string;
  /** What on-call does first. */
  readonly runbook: string;
  /**
   * A rollout guardrail (`ROLLOUT_GUARDRAIL_IDS`): its move to ALARM ends the running rollout, and the
   * rollout guard pages naming the version and the alarm. The alarm itself notifies nobody and is no
   * child of the paging composite (severity `warn`), so on-call hears of it once, from the guard.
   */
  readonly guardrail?: boolean;
}

/** ALARM when any listed alarm is in ALARM (CloudWatch: `ALARM("a") OR ALARM("b") …`). */
export interface CompositeAlarmDefinition {
  readonly id: string;
  readonly severity: 'page';
  readonly anyOf: readonly string[];
  readonly description: string;
  readonly runbook: string;
}

export interface AlarmCatalog {
  readonly options: MonitoringOptions;
  readonly alarms: readonly AlarmDefinition[];
  /** Pages on-call: over every alarm of severity `page`. */
  readonly page: CompositeAlarmDefinition;
}
