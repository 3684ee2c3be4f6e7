import { Duration } from 'aws-cdk-lib';
import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  MathExpression,
  Metric,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  DEFAULT_SERVICE,
  DRIFT_METRICS,
  KEEL_NAMESPACE,
  PREDICT_METRICS,
  serviceDimensions,
} from '#shared/monitoring/metrics.ts';

/** Props of {@link KeelDashboard}. */
export interface KeelDashboardProps {
  /** CloudWatch name of the dashboard, e.g. `keel-dev`. */
  readonly dashboardName: string;
  /**
   * The predict handler's log group: the model-version widget queries its EMF lines, where
   * `ModelVersion` is a log field (metadata), not a metric dimension.
   *
   * @default - none: a text widget says where the version is found instead
   */
  readonly predictLogGroup?: ILogGroup;
  /**
   * The REST API's name and stage, for API Gateway's own latency and 4xx/5xx graphs.
   *
   * @default - none: only the handler's metrics are graphed
   */
  readonly api?: { readonly name: string; readonly stage: string };
  /** The pipelines' state machines, by name shown on the graphs. */
  readonly stateMachines: Readonly<Record<string, IStateMachine>>;
  /**
   * The dead-letter queues' alarms, shown by state: where a notification that never reached on-call
   * still shows (the dashboard reads CloudWatch, not SNS).
   *
   * @default - none: no dead-letter widget
   */
  readonly deadLetterAlarms?: readonly IAlarm[];
}

const FIVE_MINUTES = Duration.minutes(5);
const HOUR = Duration.hours(1);

/**
 * Keel's dashboard: serving model version, traffic, latency (p50/p99), 4xx/5xx, drift (the metrics the
 * drift alarms watch), pipeline executions and failures, and the dead-letter queues' alarms. Metric
 * names come from `shared/monitoring/metrics.ts`, the contract the handlers emit by.
 */
export class KeelDashboard extends Construct {
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: KeelDashboardProps) {
    super(scope, id);
    const predict = (metricName: string, statistic: string) =>
      new Metric({
        namespace: KEEL_NAMESPACE,
        metricName,
        dimensionsMap: serviceDimensions(DEFAULT_SERVICE),
        statistic,
        period: FIVE_MINUTES,
      });
    const drift = (metricName: string, statistic: string, label: string) =>
      new Metric({
        namespace: KEEL_NAMESPACE,
        metricName,
        dimensionsMap: serviceDimensions(DEFAULT_SERVICE),
        statistic,
        period: HOUR,
        label,
      });
    const gateway = (metricName: string, statistic: string, label: string) =>
      props.api
        ? [
            new Metric({
              namespace: 'AWS/ApiGateway',
              metricName,
              dimensionsMap: { ApiName: props.api.name, Stage: props.api.stage },
              statistic,
              period: FIVE_MINUTES,
              label,
            }),
          ]
        : [];

    const modelVersion: IWidget = props.predictLogGroup
      ? new LogQueryWidget({
          title: 'Model version serving (predictions by ModelVersion)',
          logGroupNames: [props.predictLogGroup.logGroupName],
          view: LogQueryVisualizationType.TABLE,
          queryLines: [
            'filter ispresent(ModelVersion) and ispresent(Predictions)',
            'stats sum(Predictions) as predictions, max(@timestamp) as lastSeen by ModelVersion',
            'sort lastSeen desc',
          ],
          width: 8,
          height: 6,
        })
      : new TextWidget({
          markdown:
            '### Model version\nThe predict handler logs `ModelVersion` with every prediction (EMF metadata). ' +
            'With ECS serving, query the service log group for it; `keel models history` shows the champion.',
          width: 8,
          height: 6,
        });

    const traffic = new GraphWidget({
      title: 'Traffic (predictions)',
      left: [
        predict('Predictions', 'Sum').with({ label: 'Predictions' }),
        predict('PositivePredictions', 'Sum').with({ label: 'Positive predictions' }),
      ],
      width: 8,
      height: 6,
    });
    const latency = new GraphWidget({
      title: 'Latency p50 / p99 (ms)',
      left: [
        predict(PREDICT_METRICS.latency, 'p50').with({ label: 'Handler p50' }),
        predict(PREDICT_METRICS.latency, 'p99').with({ label: 'Handler p99' }),
        ...gateway('Latency', 'p50', 'API Gateway p50'),
        ...gateway('Latency', 'p99', 'API Gateway p99'),
      ],
      width: 8,
      height: 6,
    });
    const errors = new GraphWidget({
      title: 'Responses 4xx / 5xx',
      left: [
        predict(PREDICT_METRICS.http4xx, 'Sum').with({ label: 'Handler 4xx' }),
        predict(PREDICT_METRICS.http5xx, 'Sum').with({ label: 'Handler 5xx' }),
        ...gateway('4XXError', 'Sum', 'API Gateway 4xx'),
        ...gateway('5XXError', 'Sum', 'API Gateway 5xx'),
      ],
      width: 8,
      height: 6,
    });
    const driftWidget = new GraphWidget({
      title: 'Drift (hourly job)',
      left: [
        drift(DRIFT_METRICS.maxFeaturePsi, 'Maximum', 'MaxFeaturePsi'),
        drift(DRIFT_METRICS.scorePsi, 'Maximum', 'ScorePsi'),
      ],
      right: [drift(DRIFT_METRICS.positiveRateDelta, 'Average', 'PositiveRateDelta (points)')],
      width: 8,
      height: 6,
    });
    const machines = Object.entries(props.stateMachines);
    const states = (metricName: string, machine: IStateMachine, label: string) =>
      new Metric({
        namespace: 'AWS/States',
        metricName,
        dimensionsMap: { StateMachineArn: machine.stateMachineArn },
        statistic: 'Sum',
        period: HOUR,
        label,
      });
    const executions = new GraphWidget({
      title: 'Pipeline executions',
      left: machines.map(([name, machine]) => states('ExecutionsStarted', machine, `${name} started`)),
      width: 12,
      height: 6,
    });
    const failures = new GraphWidget({
      title: 'Pipeline failures (failed, timed out, aborted)',
      left: machines.map(
        ([name, machine], i) =>
          new MathExpression({
            expression: `FILL(f${i}, 0) + FILL(t${i}, 0) + FILL(a${i}, 0)`,
            label: `${name} failed`,
            period: HOUR,
            usingMetrics: {
              [`f${i}`]: states('ExecutionsFailed', machine, `${name} failed`),
              [`t${i}`]: states('ExecutionsTimedOut', machine, `${name} timed out`),
              [`a${i}`]: states('ExecutionsAborted', machine, `${name} aborted`),
            },
          }),
      ),
      width: 12,
      height: 6,
    });

    const deadLetters = props.deadLetterAlarms?.length
      ? [
          [
            new AlarmStatusWidget({
              title: 'Dead-letter queues (work and notifications given up on)',
              alarms: [...props.deadLetterAlarms],
              width: 24,
              height: 3,
            }),
          ],
        ]
      : [];

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      widgets: [
        [modelVersion, traffic, latency],
        [errors, driftWidget],
        [executions, failures],
        ...deadLetters,
      ],
    });
  }
}
