import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { z } from 'zod';
import {
  CROSS_ACCOUNT_CALLER,
  CROSS_ACCOUNT_CALLER_RULE,
  crossAccountCallersProblem,
  lambdaOnlyKeysSet,
  lambdaOnlyProblem,
  logRetentionProblem,
  SAGEMAKER_ENDPOINT_NAME,
  SAGEMAKER_ENDPOINT_RULE,
} from '#shared/config/rules.ts';
import { KEEL_ENV } from '#shared/env.ts';
import {
  MonitoringOptionsError,
  type MonitoringOptionsInput,
  resolveMonitoringOptions,
} from '#shared/monitoring/alarm-options.ts';
import {
  nextFireTime,
  SCHEDULES,
  type ScheduleDefinition,
  ScheduleExpressionError,
} from '#shared/pipelines/schedules.ts';
import { DEFAULT_MODEL_NAME, modelNameSchema } from '#shared/registry/metadata.ts';
import {
  BAKE_SECONDS,
  CANARY_PERCENT,
  DEFAULT_BAKE,
  parseDuration,
  type RetrainRollout,
} from '#shared/registry/rollout.ts';
import { DEFAULT_MAX_TRAINING_ROWS, maxTrainingRowsSchema } from '#shared/training/limits.ts';
import {
  ECR_IMAGE,
  ECR_IMAGE_RULE,
  SAGEMAKER_INSTANCE_TYPE,
  SAGEMAKER_TRAINING_DEFAULTS,
  SAGEMAKER_TRAINING_LIMITS,
} from '#shared/training/sagemaker.ts';

/**
 * The configuration of one deployment stage, declared once: `bin/app.ts` turns it into the stacks'
 * props and `keel up` reads the `local` stage's schedules from it. A stage's file is
 * `config/<stage>.json`; every key is optional, an absent one takes the default below (an empty
 * object synthesizes the same templates as before stages had files). Objects are strict: an unknown
 * key or a bad value is refused with its dotted path, the value given and what is allowed.
 * docs/configuration.md documents every key.
 */

/** Config key of each schedule of `SCHEDULES` (by its id). */
export const SCHEDULE_KEYS = {
  batchScoring: 'BatchScoring',
  drift: 'Drift',
  quality: 'Quality',
  retrain: 'Retrain',
} as const;
export type ScheduleKey = keyof typeof SCHEDULE_KEYS;

const positive = (what = 'number') =>
  z
    .number({ error: `must be a positive ${what}` })
    .gt(0, `must be a positive ${what}`)
    .refine(Number.isFinite, `must be a positive ${what}`);
const positiveInt = () => z.int({ error: 'must be a whole number' }).min(1, 'must be at least 1');
/** A whole number from 1 to `max`, in `unit` when it has one. */
const wholeFromOne = (max: number, unit?: string) => {
  const range = `must be from 1 to ${max}${unit ? ` ${unit}` : ''}`;
  return z
    .int({ error: `must be a whole number${unit ? ` of ${unit}` : ''}` })
    .min(1, range)
    .max(max, range);
};
const days = (max?: number) => {
  const atLeastOne = positiveInt();
  return max === undefined ? atLeastOne : atLeastOne.max(max, `must be at most ${max} days`);
};
const share = () =>
  z
    .number({ error: 'must be a number from 0 to 1' })
    .min(0, 'must be from 0 to 1')
    .max(1, 'must be from 0 to 1');
const bool = () => z.boolean({ error: 'must be true or false' });

function declaredSchedule(key: ScheduleKey): ScheduleDefinition {
  const schedule = SCHEDULES.find((s) => s.id === SCHEDULE_KEYS[key]);
  if (!schedule) throw new Error(`SCHEDULES has no schedule ${SCHEDULE_KEYS[key]} for config key ${key}`);
  return schedule;
}

/** A schedule's expression (checked by the local scheduler's own parser) and switch; defaults from `SCHEDULES`. */
const scheduleSchema = (key: ScheduleKey) =>
  z
    .strictObject({
      expression: z
        .string({
          error: 'must be a string: rate(N minutes|hours|days) or cron(min hour dom month dow year)',
        })
        .superRefine((expression, ctx) => {
          try {
            nextFireTime(expression, new Date(0));
          } catch (error) {
            if (!(error instanceof ScheduleExpressionError)) throw error;
            ctx.addIssue({ code: 'custom', message: error.message });
          }
        })
        .default(declaredSchedule(key).expression),
      enabled: bool().default(true),
    })
    .prefault({});

/** A canary's share when `retrain.rollout` names the mode alone. */
export const DEFAULT_RETRAIN_CANARY_PERCENT = 10;

const bakeSeconds = z.string().transform((text, ctx) => {
  try {
    const seconds = parseDuration(text, 'bake');
    if (seconds >= BAKE_SECONDS.min && seconds <= BAKE_SECONDS.max) return seconds;
  } catch {
    // reported below
  }
  ctx.issues.push({
    code: 'custom',
    input: text,
    message: 'must be a duration from 1s to 30d: 90s, 30m, 1h, 7d or 1h30m',
  });
  return z.NEVER;
});

/** `retrain.rollout`: a mode alone (`"shadow"`), or a mode with its canary percent and bake period. */
const retrainRolloutSchema = z
  .preprocess(
    (value) => (typeof value === 'string' ? { mode: value } : value),
    z.strictObject({
      mode: z.enum(['promote', 'shadow', 'canary'], { error: 'must be promote, shadow or canary' }),
      percent: z
        .int({ error: 'must be a whole number of percent' })
        .min(CANARY_PERCENT.min, `must be from ${CANARY_PERCENT.min} to ${CANARY_PERCENT.max}`)
        .max(CANARY_PERCENT.max, `must be from ${CANARY_PERCENT.min} to ${CANARY_PERCENT.max}`)
        .optional(),
      bake: bakeSeconds.optional(),
    }),
  )
  .transform((value, ctx): RetrainRollout => {
    const { mode, percent, bake } = value;
    if (mode === 'promote') {
      if (percent !== undefined || bake !== undefined) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: 'promote has no percent or bake: use shadow or canary',
        });
      }
      return { mode };
    }
    if (mode === 'shadow' && percent !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: value,
        path: ['percent'],
        message: 'a shadow answers no customer: no percent',
      });
    }
    const seconds = bake ?? parseDuration(DEFAULT_BAKE[mode], 'bake');
    return mode === 'shadow'
      ? { mode, bakeSeconds: seconds }
      : { mode, percent: percent ?? DEFAULT_RETRAIN_CANARY_PERCENT, bakeSeconds: seconds };
  });

/** The retrain schedule's declared promotion margin. */
const DECLARED_MARGIN = z.number().parse(declaredSchedule('retrain').input.margin);

export const keelConfigSchema = z.strictObject({
  /** Registry name of the model served, retrained, scored and watched. */
  modelName: modelNameSchema.default(DEFAULT_MODEL_NAME),
  schedules: z
    .strictObject({
      batchScoring: scheduleSchema('batchScoring'),
      drift: scheduleSchema('drift'),
      quality: scheduleSchema('quality'),
      retrain: scheduleSchema('retrain'),
    })
    .prefault({}),
  retrain: z
    .strictObject({
      /** A scheduled retrain promotes only when its AUC beats the champion's by more than this. */
      promotionMargin: share().default(DECLARED_MARGIN),
      /** A scheduled retrain waits for a person (`keel --stage S models approve ID`) before promoting. */
      requireApproval: bool().default(false),
      /** The approval gate: who is asked, and how long the retrain waits for an answer. */
      approval: z
        .strictObject({
          /** Hours a retrain waits for an answer; then it ends as "approval expired", not promoted. */
          timeoutHours: z
            .int({ error: 'must be a whole number of hours' })
            .min(1, 'must be from 1 to 720 hours')
            .max(720, 'must be from 1 to 720 hours')
            .default(24),
          /** Approvers' email addresses, each subscribed to the stage's approvals topic. */
          emails: z.array(z.email('must be an email address, e.g. lead@example.com')).default([]),
          /** HTTPS endpoints (chat, ticketing) subscribed to the approvals topic. */
          webhookUrls: z
            .array(
              z.url({ protocol: /^https$/, error: 'must be an https:// URL (SNS delivers only to https)' }),
            )
            .default([]),
        })
        .prefault({}),
      /** Start a retrain when the data-drift page alarm fires. */
      onDrift: bool().default(false),
      /**
       * What a retrain does with a candidate it would promote: `promote` it (the default), or start a
       * `shadow` or `canary` rollout of it (`{"mode": "canary", "percent": 20, "bake": "1h"}`), which the
       * guardrails then decide (docs/rollout.md).
       */
      rollout: retrainRolloutSchema.prefault('promote'),
      /**
       * What trains the candidate: the `lambda` task (Keel's own trainer, in one function), or a `sagemaker`
       * training job with AWS's built-in XGBoost algorithm, for datasets beyond one Lambda (docs/configuration.md, "Retraining on SageMaker").
       */
      engine: z.enum(['lambda', 'sagemaker'], { error: 'must be lambda or sagemaker' }).default('lambda'),
      /** The SageMaker training job (`engine: "sagemaker"` only). */
      sagemaker: z
        .strictObject({
          /** The training instances' type. */
          instanceType: z
            .string({ error: 'must be a SageMaker instance type, e.g. ml.m5.xlarge' })
            .regex(SAGEMAKER_INSTANCE_TYPE, 'must be a SageMaker instance type, e.g. ml.m5.xlarge')
            .default(SAGEMAKER_TRAINING_DEFAULTS.instanceType),
          instanceCount: wholeFromOne(SAGEMAKER_TRAINING_LIMITS.instanceCount).default(
            SAGEMAKER_TRAINING_DEFAULTS.instanceCount,
          ),
          /** SageMaker stops the job after this long (its own limit is 28 days). */
          maxRuntimeHours: wholeFromOne(SAGEMAKER_TRAINING_LIMITS.maxRuntimeHours, 'hours').default(
            SAGEMAKER_TRAINING_DEFAULTS.maxRuntimeHours,
          ),
          /** Each instance's storage volume, which holds the training channels (File mode). */
          volumeSizeGb: wholeFromOne(SAGEMAKER_TRAINING_LIMITS.volumeSizeGb, 'GB').default(
            SAGEMAKER_TRAINING_DEFAULTS.volumeSizeGb,
          ),
          /**
           * The XGBoost 3.0-5 algorithm image; absent: AWS's built-in one of the stage's region, which
           * Keel knows for the regions of `XGBOOST_IMAGE_ACCOUNTS` only.
           */
          image: z
            .string({ error: `must be ${ECR_IMAGE_RULE}` })
            .regex(ECR_IMAGE, `must be ${ECR_IMAGE_RULE}`)
            .optional(),
        })
        .prefault({}),
      /** The most rows a retrain draws from the offline dataset; above it, a stratified sample. */
      maxTrainingRows: maxTrainingRowsSchema.default(DEFAULT_MAX_TRAINING_ROWS),
    })
    .prefault({}),
  capture: z
    .strictObject({
      /** Share of API predictions captured for the drift job (0 turns capture off). */
      apiSampleRate: share().default(1),
      /** Share of batch-scored rows captured for the drift job: at millions of customers, a small one is plenty. */
      batchSampleRate: share().default(1),
    })
    .prefault({}),
  etl: z
    .strictObject({
      /** The ETL fails when more than this share of rows is quarantined (execution input overrides it). */
      maxBadRowShare: share().optional(),
    })
    .prefault({}),
  /** `MonitoringOptionsInput` of shared/monitoring/alarm-options.ts (its `service` is the stack's); checked there. */
  alarms: z
    .custom<Omit<MonitoringOptionsInput, 'service'>>(
      (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
      'must be an object of alarm options',
    )
    .default({}),
  onCall: z
    .strictObject({
      email: z.email('must be an email address, e.g. oncall@example.com').optional(),
      webhookUrl: z
        .url({ protocol: /^https$/, error: 'must be an https:// URL (SNS delivers only to https)' })
        .optional(),
    })
    .prefault({}),
  api: z
    .strictObject({
      throttle: z
        .strictObject({
          rateLimit: positive().default(100),
          burstLimit: positiveInt().default(200),
        })
        .prefault({}),
      /** Removed: a usage-plan quota counts API keys, and Keel's IAM-signed callers send none. */
      quota: z
        .custom<never>(() => false, {
          error:
            'removed: API Gateway counts a usage-plan quota per API key, and callers sign with IAM and send none, so it limited nothing; api.throttle (stage-wide) and api.wafRateLimitPer5Minutes (per client IP) limit traffic: remove api.quota',
        })
        .optional(),
      /** WAF: requests per client IP in any 5-minute window (AWS allows 10 to 2,000,000,000). */
      wafRateLimitPer5Minutes: z
        .int({ error: 'must be a whole number' })
        .min(10, 'must be at least 10')
        .max(2_000_000_000, 'must be at most 2000000000')
        .default(3000),
      /**
       * Principals of other AWS accounts allowed to call the API (its resource policy); they sign with IAM
       * like same-account callers and need `execute-api:Invoke` in their own account too. Absent: none.
       */
      crossAccountCallers: z
        .array(
          z
            .string({ error: CROSS_ACCOUNT_CALLER_RULE })
            .regex(CROSS_ACCOUNT_CALLER, CROSS_ACCOUNT_CALLER_RULE),
          {
            error: 'must be a list of AWS account ids or IAM role or user ARNs',
          },
        )
        .min(1, 'must list at least one caller: remove the key for none')
        .superRefine((callers, ctx) => {
          const problem = crossAccountCallersProblem(callers);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
    })
    .prefault({}),
  inference: z
    .strictObject({
      /** What runs the predict handler behind the API. */
      compute: z.enum(['lambda', 'ecs']).default('lambda'),
      /** Where the model is evaluated: onnxruntime in the predict process, or a SageMaker endpoint. */
      model: z.enum(['onnx', 'sagemaker']).default('onnx'),
      sagemakerEndpoint: z
        .string()
        .regex(SAGEMAKER_ENDPOINT_NAME, `must be ${SAGEMAKER_ENDPOINT_RULE}`)
        .optional(),
      /** Lambda only: initialized execution environments behind a `live` alias. */
      provisionedConcurrency: positiveInt().optional(),
      /** Lambda only: memory of the predict function (default 1024). */
      memoryMb: z
        .int({ error: 'must be a whole number' })
        .min(128, 'must be from 128 to 10240')
        .max(10_240, 'must be from 128 to 10240')
        .optional(),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** Every Lambda, state machine and API access log group. */
      logDays: z
        .int({ error: 'must be a whole number of days' })
        .superRefine((d, ctx) => {
          const problem = logRetentionProblem(d);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .default(30),
      /** S3 server access logs of the data buckets. */
      accessLogDays: days().default(365),
      /** Overwritten or deleted model artifacts (non-current versions in the models bucket). */
      modelVersionDays: days().default(90),
      /** Captured predictions (`captures/` in the outputs bucket); absent: kept. */
      captureDays: days().optional(),
      /** Batch-scoring outputs (`predictions/` in the outputs bucket); absent: kept. */
      predictionDays: days().optional(),
      /** Messages in the dead-letter queues (SQS keeps them at most 14 days). */
      deadLetterDays: days(14).default(14),
      /** DynamoDB point-in-time recovery window (1 to 35 days); absent: AWS's 35. */
      backupDays: days(35).optional(),
    })
    .prefault({}),
  data: z
    .strictObject({
      /** What happens to buckets and tables when they leave the stack. */
      removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
      deletionProtection: bool().default(true),
    })
    .prefault({}),
});

export type KeelConfigInput = z.input<typeof keelConfigSchema>;
export type KeelConfig = z.output<typeof keelConfigSchema>;
/** What runs the predict handler behind the API. */
export type InferenceKind = KeelConfig['inference']['compute'];

/** Rules across keys, after each key is valid on its own. */
function crossFieldIssues(config: KeelConfig): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const { inference } = config;
  if (inference.model === 'sagemaker' && inference.sagemakerEndpoint === undefined) {
    issues.push({
      path: ['inference', 'sagemakerEndpoint'],
      message: 'is required when inference.model is "sagemaker": name the endpoint',
    });
  }
  if (inference.model === 'onnx' && inference.sagemakerEndpoint !== undefined) {
    issues.push({
      path: ['inference', 'sagemakerEndpoint'],
      message: 'only applies when inference.model is "sagemaker": set that, or remove the endpoint',
    });
  }
  const { provisionedConcurrency, memoryMb } = inference;
  for (const key of lambdaOnlyKeysSet(inference.compute, { provisionedConcurrency, memoryMb })) {
    issues.push({ path: ['inference', key], message: lambdaOnlyProblem('inference.compute') });
  }
  const { approval } = config.retrain;
  if (config.retrain.requireApproval && approval.emails.length + approval.webhookUrls.length === 0) {
    issues.push({
      path: ['retrain', 'approval', 'emails'],
      message:
        'retrain.requireApproval asks approvers, but none are listed: add their emails (or webhookUrls), or turn requireApproval off',
    });
  }
  if (config.data.removalPolicy === 'destroy' && config.data.deletionProtection) {
    issues.push({
      path: ['data', 'removalPolicy'],
      message: '"destroy" cannot delete protected tables: also set data.deletionProtection to false',
    });
  }
  if ('service' in config.alarms) {
    issues.push({ path: ['alarms', 'service'], message: 'unknown key (the stacks set the service)' });
  } else {
    try {
      resolveMonitoringOptions(config.alarms);
    } catch (error) {
      if (!(error instanceof MonitoringOptionsError)) throw error;
      for (const issue of error.issues) {
        issues.push({ path: ['alarms', ...issue.key.split('.')], message: issue.message });
      }
    }
  }
  return issues;
}

export class KeelConfigError extends Error {
  override readonly name = 'KeelConfigError';

  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.join('; ')}`);
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** The keys the strict object at `path` of the schema allows. */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = keelConfigSchema;
  for (const key of [...path, undefined]) {
    // Unwrap defaults, prefaults, optionals and catches down to the object.
    while ('unwrap' in schema && typeof schema.unwrap === 'function') schema = schema.unwrap() as z.ZodType;
    // A pipe's input side holds the object, unless it is a preprocessing step (then its output does).
    while (schema instanceof z.ZodPipe)
      schema = (schema.in instanceof z.ZodTransform ? schema.out : schema.in) as z.ZodType;
    if (!(schema instanceof z.ZodObject)) return [];
    if (key === undefined) return Object.keys(schema.shape);
    const next = schema.shape[key as string] as z.ZodType | undefined;
    if (!next) return [];
    schema = next;
  }
  return [];
}

/** The value given, unless absent or already quoted by the message. */
function given(message: string, value: unknown): string {
  if (value === undefined || /\bgot\b/.test(message)) return '';
  return ` (got ${JSON.stringify(value) ?? String(value)})`;
}
const dotted = (path: readonly PropertyKey[]): string => (path.length > 0 ? path.join('.') : '(root)');

/**
 * Parses one stage's configuration; throws {@link KeelConfigError} naming `source` and, for each
 * problem, the dotted key, what was given and what is allowed.
 */
export function parseKeelConfig(input: unknown, source: string): KeelConfig {
  const result = keelConfigSchema.safeParse(input);
  if (!result.success) {
    throw new KeelConfigError(
      source,
      result.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys'
          ? issue.keys.map(
              (key) =>
                `${dotted([...issue.path, key])}: unknown key (allowed here: ${allowedKeys(issue.path).join(', ')})`,
            )
          : [`${dotted(issue.path)}: ${issue.message}${given(issue.message, valueAt(input, issue.path))}`],
      ),
    );
  }
  const issues = crossFieldIssues(result.data);
  if (issues.length > 0) {
    throw new KeelConfigError(
      source,
      issues.map((i) => `${dotted(i.path)}: ${i.message}${given(i.message, valueAt(input, i.path))}`),
    );
  }
  return result.data;
}

/**
 * The environment variables through which the stage's handlers read its configuration: what the
 * stacks set on the functions in AWS, and what `keel up` sets on its own process for the local stage.
 */
export function stageVariables(config: KeelConfig): Record<string, string> {
  return {
    [KEEL_ENV.modelName]: config.modelName,
    [KEEL_ENV.alarmOptions]: JSON.stringify(config.alarms),
    ...(config.etl.maxBadRowShare === undefined
      ? {}
      : { [KEEL_ENV.etlMaxBadRowShare]: String(config.etl.maxBadRowShare) }),
  };
}

/**
 * The variable that names the local stage's configuration file instead of `config/local.json`
 * (relative to the repository, or absolute): `keel up` and the local synthesis read the same file.
 */
export const LOCAL_CONFIG_VARIABLE = 'KEEL_CONFIG';

/** The local stage's configuration file as named by {@link LOCAL_CONFIG_VARIABLE}, if it is set. */
export function localConfigFile(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  return env[LOCAL_CONFIG_VARIABLE] || undefined;
}

/** Where a stage's configuration is read from, unless a file is named. */
export function stageConfigPath(root: string, stage: string): string {
  return join(root, 'config', `${stage}.json`);
}

/**
 * Reads and parses a stage's configuration: `file` when given (relative to `root`), else
 * `config/<stage>.json` under `root`, which must exist (a typo in the stage must not deploy defaults).
 */
export function loadKeelConfig(options: { root: string; stage: string; file?: string }): KeelConfig {
  const path =
    options.file === undefined
      ? stageConfigPath(options.root, options.stage)
      : isAbsolute(options.file)
        ? options.file
        : join(options.root, options.file);
  // Named as the user would: relative inside the repository, absolute outside it.
  const inRoot = relative(options.root, path);
  const source = inRoot === '' || inRoot.startsWith('..') || isAbsolute(inRoot) ? path : inRoot;
  if (!existsSync(path)) {
    throw new KeelConfigError(source, [
      options.file === undefined
        ? `no configuration for stage "${options.stage}": create ${source} ({} takes every default) or name a file with -c config=FILE`
        : 'file not found',
    ]);
  }
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new KeelConfigError(source, [`not valid JSON (${(error as Error).message})`]);
  }
  return parseKeelConfig(input, source);
}

/**
 * `SCHEDULES` as the stage configures them: each expression and switch, and the retrain schedule's
 * promotion margin, approval gate and row cap in its execution input.
 */
export function configuredSchedules(config: KeelConfig): ScheduleDefinition[] {
  return (Object.keys(SCHEDULE_KEYS) as ScheduleKey[]).map((key) => {
    const declared = declaredSchedule(key);
    const { expression, enabled } = config.schedules[key];
    const input =
      key === 'retrain'
        ? {
            ...declared.input,
            margin: config.retrain.promotionMargin,
            // The train task's own default otherwise: the stacks of a default config stay those of none.
            ...(config.retrain.maxTrainingRows === DEFAULT_MAX_TRAINING_ROWS
              ? {}
              : { maxTrainingRows: config.retrain.maxTrainingRows }),
            ...(config.retrain.requireApproval ? { requireApproval: true } : {}),
            ...(config.retrain.rollout.mode === 'promote' ? {} : { rollout: config.retrain.rollout }),
          }
        : declared.input;
    return { ...declared, expression, enabled, input };
  });
}
