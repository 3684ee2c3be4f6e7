import type {
  AlarmDefinition,
  ComparisonOperator,
  CompositeAlarmDefinition,
  Expression,
  MetricStat,
  Statistic,
} from './alarm-catalog.ts';
import type { MetricSample } from './emf.ts';

/**
 * CloudWatch alarm evaluation as pure functions, so the local runtime evaluates the catalog's definitions
 * the way CloudWatch does: samples → one value per period (statistic, then metric math) → M out of N
 * with CloudWatch's treatment of missing data → state; composites over the states.
 */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';
/** One period's value; null when the period has no data. */
export type Datapoint = number | null;

/**
 * CloudWatch looks further back than N periods when some are missing (its "evaluation range") and
 * publishes no formula; its documented example retrieves 5 periods for N = 3, which is what this uses.
 */
export const EXTRA_EVALUATION_PERIODS = 2;

export function evaluationRange(definition: Pick<AlarmDefinition, 'evaluationPeriods'>): number {
  return definition.evaluationPeriods + EXTRA_EVALUATION_PERIODS;
}

/**
 * The values of the `periods` whole periods before `end` (epoch ms, exclusive; pass a period boundary
 * so the current, partial period is left out), oldest first. A sample belongs to a metric when
 * namespace, name and the complete dimension set match, as in CloudWatch.
 */
export function periodDatapoints(
  definition: Pick<AlarmDefinition, 'metric' | 'periodSeconds'>,
  samples: Iterable<MetricSample>,
  window: { readonly end: number; readonly periods: number },
): Datapoint[] {
  const periodMs = definition.periodSeconds * 1000;
  const start = window.end - window.periods * periodMs;
  const inputs: [string, MetricStat][] =
    definition.metric.kind === 'metric'
      ? [['', definition.metric.metric]]
      : Object.entries(definition.metric.metrics);
  const buckets = inputs.map(() => Array.from({ length: window.periods }, (): number[] => []));
  for (const sample of samples) {
    if (sample.timestamp < start || sample.timestamp >= window.end) continue;
    const period = Math.floor((sample.timestamp - start) / periodMs);
    inputs.forEach(([, metric], i) => {
      if (matches(metric, sample)) buckets[i]![period]!.push(sample.value);
    });
  }
  const series = inputs.map(([, metric], i) =>
    buckets[i]!.map((values) => (values.length === 0 ? null : statistic(values, metric.statistic))),
  );
  const { metric } = definition;
  if (metric.kind === 'metric') return series[0]!;
  return Array.from({ length: window.periods }, (_, period) => {
    const values = new Map(inputs.map(([id], i) => [id, series[i]![period]!]));
    const value = evaluateExpression(metric.expression, values);
    return value !== null && Number.isFinite(value) ? value : null;
  });
}

function matches(metric: MetricStat, sample: MetricSample): boolean {
  if (sample.metricName !== metric.metricName || sample.namespace !== metric.namespace) return false;
  const keys = Object.keys(metric.dimensions);
  return (
    keys.length === Object.keys(sample.dimensions).length &&
    keys.every((key) => sample.dimensions[key] === metric.dimensions[key])
  );
}

/** A statistic over one period's values; percentiles by nearest rank. */
export function statistic(values: readonly number[], name: Statistic): number {
  switch (name) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'Minimum':
      return Math.min(...values);
    case 'Maximum':
      return Math.max(...values);
    case 'SampleCount':
      return values.length;
    default: {
      const p = Number(name.slice(1));
      if (!(name.startsWith('p') && p > 0 && p <= 100)) throw new RangeError(`unknown statistic "${name}"`);
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
    }
  }
}

/** Metric math over one period: arithmetic with a missing operand is missing, as in CloudWatch. */
export function evaluateExpression(
  expression: Expression,
  values: ReadonlyMap<string, Datapoint>,
): Datapoint {
  const of = (e: Expression) => evaluateExpression(e, values);
  switch (expression.op) {
    case 'metric':
      return values.get(expression.id) ?? null;
    case 'const':
      return expression.value;
    case 'fill':
      return values.get(expression.id) ?? expression.value;
    case 'abs': {
      const v = of(expression.of);
      return v === null ? null : Math.abs(v);
    }
    case 'max': {
      const present = expression.args.map(of).filter((v): v is number => v !== null);
      return present.length === 0 ? null : Math.max(...present);
    }
    case 'if': {
      const condition = of(expression.condition);
      if (condition === null) return null;
      return condition !== 0 ? of(expression.whenTrue) : of(expression.whenFalse);
    }
    default: {
      const left = of(expression.left);
      const right = of(expression.right);
      if (left === null || right === null) return null;
      if (expression.op === '+') return left + right;
      if (expression.op === '-') return left - right;
      if (expression.op === '*') return left * right;
      if (expression.op === '/') return left / right;
      return left >= right ? 1 : 0;
    }
  }
}

export type AlarmCondition = Pick<
  AlarmDefinition,
  'evaluationPeriods' | 'datapointsToAlarm' | 'comparisonOperator' | 'threshold' | 'treatMissingData'
>;

/** Whether `value` is on the alarming side of `threshold`. */
export function breaches(value: number, operator: ComparisonOperator, threshold: number): boolean {
  switch (operator) {
    case 'GreaterThanOrEqualToThreshold':
      return value >= threshold;
    case 'GreaterThanThreshold':
      return value > threshold;
    case 'LessThanThreshold':
      return value < threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= threshold;
  }
}

/**
 * The state of an alarm given the datapoints of its evaluation range (oldest first; see
 * {@link evaluationRange}; a shorter array counts its older periods as missing), following CloudWatch's
 * documented rules:
 * - at least N real datapoints: the newest N decide, M breaching → ALARM, else OK (missing data ignored);
 * - none: `missing` → INSUFFICIENT_DATA, `ignore` → the previous state, `breaching` → ALARM,
 *   `notBreaching` → OK;
 * - some: every real datapoint counts, and the N − real missing ones count as treatMissingData says;
 *   with `missing` and `ignore` they count as nothing, except that CloudWatch's "premature alarm" rule
 *   applies: no non-breaching datapoint in the range and the oldest breaching one among the newest N
 *   at least M periods old → ALARM (`missing`) or the previous state (`ignore`).
 */
export function evaluateAlarm(
  condition: AlarmCondition,
  datapoints: readonly Datapoint[],
  previous: AlarmState = 'INSUFFICIENT_DATA',
): AlarmState {
  const n = condition.evaluationPeriods;
  const m = condition.datapointsToAlarm;
  const padding: Datapoint[] = Array.from({ length: Math.max(0, n - datapoints.length) }, () => null);
  const range = [...padding, ...datapoints];
  const breaching = (v: number) => breaches(v, condition.comparisonOperator, condition.threshold);
  const real = range.filter((v): v is number => v !== null);

  if (real.length >= n) return real.slice(-n).filter(breaching).length >= m ? 'ALARM' : 'OK';

  const treat = condition.treatMissingData;
  if (real.length === 0) {
    if (treat === 'missing') return 'INSUFFICIENT_DATA';
    if (treat === 'ignore') return previous;
    return treat === 'breaching' ? 'ALARM' : 'OK';
  }
  const breachingCount = real.filter(breaching).length;
  if (treat === 'breaching') return breachingCount + (n - real.length) >= m ? 'ALARM' : 'OK';
  if (breachingCount >= m) return 'ALARM';
  if (treat === 'notBreaching') return 'OK';
  if (prematureAlarm(range, n, m, breaching)) return treat === 'missing' ? 'ALARM' : previous;
  return 'OK';
}

function prematureAlarm(
  range: readonly Datapoint[],
  n: number,
  m: number,
  breaching: (v: number) => boolean,
): boolean {
  if (range.some((v) => v !== null && !breaching(v))) return false;
  const newest = range.slice(-n);
  const oldest = newest.findIndex((v) => v !== null);
  return oldest >= 0 && n - oldest >= m;
}

/** ALARM when any child is in ALARM, else OK; a child without a state counts as INSUFFICIENT_DATA. */
export function evaluateComposite(
  composite: Pick<CompositeAlarmDefinition, 'anyOf'>,
  states: Readonly<Record<string, AlarmState>>,
): AlarmState {
  return composite.anyOf.some((id) => states[id] === 'ALARM') ? 'ALARM' : 'OK';
}
