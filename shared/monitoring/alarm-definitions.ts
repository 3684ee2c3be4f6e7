import { CATEGORICAL_FIELDS, type CategoricalField } from '#shared/features/index.ts';
import type {
  AlarmCatalog,
  AlarmDefinition,
  AlarmMetric,
  Expression,
  MetricStat,
  Severity,
  Statistic,
} from './alarm-catalog.ts';
import {
  type MonitoredResources,
  type MonitoredResourcesInput,
  type MonitoringOptions,
  type MonitoringOptionsInput,
  resolveMonitoringOptions,
  resolveResources,
} from './alarm-options.ts';
import {
  DRIFT_METRICS,
  ETL_METRICS,
  FEATURE_DIMENSION,
  KEEL_NAMESPACE,
  PREDICT_METRICS,
  QUALITY_METRICS,
  ROLLOUT_METRICS,
  serviceDimensions,
  VARIANT_DIMENSION,
  type VariantDimension,
} from './metrics.ts';

/**
 * Keel's alarms, declared once: every definition and the paging composite, for the options and the
 * resources of a deployment. The monitoring stack and the local runtime both take them from
 * {@link alarmDefinitions}; the drift job reads its thresholds back from them (shared/drift/thresholds.ts).
 */

export const ALARM_IDS = {
  dataDriftWarn: 'data-drift-warn',
  dataDriftPage: 'data-drift-page',
  scoreDrift: 'prediction-drift-score-psi',
  positiveRateDrift: 'prediction-drift-positive-rate',
  apiLatency: 'api-latency-p99',
  predictLatency: 'predict-latency-p99',
  predictServerErrors: 'predict-5xx-rate',
  etlSchemaChange: 'etl-schema-change',
  qualityAucDrop: 'quality-auc-drop',
  predictionConsistency: 'prediction-consistency',
  featureSkew: 'training-serving-skew',
  page: 'page',
} as const;

/**
 * The rollout guardrails: alarms over the per-variant metrics a rollout emits (ROLLOUT_METRICS), each
 * marked `guardrail`. Their move to ALARM ends the running rollout (shared/rollout/decision.ts: `guard`,
 * and `decide` at the end of the bake).
 */
export const GUARDRAIL_ALARM_IDS = {
  serverErrors: 'rollout-challenger-5xx-rate',
  latency: 'rollout-challenger-latency-p99',
  positiveRate: 'rollout-positive-rate-delta',
  scoreShift: 'rollout-score-shift',
  agreement: 'rollout-shadow-agreement',
  refused: 'rollout-challenger-refused',
} as const;

export const ROLLOUT_GUARDRAIL_IDS: readonly string[] = Object.values(GUARDRAIL_ALARM_IDS);

/** Id of the alarm on one categorical field's unseen values: `etl-unseen-plan`, `etl-unseen-region`. */
export const unseenCategoryAlarmId = (field: CategoricalField) => `etl-unseen-${field}`;

/** Ids of the per-resource alarms: `lambda-errors-<function id>` and so on. */
export const RESOURCE_ALARM_PREFIX = {
  lambdaErrors: 'lambda-errors-',
  lambdaThrottles: 'lambda-throttles-',
  stateMachineFailures: 'state-machine-failures-',
  stateMachineTimeouts: 'state-machine-timeouts-',
  stateMachineAborts: 'state-machine-aborts-',
  dlqDepth: 'dlq-depth-',
} as const;

/**
 * Every dead-letter queue Keel's stacks create, by the id of its `dlq-depth-<id>` alarm, with that
 * alarm's severity. On-call's own pages: a message there is a notification on-call never received (an
 * alarm, a page, a pipeline's failure), so what it said is still unhandled.
 */
export const DEAD_LETTER_QUEUES = {
  schedules: 'warn',
  approvals: 'warn',
  drift: 'warn',
  quality: 'warn',
  'rollout-guard': 'warn',
  'retrain-on-drift': 'warn',
  'on-call': 'page',
} as const satisfies Record<string, Severity>;

export type DeadLetterQueueId = keyof typeof DEAD_LETTER_QUEUES;

/** The stack outputs of a dead-letter queue's URL and ARN, e.g. `OnCallDeadLetterQueueUrl`. */
export function deadLetterQueueOutputs(id: DeadLetterQueueId): { url: string; arn: string } {
  const name = id.replace(/(^|-)([a-z])/g, (_, _dash: string, letter: string) => letter.toUpperCase());
  return { url: `${name}DeadLetterQueueUrl`, arn: `${name}DeadLetterQueueArn` };
}

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
const bin = (op: '+' | '-' | '*' | '/' | '>=', left: Expression, right: Expression): Expression => ({
  op,
  left,
  right,
});

/** 100 × `part` / `total` in periods with at least `minimum` in total, else 0. */
const percentOf = (part: string, total: Expression, minimum: number): Expression => ({
  op: 'if',
  condition: bin('>=', total, num(minimum)),
  whenTrue: bin('/', bin('*', num(100), fill0(part)), total),
  whenFalse: num(0),
});

type Evaluation = Pick<AlarmDefinition, 'periodSeconds' | 'evaluationPeriods' | 'datapointsToAlarm'>;
const windowOf = (group: Evaluation): Evaluation => ({
  periodSeconds: group.periodSeconds,
  evaluationPeriods: group.evaluationPeriods,
  datapointsToAlarm: group.datapointsToAlarm,
});

const DRIFT_RUNBOOK =
  "The drift job's notice on this topic names the features that moved with their PSI, the window, the model version and the report; " +
  '`keel drift check --report drift.html` shows how they moved. ' +
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

/**
 * Data-quality alarms on the raw files: each ETL plan publishes whether the header matched and each
 * completed run the unseen category shares, so a missing period (no run) keeps the state.
 */
function etlAlarms(options: MonitoringOptions): AlarmDefinition[] {
  const { etl } = options;
  const dims = serviceDimensions(options.service);
  const common = {
    source: 'emf',
    ...windowOf(etl),
    treatMissingData: 'ignore',
    severity: 'warn',
  } as const;
  return [
    {
      ...common,
      id: ALARM_IDS.etlSchemaChange,
      metric: single(stat(KEEL_NAMESPACE, ETL_METRICS.schemaChanges, dims, 'Maximum')),
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      description:
        "Schema change: a raw file's header did not match its record (a column missing, renamed or unexpected); its run stopped before any row.",
      runbook:
        'The failed execution (and `keel etl run`) names the file, the columns and the likely rename. Fix the export upstream, or map the columns, then re-run; a good run clears this alarm.',
    },
    ...CATEGORICAL_FIELDS.map(
      (field): AlarmDefinition => ({
        ...common,
        id: unseenCategoryAlarmId(field),
        metric: single(
          stat(
            KEEL_NAMESPACE,
            ETL_METRICS.unseenCategoryShare,
            { ...dims, [FEATURE_DIMENSION]: field },
            'Maximum',
          ),
        ),
        comparisonOperator: 'GreaterThanThreshold',
        threshold: etl.unseenCategoryShare,
        description: `New ${field} values: more than ${etl.unseenCategoryShare * 100}% of an ETL run's rows have a ${field} the model never saw (encoded as none of the known ones).`,
        runbook: `The run's report (\`keel --json etl run\`, quality.unseenCategories.${field}) lists the values and their counts. A value launched upstream needs a retrain that knows it (add it to the feature definition); a misspelling is fixed at the source.`,
      }),
    ),
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
      expression: percentOf('server', total, serverErrors.minRequests),
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

const QUALITY_RUNBOOK =
  "The quality job's notice on this topic names the model version, its realized and held-out figures, the window and the report; " +
  '`keel quality check --report quality.html` shows them over time with the reliability curve. ';

/**
 * Ground-truth alarms over what the daily quality job publishes (one datapoint per run: a missing
 * period keeps the state).
 */
function qualityAlarms(options: MonitoringOptions): AlarmDefinition[] {
  const { quality } = options;
  const dims = serviceDimensions(options.service);
  const common = { source: 'emf', ...windowOf(quality), treatMissingData: 'ignore' } as const;
  const metric = (name: string, statistic: Statistic) => single(stat(KEEL_NAMESPACE, name, dims, statistic));
  return [
    {
      ...common,
      id: ALARM_IDS.qualityAucDrop,
      severity: 'page',
      metric: metric(QUALITY_METRICS.aucShortfall, 'Maximum'),
      comparisonOperator: 'GreaterThanThreshold',
      threshold: quality.aucDrop,
      description: `Model quality: a version's AUC on the outcomes that arrived is more than ${quality.aucDrop} below its held-out AUC (at least ${quality.minMatched} matched predictions).`,
      runbook:
        QUALITY_RUNBOOK +
        'With no data drift (the drift alarms quiet), the relation between features and churn changed (concept shift): ' +
        'retrain on recent labelled data (`keel train`), compare, promote; `keel models rollback` if a recent promotion caused it.',
    },
    {
      ...common,
      id: ALARM_IDS.predictionConsistency,
      severity: 'warn',
      metric: metric(QUALITY_METRICS.consistency, 'Minimum'),
      comparisonOperator: 'LessThanThreshold',
      threshold: quality.minConsistencyPercent,
      description: `Batch/real-time consistency: fewer than ${quality.minConsistencyPercent}% of the customers answered by both from the same stored record got the same decision.`,
      runbook:
        QUALITY_RUNBOOK +
        'Both paths share the feature module and the model file: a difference means a record changed without a new event_time (a write behind the ETL) or the paths ran different code; the skew check names the features.',
    },
    {
      ...common,
      id: ALARM_IDS.featureSkew,
      severity: 'warn',
      metric: metric(QUALITY_METRICS.skew, 'Maximum'),
      comparisonOperator: 'GreaterThanThreshold',
      threshold: quality.maxSkewPercent,
      description: `Training/serving skew: more than ${quality.maxSkewPercent}% of sampled served feature vectors differ from the offline features of the same customer and record.`,
      runbook:
        QUALITY_RUNBOOK +
        'The notice and report name the features that differ: find the writer that changes the online store outside the ETL, stop it, and re-run the ETL on the source file.',
    },
  ];
}

const ROLLOUT_RUNBOOK =
  'The rollout guard has ended the rollout (the champion answers every customer again) and paged, naming the challenger version and this alarm. ' +
  '`keel models rollout` shows the rollout and how it ended, `keel models history` the move; compare the two variants (the Variant dimension of the Keel metrics), fix the challenger, then start a new rollout. ' +
  'No page from the guard? Then the rollout may still run: end it with `keel models rollout abort`.';

/**
 * The guardrails of a rollout, over what the predict path emits per variant while one runs: no
 * rollout, no data, no alarm. The comparisons take both variants from the same period.
 */
function rolloutAlarms(options: MonitoringOptions): AlarmDefinition[] {
  const { rollout } = options;
  const of = (metricName: string, variant: VariantDimension, statistic: Statistic) =>
    stat(
      KEEL_NAMESPACE,
      metricName,
      { ...serviceDimensions(options.service), [VARIANT_DIMENSION]: variant },
      statistic,
    );
  const common = {
    severity: 'warn',
    source: 'emf',
    guardrail: true,
    ...windowOf(rollout),
    treatMissingData: 'notBreaching',
    runbook: ROLLOUT_RUNBOOK,
  } as const;
  const enough = (id: string) => bin('>=', fill0(id), num(rollout.minSamples));
  /** 100 × |challenger − champion| of a per-request average, 0 unless both variants have enough samples. */
  const difference = (metricName: string, label: string): AlarmMetric => ({
    kind: 'math',
    label,
    expression: {
      op: 'if',
      condition: bin('*', enough('nChallenger'), enough('nChampion')),
      whenTrue: bin('*', num(100), { op: 'abs', of: bin('-', ref('challenger'), ref('champion')) }),
      whenFalse: num(0),
    },
    metrics: {
      challenger: of(metricName, 'challenger', 'Average'),
      champion: of(metricName, 'champion', 'Average'),
      nChallenger: of(metricName, 'challenger', 'SampleCount'),
      nChampion: of(metricName, 'champion', 'SampleCount'),
    },
  });
  const window = `in ${rollout.datapointsToAlarm} of ${rollout.evaluationPeriods} periods of ${rollout.periodSeconds} s`;
  const compared = `(periods where each variant scored at least ${rollout.minSamples} requests)`;
  // A failed request may or may not be among the variant's requests: the larger count is the
  // requests when it is, and keeps the share within 100% (a challenger failing every request) when not.
  const assigned: Expression = { op: 'max', args: [fill0('requests'), fill0('errors')] };
  return [
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.serverErrors,
      metric: {
        kind: 'math',
        label: 'challenger 5xx share (%)',
        expression: percentOf('errors', assigned, rollout.minRequests),
        metrics: {
          requests: of(ROLLOUT_METRICS.requests, 'challenger', 'Sum'),
          errors: of(ROLLOUT_METRICS.serverErrors, 'challenger', 'Sum'),
        },
      },
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: rollout.serverErrorRatePercent,
      description: `Rollout guardrail: ${rollout.serverErrorRatePercent}% or more of the challenger's requests failed with a 5xx (periods with at least ${rollout.minRequests} of them) ${window}.`,
    },
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.latency,
      metric: single(of(ROLLOUT_METRICS.latency, 'challenger', 'p99')),
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: rollout.p99Ms,
      description: `Rollout guardrail: the challenger's latency p99 at or above ${rollout.p99Ms} ms ${window}.`,
    },
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.positiveRate,
      metric: difference(ROLLOUT_METRICS.positive, '|challenger − champion| positive rate (points)'),
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: rollout.positiveRateDeltaPoints,
      description: `Rollout guardrail: the challenger's positive rate is ${rollout.positiveRateDeltaPoints} points or more from the champion's ${compared} ${window}.`,
    },
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.scoreShift,
      metric: difference(ROLLOUT_METRICS.probability, '|challenger − champion| mean probability (points)'),
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: rollout.scoreShiftPoints,
      description: `Rollout guardrail: the challenger's mean probability is ${rollout.scoreShiftPoints} points or more from the champion's ${compared} ${window}.`,
    },
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.agreement,
      metric: {
        kind: 'math',
        label: 'shadow agreement with the champion (%)',
        expression: {
          op: 'if',
          condition: enough('n'),
          whenTrue: bin('*', num(100), ref('agreement')),
          whenFalse: num(100),
        },
        metrics: {
          agreement: of(ROLLOUT_METRICS.agreement, 'challenger', 'Average'),
          n: of(ROLLOUT_METRICS.agreement, 'challenger', 'SampleCount'),
        },
      },
      comparisonOperator: 'LessThanThreshold',
      threshold: rollout.minAgreementPercent,
      description: `Rollout guardrail (shadow): the challenger decided as the champion on less than ${rollout.minAgreementPercent}% of the requests (periods with at least ${rollout.minSamples} of them) ${window}.`,
    },
    {
      ...common,
      id: GUARDRAIL_ALARM_IDS.refused,
      metric: single(of(ROLLOUT_METRICS.refused, 'challenger', 'Sum')),
      // A refusal is no chance event: the first one ends the rollout.
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      description:
        "Rollout guardrail: a predict process refused to load the challenger (its artifact's sha256 or its feature fingerprint does not match the registry, or it does not load); the champion answers alone.",
      runbook:
        `${ROLLOUT_RUNBOOK} The predict function's log says "model challenger-refused" with the version and the error: ` +
        'a tampered or corrupt model.onnx, or a version trained on other features, is never served; register a good one.',
    },
  ];
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
    ...etlAlarms(resolved),
    ...apiAlarms(resolved, monitored),
    ...qualityAlarms(resolved),
    ...rolloutAlarms(resolved),
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
