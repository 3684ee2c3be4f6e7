import { z } from 'zod';
import type { DriftThresholds, Severity } from '#shared/drift/compute.ts';
import { optionalEnv } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';
import { assertValidStage } from '#shared/resources.ts';
import {
  DEFAULT_SERVICE,
  DRIFT_METRICS,
  KEEL_NAMESPACE,
  PREDICT_METRICS,
  serviceDimensions,
} from './metrics.ts';

/**
 * Keel's alarms, declared once as data. The CDK monitoring stack turns each definition into a
 * CloudWatch alarm (the fields map one to one onto `cloudwatch.Alarm` props, `renderExpression` gives
 * a MathExpression's text), and the local runtime evaluates the very same definitions over EMF lines
 * with evaluate.ts. Thresholds and periods are options (validated, errors name the key); the drift job
 * reads its thresholds back from these definitions through {@link driftThresholds}.
 */

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

/** The subset of CloudWatch metric math Keel's alarms use; see {@link renderExpression}. */
export type Expression =
  | { readonly op: 'metric'; readonly id: string }
  | { readonly op: 'const'; readonly value: number }
  | { readonly op: '+' | '*' | '/' | '>='; readonly left: Expression; readonly right: Expression }
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
  /** Stable, unique, lower-case: the CloudWatch name is {@link alarmName}(stage, id). */
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

export const ALARM_IDS = {
  dataDriftWarn: 'data-drift-warn',
  dataDriftPage: 'data-drift-page',
  scoreDrift: 'prediction-drift-score-psi',
  positiveRateDrift: 'prediction-drift-positive-rate',
  apiLatency: 'api-latency-p99',
  predictLatency: 'predict-latency-p99',
  predictServerErrors: 'predict-5xx-rate',
  page: 'page',
} as const;

/** Ids of the per-resource alarms: `lambda-errors-<function id>` and so on. */
export const RESOURCE_ALARM_PREFIX = {
  lambdaErrors: 'lambda-errors-',
  lambdaThrottles: 'lambda-throttles-',
  stateMachineFailures: 'state-machine-failures-',
  stateMachineTimeouts: 'state-machine-timeouts-',
  stateMachineAborts: 'state-machine-aborts-',
  dlqDepth: 'dlq-depth-',
} as const;

// ---------------------------------------------------------------------------------------------------
// Options

/** CloudWatch accepts 10 s, 30 s and multiples of 60 s. */
const periodSeconds = z
  .int()
  .refine((p) => p === 10 || p === 30 || (p >= 60 && p % 60 === 0), 'must be 10, 30 or a multiple of 60');

function evaluation(period: number, evaluationPeriods: number, datapointsToAlarm: number) {
  return {
    periodSeconds: periodSeconds.default(period),
    evaluationPeriods: z.int().min(1).default(evaluationPeriods),
    datapointsToAlarm: z.int().min(1).default(datapointsToAlarm),
  };
}

const positive = () => z.number().gt(0).refine(Number.isFinite, 'must be finite');
const percent = () => z.number().gt(0).max(100);

const monitoringOptionsSchema = z.strictObject({
  /** Powertools service name: the `service` dimension of every Keel metric. */
  service: z.string().min(1).default(DEFAULT_SERVICE),
  drift: z
    .strictObject({
      ...evaluation(3600, 1, 1),
      featurePsiWarn: positive().default(0.2),
      featurePsiPage: positive().default(0.25),
      scorePsi: positive().default(0.2),
      positiveRateDeltaPoints: percent().default(10),
      /** Without drift, PSI on 10 bins is about 9/rows by chance: 500 rows keep that under 0.02. */
      minRows: z.int().min(1).default(500),
    })
    .prefault({}),
  latency: z.strictObject({ ...evaluation(60, 5, 3), p99Ms: positive().default(1000) }).prefault({}),
  serverErrors: z
    .strictObject({
      ...evaluation(60, 5, 3),
      ratePercent: percent().default(5),
      /** Periods with fewer requests count as 0% (one failed request out of two is not an outage). */
      minRequests: z.int().min(1).default(20),
    })
    .prefault({}),
  lambda: z
    .strictObject({
      ...evaluation(300, 1, 1),
      errors: z.int().min(1).default(1),
      throttles: z.int().min(1).default(1),
    })
    .prefault({}),
  stateMachines: z
    /** `failures`: the threshold of each of the failed, timed-out and aborted execution alarms. */
    .strictObject({ ...evaluation(300, 1, 1), failures: z.int().min(1).default(1) })
    .prefault({}),
  dlq: z.strictObject({ ...evaluation(300, 1, 1), depth: z.int().min(1).default(1) }).prefault({}),
});

export type MonitoringOptionsInput = z.input<typeof monitoringOptionsSchema>;
export type MonitoringOptions = z.output<typeof monitoringOptionsSchema>;

const resourceId = z.string().regex(/^[a-z][a-z0-9-]{0,47}$/, 'lower-case letters, digits and dashes');
const severity = z.enum(['warn', 'page']).default('warn');
/** Names may be CDK tokens: any non-empty string. */
const resourceName = z.string().min(1);

const monitoredResourcesSchema = z.strictObject({
  /** The REST API's name and stage (the `ApiName` and `Stage` dimensions of AWS/ApiGateway). */
  api: z.strictObject({ name: resourceName, stage: resourceName }).optional(),
  functions: z.array(z.strictObject({ id: resourceId, name: resourceName, severity })).default([]),
  stateMachines: z.array(z.strictObject({ id: resourceId, arn: resourceName, severity })).default([]),
  /** Dead-letter queues: any message in one is work that was given up on. */
  queues: z.array(z.strictObject({ id: resourceId, name: resourceName, severity })).default([]),
});

export type MonitoredResourcesInput = z.input<typeof monitoredResourcesSchema>;
export type MonitoredResources = z.output<typeof monitoredResourcesSchema>;

export interface OptionIssue {
  /** Dotted path of the offending key, e.g. `drift.featurePsiPage`. */
  readonly key: string;
  readonly message: string;
}

export class MonitoringOptionsError extends RangeError {
  override readonly name = 'MonitoringOptionsError';

  constructor(
    what: string,
    readonly issues: readonly OptionIssue[],
  ) {
    super(`invalid ${what}: ${issues.map((i) => `${i.key}: ${i.message}`).join('; ')}`);
  }
}

/** The variable holding monitoring options as JSON for the drift job and the local alarms. */
export const MONITORING_OPTIONS_ENV = 'KEEL_ALARM_OPTIONS';

/** The options of {@link MONITORING_OPTIONS_ENV} (`{}` when unset), validated. */
export function monitoringOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): MonitoringOptionsInput {
  const raw = optionalEnv(MONITORING_OPTIONS_ENV, '{}', env);
  let parsed: MonitoringOptionsInput;
  try {
    parsed = JSON.parse(raw) as MonitoringOptionsInput;
  } catch (error) {
    throw new ConfigError(`${MONITORING_OPTIONS_ENV} must be JSON: ${(error as Error).message}`);
  }
  try {
    resolveMonitoringOptions(parsed);
  } catch (error) {
    if (error instanceof MonitoringOptionsError) {
      throw new ConfigError(`${MONITORING_OPTIONS_ENV}: ${error.message}`);
    }
    throw error;
  }
  return parsed;
}

export function resolveMonitoringOptions(input: MonitoringOptionsInput = {}): MonitoringOptions {
  const options = parse(monitoringOptionsSchema, input, 'monitoring options');
  const issues: OptionIssue[] = [];
  for (const group of ['drift', 'latency', 'serverErrors', 'lambda', 'stateMachines', 'dlq'] as const) {
    const { periodSeconds: period, evaluationPeriods, datapointsToAlarm } = options[group];
    if (datapointsToAlarm > evaluationPeriods) {
      issues.push({
        key: `${group}.datapointsToAlarm`,
        message: `must be at most ${group}.evaluationPeriods (${evaluationPeriods}), got ${datapointsToAlarm}`,
      });
    }
    if (period * evaluationPeriods > 86_400) {
      issues.push({
        key: `${group}.evaluationPeriods`,
        message: `periodSeconds × evaluationPeriods must be at most one day, got ${period * evaluationPeriods} s`,
      });
    }
  }
  if (options.drift.featurePsiPage < options.drift.featurePsiWarn) {
    issues.push({
      key: 'drift.featurePsiPage',
      message: `must be at least drift.featurePsiWarn (${options.drift.featurePsiWarn}), got ${options.drift.featurePsiPage}`,
    });
  }
  if (issues.length > 0) throw new MonitoringOptionsError('monitoring options', issues);
  return options;
}

function resolveResources(input: MonitoredResourcesInput): MonitoredResources {
  const resources = parse(monitoredResourcesSchema, input, 'monitored resources');
  const issues: OptionIssue[] = [];
  for (const kind of ['functions', 'stateMachines', 'queues'] as const) {
    const seen = new Set<string>();
    resources[kind].forEach(({ id }, index) => {
      if (seen.has(id)) issues.push({ key: `${kind}.${index}.id`, message: `"${id}" is listed twice` });
      seen.add(id);
    });
  }
  if (issues.length > 0) throw new MonitoringOptionsError('monitored resources', issues);
  return resources;
}

function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const keyOf = (path: readonly PropertyKey[]) => (path.length > 0 ? path.join('.') : '(root)');
  throw new MonitoringOptionsError(
    what,
    result.error.issues.flatMap((issue) =>
      // A typo (`featurePsi`) is named itself, not only the object it sits in.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ key: keyOf([...issue.path, key]), message: 'unknown option' }))
        : [{ key: keyOf(issue.path), message: issue.message }],
    ),
  );
}

// ---------------------------------------------------------------------------------------------------
// Definitions

const stat = (
  namespace: string,
  metricName: string,
  dimensions: Record<string, string>,
  statistic: Statistic,
): MetricStat => ({ namespace, metricName, dimensions, statistic });

const single = (metric: MetricStat): AlarmMetric => ({ kind: 'metric', metric });
const ref = (id: string): Expression => ({ op: 'metric', id });
const fill0 = (id: string): Expression => ({ op: 'fill', id, value: 0 });
const num = (value: number): Expression => ({ op: 'const', value });
const bin = (op: '+' | '*' | '/' | '>=', left: Expression, right: Expression): Expression => ({
  op,
  left,
  right,
});

type Evaluation = Pick<AlarmDefinition, 'periodSeconds' | 'evaluationPeriods' | 'datapointsToAlarm'>;
const windowOf = (group: Evaluation): Evaluation => ({
  periodSeconds: group.periodSeconds,
  evaluationPeriods: group.evaluationPeriods,
  datapointsToAlarm: group.datapointsToAlarm,
});

const DRIFT_RUNBOOK =
  'Run `keel drift check --report drift.html` (or open the drift job log) to see which features moved and how. ' +
  'A broken upstream feed (unit change, new plan or region, nulls) is fixed at the source; do not retrain on it. ' +
  'A real population change is answered by `keel train`, compared with the champion, then promoted.';

/** Drift alarms: the drift job publishes one datapoint per run, so a missing period keeps the state. */
function driftAlarms(options: MonitoringOptions): AlarmDefinition[] {
  const { drift } = options;
  const dims = serviceDimensions(options.service);
  const common = {
    source: 'emf',
    ...windowOf(drift),
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'ignore',
    runbook: DRIFT_RUNBOOK,
  } as const;
  const maxPsi = single(stat(KEEL_NAMESPACE, DRIFT_METRICS.maxFeaturePsi, dims, 'Maximum'));
  return [
    {
      ...common,
      id: ALARM_IDS.dataDriftWarn,
      severity: 'warn',
      metric: maxPsi,
      threshold: drift.featurePsiWarn,
      description: `Data drift: a feature's PSI against the model's training baseline reached ${drift.featurePsiWarn}.`,
    },
    {
      ...common,
      id: ALARM_IDS.dataDriftPage,
      severity: 'page',
      metric: maxPsi,
      threshold: drift.featurePsiPage,
      description: `Data drift: a feature's PSI against the model's training baseline reached ${drift.featurePsiPage}; predictions for these inputs are extrapolations.`,
    },
    {
      ...common,
      id: ALARM_IDS.scoreDrift,
      severity: 'page',
      metric: single(stat(KEEL_NAMESPACE, DRIFT_METRICS.scorePsi, dims, 'Maximum')),
      threshold: drift.scorePsi,
      description: `Prediction drift: the PSI of the model's scores against its held-out scores reached ${drift.scorePsi}.`,
    },
    {
      ...common,
      id: ALARM_IDS.positiveRateDrift,
      severity: 'page',
      // The delta is signed; the largest move either way within the period is what counts.
      metric: {
        kind: 'math',
        label: '|PositiveRateDelta| (points)',
        expression: {
          op: 'max',
          args: [
            { op: 'abs', of: ref('high') },
            { op: 'abs', of: ref('low') },
          ],
        },
        metrics: {
          high: stat(KEEL_NAMESPACE, DRIFT_METRICS.positiveRateDelta, dims, 'Maximum'),
          low: stat(KEEL_NAMESPACE, DRIFT_METRICS.positiveRateDelta, dims, 'Minimum'),
        },
      },
      threshold: drift.positiveRateDeltaPoints,
      description: `Prediction drift: the share of positive predictions moved ${drift.positiveRateDeltaPoints} points or more from the model's held-out rate.`,
    },
  ];
}

const LATENCY_RUNBOOK =
  'Check the predict function: cold starts and concurrency (AWS/Lambda Duration, ConcurrentExecutions), ' +
  'DynamoDB read latency of the online store, a model version just promoted (`keel models history`). ' +
  'Roll back with `keel models rollback --reason …` if a new version is slower.';

function apiAlarms(options: MonitoringOptions, resources: MonitoredResources): AlarmDefinition[] {
  const { latency, serverErrors } = options;
  const dims = serviceDimensions(options.service);
  const latencyCommon = {
    severity: 'page',
    ...windowOf(latency),
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    threshold: latency.p99Ms,
    // No requests, no latency problem.
    treatMissingData: 'notBreaching',
    runbook: LATENCY_RUNBOOK,
  } as const;
  const alarms: AlarmDefinition[] = [
    {
      ...latencyCommon,
      id: ALARM_IDS.predictLatency,
      source: 'emf',
      metric: single(stat(KEEL_NAMESPACE, PREDICT_METRICS.latency, dims, 'p99')),
      description: `Predict handler latency p99 at or above ${latency.p99Ms} ms in ${latency.datapointsToAlarm} of ${latency.evaluationPeriods} periods.`,
    },
  ];
  if (resources.api) {
    alarms.push({
      ...latencyCommon,
      id: ALARM_IDS.apiLatency,
      source: 'aws',
      metric: single(
        stat('AWS/ApiGateway', 'Latency', { ApiName: resources.api.name, Stage: resources.api.stage }, 'p99'),
      ),
      description: `API Gateway latency p99 (what clients see) at or above ${latency.p99Ms} ms in ${latency.datapointsToAlarm} of ${latency.evaluationPeriods} periods.`,
    });
  }
  const total = bin('+', bin('+', fill0('ok'), fill0('client')), fill0('server'));
  alarms.push({
    id: ALARM_IDS.predictServerErrors,
    severity: 'page',
    source: 'emf',
    metric: {
      kind: 'math',
      label: '5xx share of responses (%)',
      expression: {
        op: 'if',
        condition: bin('>=', total, num(serverErrors.minRequests)),
        whenTrue: bin('/', bin('*', num(100), fill0('server')), total),
        whenFalse: num(0),
      },
      metrics: {
        ok: stat(KEEL_NAMESPACE, PREDICT_METRICS.http2xx, dims, 'Sum'),
        client: stat(KEEL_NAMESPACE, PREDICT_METRICS.http4xx, dims, 'Sum'),
        server: stat(KEEL_NAMESPACE, PREDICT_METRICS.http5xx, dims, 'Sum'),
      },
    },
    ...windowOf(serverErrors),
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    threshold: serverErrors.ratePercent,
    treatMissingData: 'notBreaching',
    description: `Predict API: ${serverErrors.ratePercent}% or more of responses were 5xx (periods with at least ${serverErrors.minRequests} requests) in ${serverErrors.datapointsToAlarm} of ${serverErrors.evaluationPeriods} periods.`,
    runbook:
      'Read the predict function log for "request failed": Unavailable means DynamoDB or S3 did not answer ' +
      '(check their health and throttling); Internal is a bug: roll back the last deployment or model version.',
  });
  return alarms;
}

function resourceAlarms(options: MonitoringOptions, resources: MonitoredResources): AlarmDefinition[] {
  const { lambda, stateMachines, dlq } = options;
  const common = {
    source: 'aws',
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    // These metrics have no datapoint while nothing runs: silence is health.
    treatMissingData: 'notBreaching',
  } as const;
  return [
    ...resources.functions.flatMap((fn): AlarmDefinition[] => [
      {
        ...common,
        id: `${RESOURCE_ALARM_PREFIX.lambdaErrors}${fn.id}`,
        severity: fn.severity,
        metric: single(stat('AWS/Lambda', 'Errors', { FunctionName: fn.name }, 'Sum')),
        ...windowOf(lambda),
        threshold: lambda.errors,
        description: `Lambda function ${fn.id}: ${lambda.errors} or more invocation errors (crashes, timeouts) in ${lambda.periodSeconds} s.`,
        runbook: `Read the ${fn.id} function's log group for the failed invocations' errors and request ids.`,
      },
      {
        ...common,
        id: `${RESOURCE_ALARM_PREFIX.lambdaThrottles}${fn.id}`,
        severity: fn.severity,
        metric: single(stat('AWS/Lambda', 'Throttles', { FunctionName: fn.name }, 'Sum')),
        ...windowOf(lambda),
        threshold: lambda.throttles,
        description: `Lambda function ${fn.id}: ${lambda.throttles} or more throttled invocations in ${lambda.periodSeconds} s.`,
        runbook: `Compare ${fn.id}'s concurrency with its reserved concurrency and the account limit; raise one or shed load.`,
      },
    ]),
    // A run that times out or is stopped never reaches its failure path (neither can be caught), so
    // it is not in ExecutionsFailed: each outcome has its own alarm.
    ...resources.stateMachines.flatMap((sm): AlarmDefinition[] => {
      const executions = (
        prefix: string,
        metricName: string,
        what: string,
        runbook: string,
      ): AlarmDefinition => ({
        ...common,
        id: `${prefix}${sm.id}`,
        severity: sm.severity,
        metric: single(stat('AWS/States', metricName, { StateMachineArn: sm.arn }, 'Sum')),
        ...windowOf(stateMachines),
        threshold: stateMachines.failures,
        description: `State machine ${sm.id}: ${stateMachines.failures} or more ${what} executions in ${stateMachines.periodSeconds} s.`,
        runbook,
      });
      return [
        executions(
          RESOURCE_ALARM_PREFIX.stateMachineFailures,
          'ExecutionsFailed',
          'failed',
          `Open the failed execution of ${sm.id} in the Step Functions console: the failing state's input and error say what to fix; re-run after the fix.`,
        ),
        executions(
          RESOURCE_ALARM_PREFIX.stateMachineTimeouts,
          'ExecutionsTimedOut',
          'timed-out',
          `An execution of ${sm.id} ran past the state machine's TimeoutSeconds and was ended without notifying: open it in the Step Functions console to see which state it was in (a stuck task, or input far larger than planned), fix that, re-run.`,
        ),
        executions(
          RESOURCE_ALARM_PREFIX.stateMachineAborts,
          'ExecutionsAborted',
          'aborted',
          `Someone or something stopped an execution of ${sm.id} (StopExecution; CloudTrail names who): confirm it was meant, and re-run what it left undone.`,
        ),
      ];
    }),
    ...resources.queues.map(
      (queue): AlarmDefinition => ({
        ...common,
        id: `${RESOURCE_ALARM_PREFIX.dlqDepth}${queue.id}`,
        severity: queue.severity,
        metric: single(
          stat('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: queue.name }, 'Maximum'),
        ),
        ...windowOf(dlq),
        threshold: dlq.depth,
        description: `Dead-letter queue ${queue.id} holds ${dlq.depth} or more messages: work that was given up on.`,
        runbook: `Inspect the messages in ${queue.id} (their error attributes), fix the cause, then redrive them to the source.`,
      }),
    ),
  ];
}

/** Every alarm and the paging composite, for the given options and the resources a deployment has. */
export function alarmDefinitions(
  options: MonitoringOptionsInput = {},
  resources: MonitoredResourcesInput = {},
): AlarmCatalog {
  const resolved = resolveMonitoringOptions(options);
  const monitored = resolveResources(resources);
  const alarms = [
    ...driftAlarms(resolved),
    ...apiAlarms(resolved, monitored),
    ...resourceAlarms(resolved, monitored),
  ];
  return {
    options: resolved,
    alarms,
    page: {
      id: ALARM_IDS.page,
      severity: 'page',
      anyOf: alarms.filter((a) => a.severity === 'page').map((a) => a.id),
      description: 'Keel needs on-call: at least one paging alarm is in ALARM.',
      runbook: 'Find the child alarm in ALARM and follow its runbook.',
    },
  };
}

/**
 * The thresholds computeDrift applies, read from the drift alarm definitions, so a report's `page`
 * is exactly what the alarm on its published metric will call ALARM.
 */
export function driftThresholds(options: MonitoringOptionsInput = {}): DriftThresholds {
  const resolved = resolveMonitoringOptions(options);
  const byId = new Map(driftAlarms(resolved).map((alarm) => [alarm.id, alarm]));
  const get = (id: string) => byId.get(id)!;
  const score = get(ALARM_IDS.scoreDrift);
  const rate = get(ALARM_IDS.positiveRateDrift);
  return {
    featurePsi: {
      warn: get(ALARM_IDS.dataDriftWarn).threshold,
      page: get(ALARM_IDS.dataDriftPage).threshold,
    },
    scorePsi: { threshold: score.threshold, severity: score.severity },
    positiveRateDeltaPoints: { threshold: rate.threshold, severity: rate.severity },
    minRows: resolved.drift.minRows,
  };
}

/** The CloudWatch alarm name of a definition in a deployment stage. */
export function alarmName(stage: string, id: string): string {
  assertValidStage(stage);
  return `keel-${stage}-${id}`;
}

/** CloudWatch's AlarmDescription (at most 1024 characters): what is wrong, then what to do. */
export function alarmDescription(definition: AlarmDefinition | CompositeAlarmDefinition): string {
  const text = `[${definition.severity}] ${definition.description}\nRunbook: ${definition.runbook}`;
  return text.length <= 1024 ? text : `${text.slice(0, 1023)}…`;
}

/** The metric-math text of an expression, e.g. `IF(((FILL(ok, 0) + …) >= 20), …, 0)`. */
export function renderExpression(expression: Expression): string {
  switch (expression.op) {
    case 'metric':
      return expression.id;
    case 'const':
      return String(expression.value);
    case 'abs':
      return `ABS(${renderExpression(expression.of)})`;
    case 'max':
      return `MAX([${expression.args.map(renderExpression).join(', ')}])`;
    case 'fill':
      return `FILL(${expression.id}, ${expression.value})`;
    case 'if':
      return `IF(${renderExpression(expression.condition)}, ${renderExpression(expression.whenTrue)}, ${renderExpression(expression.whenFalse)})`;
    default:
      return `(${renderExpression(expression.left)} ${expression.op} ${renderExpression(expression.right)})`;
  }
}

/** A composite's rule text, alarms referred to by their CloudWatch names. */
export function renderAlarmRule(composite: CompositeAlarmDefinition, nameOf: (id: string) => string): string {
  return composite.anyOf.map((id) => `ALARM("${nameOf(id)}")`).join(' OR ');
}
