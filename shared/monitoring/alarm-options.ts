import { z } from 'zod';
import { KEEL_ENV, optionalEnv } from '#shared/env.ts';
import { ConfigError } from '#shared/errors.ts';
import { DEFAULT_SERVICE } from './metrics.ts';

/**
 * The options of Keel's alarms (thresholds, periods, the monitored service) and the resources a
 * deployment asks alarms for, as zod schemas: validated at synth and locally alike, each error naming
 * its key. The drift job reads its thresholds from the same options (shared/drift/thresholds.ts).
 */

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
  /** The raw files the ETL reads: a changed header, and category values the model never saw. */
  etl: z
    .strictObject({
      ...evaluation(3600, 1, 1),
      /** Share of a run's rows with an unseen value of one field (a plan or region launched upstream). */
      unseenCategoryShare: z.number().gt(0).max(1).default(0.01),
    })
    .prefault({}),
  /**
   * Ground truth (the daily quality job, shared/quality/job.ts): how its window is judged and when its
   * alarms fire. The job publishes once a day, so a period without a datapoint keeps the state.
   */
  quality: z
    .strictObject({
      ...evaluation(3600, 1, 1),
      /** Days of predictions the job judges, ending when it runs. */
      windowDays: z.int().min(1).max(400).default(30),
      /** An outcome counts for a prediction when observed within this many days after it. */
      labelWindowDays: z.int().min(1).max(400).default(30),
      /** Days per point of the quality-over-time series. */
      bucketDays: z.int().min(1).max(400).default(1),
      /** Matched predictions a version needs before its realized AUC is compared with its held-out AUC. */
      minMatched: z.int().min(1).default(200),
      /** Pages when a version's realized AUC is this far below its held-out AUC. */
      aucDrop: z.number().gt(0).max(1).default(0.05),
      /** Warns when fewer batch/real-time pairs decide alike, in percent. */
      minConsistencyPercent: percent().default(99),
      /** Warns when more served vectors differ from their offline features, in percent. */
      maxSkewPercent: percent().default(1),
      /** Served vectors the skew check recomputes per run. */
      skewSample: z.int().min(1).max(100_000).default(1000),
    })
    .prefault({}),
  /**
   * The guardrails of a rollout: the challenger against the champion on the same period. Short periods
   * (2 of 3 minutes by default) so a bad challenger is ended within minutes; a period with too few
   * requests counts as no difference, so a quiet minute never ends a rollout.
   */
  rollout: z
    .strictObject({
      ...evaluation(60, 3, 2),
      /** Periods with fewer challenger requests count as 0% 5xx (as serverErrors.minRequests). */
      minRequests: z.int().min(1).default(20),
      serverErrorRatePercent: percent().default(5),
      p99Ms: positive().default(1000),
      /**
       * Scored requests each variant needs in a period before they are compared. With 500 each, two
       * equal models answering different customers (a canary) at a 20% positive rate differ by 10
       * points less than once in 10,000 periods, and an alarm needs 2 such periods of 3.
       */
      minSamples: z.int().min(1).default(500),
      /** |challenger − champion| positive rate, in percentage points. */
      positiveRateDeltaPoints: percent().default(10),
      /** |challenger − champion| mean probability, in points (×100). */
      scoreShiftPoints: percent().default(5),
      /** Shadow: the share of requests on which the challenger decides as the champion does. */
      minAgreementPercent: percent().default(90),
    })
    .prefault({}),
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

/** The options of `KEEL_ENV.alarmOptions` (`{}` when unset), validated. */
export function monitoringOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): MonitoringOptionsInput {
  const raw = optionalEnv(KEEL_ENV.alarmOptions, '{}', env);
  let parsed: MonitoringOptionsInput;
  try {
    parsed = JSON.parse(raw) as MonitoringOptionsInput;
  } catch (error) {
    throw new ConfigError(`${KEEL_ENV.alarmOptions} must be JSON: ${(error as Error).message}`);
  }
  try {
    resolveMonitoringOptions(parsed);
  } catch (error) {
    if (error instanceof MonitoringOptionsError) {
      throw new ConfigError(`${KEEL_ENV.alarmOptions}: ${error.message}`);
    }
    throw error;
  }
  return parsed;
}

export function resolveMonitoringOptions(input: MonitoringOptionsInput = {}): MonitoringOptions {
  const options = parse(monitoringOptionsSchema, input, 'monitoring options');
  const issues: OptionIssue[] = [];
  for (const group of [
    'drift',
    'latency',
    'serverErrors',
    'lambda',
    'stateMachines',
    'dlq',
    'rollout',
  ] as const) {
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

/** The resources of a deployment that get alarms, validated (ids unique per kind). */
export function resolveResources(input: MonitoredResourcesInput): MonitoredResources {
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
