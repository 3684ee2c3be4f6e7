import type { PipelineName } from './definitions.ts';

/**
 * The schedules, declared once: CDK turns each into an EventBridge rule that starts the target, and
 * the local scheduler of `keel up` fires the same expressions. Expressions use EventBridge syntax.
 */
/** The monitoring jobs: one Lambda each, not a state machine. */
export const MONITORING_JOBS = ['drift', 'quality'] as const;
export type MonitoringJobName = (typeof MONITORING_JOBS)[number];

export const isMonitoringJob = (target: string): target is MonitoringJobName =>
  (MONITORING_JOBS as readonly string[]).includes(target);

export interface ScheduleDefinition {
  readonly id: string;
  readonly description: string;
  readonly expression: string;
  /** A pipeline (state machine), or a monitoring job (one Lambda). */
  readonly target: PipelineName | MonitoringJobName;
  /** Execution input. */
  readonly input: Readonly<Record<string, unknown>>;
  /**
   * Whether the schedule fires (a stage's config may switch it off).
   *
   * @default - true
   */
  readonly enabled?: boolean;
}

export const SCHEDULES: readonly ScheduleDefinition[] = [
  {
    id: 'BatchScoring',
    description: 'score every customer in the online store (daily)',
    expression: 'cron(0 2 * * ? *)',
    target: 'batch',
    input: {},
  },
  {
    id: 'Drift',
    description: 'compute data and prediction drift of the last window (hourly)',
    expression: 'rate(1 hour)',
    target: 'drift',
    input: {},
  },
  {
    id: 'Quality',
    description: 'judge the served versions against the outcomes that arrived (daily)',
    expression: 'cron(0 5 * * ? *)',
    target: 'quality',
    input: {},
  },
  {
    id: 'Retrain',
    description: 'retrain on the newest offline features; promote only if better (weekly)',
    expression: 'cron(0 3 ? * SUN *)',
    target: 'retrain',
    input: { promotion: 'if-better', margin: 0.002 },
  },
];

export class ScheduleExpressionError extends Error {
  constructor(expression: string, problem: string) {
    super(`schedule "${expression}": ${problem}`);
    this.name = 'ScheduleExpressionError';
  }
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** The values a cron field allows, or undefined for `*` / `?` (any). */
function cronField(
  expression: string,
  field: string,
  min: number,
  max: number,
  names: string[] = [],
  offset = 0,
) {
  if (field === '*' || field === '?') return undefined;
  const value = (token: string) => {
    const named = names.indexOf(token.toUpperCase());
    const n = named >= 0 ? named + offset : Number(token);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ScheduleExpressionError(
        expression,
        `"${token}" is outside ${min}-${max} (L, W and # are not supported)`,
      );
    }
    return n;
  };
  const allowed = new Set<number>();
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1)
      throw new ScheduleExpressionError(expression, `bad step in "${part}"`);
    const [from, to] =
      range === '*'
        ? [min, max]
        : range!.includes('-')
          ? range!.split('-').map(value)
          : [value(range!), stepText ? max : value(range!)];
    for (let n = from!; n <= to!; n += step) allowed.add(n);
  }
  return allowed;
}

/**
 * The first time strictly after `after` at which the expression fires (UTC, minute resolution):
 * `rate(N unit)` counts from `anchor`, `cron(min hour day-of-month month day-of-week year)` as in
 * EventBridge (day-of-week 1-7 = SUN-SAT).
 */
export function nextFireTime(expression: string, after: Date, anchor: Date = after): Date {
  const rate = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression);
  if (rate) {
    const period = Number(rate[1]) * RATE_UNITS[rate[2]!]!;
    if (period <= 0) throw new ScheduleExpressionError(expression, 'the rate must be positive');
    const elapsed = after.getTime() - anchor.getTime();
    return new Date(anchor.getTime() + (Math.floor(elapsed / period) + 1) * period);
  }
  const cron = /^cron\((.+)\)$/.exec(expression);
  const fields = cron?.[1]?.trim().split(/\s+/);
  if (fields?.length !== 6) {
    throw new ScheduleExpressionError(
      expression,
      'use rate(N minutes|hours|days) or cron(min hour dom month dow year)',
    );
  }
  const [minF, hourF, domF, monthF, dowF, yearF] = fields as [string, string, string, string, string, string];
  if (domF !== '?' && dowF !== '?') {
    throw new ScheduleExpressionError(expression, 'one of day-of-month and day-of-week must be ?');
  }
  const minutes = cronField(expression, minF, 0, 59);
  const hours = cronField(expression, hourF, 0, 23);
  const days = cronField(expression, domF, 1, 31);
  const months = cronField(expression, monthF, 1, 12, MONTHS, 1);
  const weekdays = cronField(expression, dowF, 1, 7, DAYS, 1);
  const years = cronField(expression, yearF, 1970, 2199);
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  for (let i = 0; i < 527_040 * 5; i++) {
    const ok =
      (!years || years.has(t.getUTCFullYear())) &&
      (!months || months.has(t.getUTCMonth() + 1)) &&
      (!days || days.has(t.getUTCDate())) &&
      (!weekdays || weekdays.has(t.getUTCDay() + 1)) &&
      (!hours || hours.has(t.getUTCHours())) &&
      (!minutes || minutes.has(t.getUTCMinutes()));
    if (ok) return t;
    t.setUTCMinutes(t.getUTCMinutes() + 1);
  }
  throw new ScheduleExpressionError(expression, 'never fires in the next five years');
}
