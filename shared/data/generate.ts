import {
  encodeInto,
  FEATURE_COUNT,
  featureIndex,
  type LabeledRecord,
  NUMERIC_FIELDS,
  type NumericField,
  PLANS,
  REGIONS,
} from '#shared/features/index.ts';
import { Random } from '#shared/random.ts';

/**
 * Deterministic synthetic churn data, modelled on the reference FastAPI service's gen_data.py: lognormal
 * income with a mean of 75,000, orders growing with tenure and plan, ~6% dormant accounts that never
 * order, and a churn label drawn from a fixed logistic function of the customer's features (churn rate
 * ≈ 25%).
 */

export interface GenerateOptions {
  /** Number of customers (1 … 100,000,000). */
  readonly rows: number;
  readonly seed: number;
  /**
   * Number of the first customer's id: row i (1-based) is `c-` + (firstId − 1 + i), zero-padded to 6
   * digits, so a later file can bring new customers without reusing the ids of an earlier one.
   * @default 1
   */
  readonly firstId?: number;
  /** Multiplies a numeric field, e.g. `{ income: 1.9 }` moves average income from 75,000 to ~142,500. */
  readonly drift?: Readonly<Partial<Record<NumericField, number>>>;
  /**
   * Share F (0 < F ≤ 1) of the churn log-odds taken from a changed relation between features and churn:
   * the label is drawn from (1 − F)·z + F·z′ ({@link shiftedChurnLogOdds}). The customers' fields stay
   * those of the unshifted run. Absent: labels from z alone.
   */
  readonly conceptShift?: number;
  /** Event times fall in the 7 days before this instant. */
  readonly asOf: Date;
}

const MAX_ROWS = 100_000_000;
/** Keeps every id, up to the last, a safe integer of at most 12 digits. */
const MAX_FIRST_ID = 999_999_999_999 - MAX_ROWS;
const PLAN_P = [0.5, 0.3, 0.2];
const REGION_P = [0.22, 0.2, 0.2, 0.18, 0.2];
const PLAN_ORDER_RATE = [0.6, 0.9, 1.3];
const PLAN_ORDER_VALUE = [1, 1.4, 2];
const PLAN_TICKET_RATE = [0.9, 0.6, 0.4];
const INCOME_SIGMA = 0.45;
/** A lognormal's mean is exp(mu + sigma²/2): this mu puts the mean, not the median, at 75,000. */
const INCOME_MU = Math.log(75_000) - INCOME_SIGMA ** 2 / 2;
const WEEK_MS = 7 * 24 * 3600 * 1000;
const INTEGER_FIELDS: ReadonlySet<NumericField> = new Set(['orders', 'support_tickets_90d']);

/** The churn log-odds as a function of the features the model sees: the truth the trainer must find. */
const CHURN_COEFFICIENTS: ReadonlyArray<[feature: string, weight: number]> = [
  ['support_tickets_90d', 0.55],
  ['tenure_months', -0.035],
  ['plan_premium', -0.25],
  ['age', 0.004],
];
const CHURN_INTERCEPT = -1.3 - 0.004 * 45;
const DAYS_SINCE = featureIndex('days_since_last_order');
const AVG_SPEND = featureIndex('avg_spend');
const ORDERS = featureIndex('orders');
const churnTerms = CHURN_COEFFICIENTS.map(([name, weight]) => [featureIndex(name), weight] as const);

/** The true churn log-odds of an encoded customer (a {@link FEATURE_COUNT} vector). */
export function churnLogOdds(features: Float64Array): number {
  let z = CHURN_INTERCEPT;
  for (const [index, weight] of churnTerms) z += weight * features[index]!;
  z += 0.018 * Math.min(features[DAYS_SINCE]!, 180);
  z -= 0.45 * (Math.log1p(features[AVG_SPEND]!) - Math.log(45));
  if (features[ORDERS] === 0) z += 0.5;
  return z;
}

/**
 * The changed relation of a concept shift: customers who file tickets are engaged and stay, loyalty
 * wears out with tenure, the young, the poorer and premium payers leave; only dormancy drives churn as
 * before. It ranks customers about independently of {@link churnLogOdds} (a model of the old relation
 * scores near-chance AUC on its labels) at about the same churn rate; the intercept centers the terms on
 * the population's means (tenure 36, age 49, income 75,000).
 */
const CHANGED_CHURN_COEFFICIENTS: ReadonlyArray<[feature: string, weight: number]> = [
  ['support_tickets_90d', -0.45],
  ['tenure_months', 0.02],
  ['age', -0.045],
  ['log_income', -1],
  ['plan_premium', 0.5],
];
const CHANGED_CHURN_INTERCEPT = -1.95 - 0.02 * 36 + 0.045 * 49 + Math.log(75_000);
const changedChurnTerms = CHANGED_CHURN_COEFFICIENTS.map(
  ([name, weight]) => [featureIndex(name), weight] as const,
);

function changedChurnLogOdds(features: Float64Array): number {
  let z = CHANGED_CHURN_INTERCEPT;
  for (const [index, weight] of changedChurnTerms) z += weight * features[index]!;
  return z + 0.018 * Math.min(features[DAYS_SINCE]!, 180);
}

/** The churn log-odds under concept shift F: (1 − F)·z + F·z′, z′ the changed relation. */
export function shiftedChurnLogOdds(features: Float64Array, shift: number): number {
  return (1 - shift) * churnLogOdds(features) + shift * changedChurnLogOdds(features);
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const isShare = (value: unknown) => typeof value === 'number' && value > 0 && value <= 1;

export function validateGenerateOptions(options: GenerateOptions): void {
  if (!Number.isInteger(options.rows) || options.rows < 1 || options.rows > MAX_ROWS) {
    throw new RangeError(`rows must be an integer from 1 to ${MAX_ROWS}, got ${options.rows}`);
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new RangeError(`seed must be a non-negative integer, got ${options.seed}`);
  }
  const firstId = options.firstId ?? 1;
  if (!Number.isInteger(firstId) || firstId < 1 || firstId > MAX_FIRST_ID) {
    throw new RangeError(`firstId must be an integer from 1 to ${MAX_FIRST_ID}, got ${options.firstId}`);
  }
  const shift = options.conceptShift;
  if (shift !== undefined && !isShare(shift)) {
    throw new RangeError(
      `conceptShift must be a number greater than 0 and at most 1 (leave it out for none), got ${shift}`,
    );
  }
  for (const [field, factor] of Object.entries(options.drift ?? {})) {
    if (!(NUMERIC_FIELDS as string[]).includes(field)) {
      throw new RangeError(
        `drift field "${field}" is not a numeric field; use one of ${NUMERIC_FIELDS.join(', ')}`,
      );
    }
    if (!(typeof factor === 'number' && Number.isFinite(factor) && factor > 0)) {
      throw new RangeError(`drift factor for ${field} must be a positive number, got ${factor}`);
    }
  }
  if (Number.isNaN(options.asOf.getTime())) throw new RangeError('asOf must be a valid date');
}

/** Parses `FIELD=FACTOR` (the CLI's `--drift income=1.9`). */
export function parseDriftSpec(spec: string): [NumericField, number] {
  const match = /^([a-z_0-9]+)=([0-9]*\.?[0-9]+)$/.exec(spec.trim());
  if (!match) throw new RangeError(`--drift must look like FIELD=FACTOR (e.g. income=1.9), got "${spec}"`);
  const field = match[1] as NumericField;
  const factor = Number(match[2]);
  validateGenerateOptions({ rows: 1, seed: 0, asOf: new Date(0), drift: { [field]: factor } });
  return [field, factor];
}

const round2 = (value: number) => Math.round(value * 100) / 100;

/**
 * Digits of the number in a generated file's customer ids (`c-` + the number, zero-padded): 6, or as
 * many as its last id needs (the row count, from the first id 1).
 */
export const customerIdWidth = (lastId: number): number => Math.max(6, String(lastId).length);

/**
 * Yields customers `c-000001`, `c-000002`, … (from `firstId` on) one at a time: memory stays flat for
 * any row count. The ids do not enter the random stream: the same seed gives the same customers under
 * other ids.
 */
export function* generateRecords(options: GenerateOptions): Generator<LabeledRecord> {
  validateGenerateOptions(options);
  const random = new Random(options.seed);
  const drift = options.drift ?? {};
  const scale = (field: NumericField, value: number) => {
    const factor = drift[field];
    if (factor === undefined) return value;
    const scaled = value * factor;
    if (field === 'age') return Math.min(100, Math.max(18, Math.round(scaled)));
    return INTEGER_FIELDS.has(field) ? Math.round(scaled) : scaled;
  };
  const features = new Float64Array(FEATURE_COUNT);
  const asOfMs = options.asOf.getTime();
  const firstId = options.firstId ?? 1;
  const idWidth = customerIdWidth(firstId - 1 + options.rows);
  const shiftedLabel =
    options.conceptShift === undefined ? undefined : shiftedLabels(options.conceptShift, options.seed);

  for (let row = 1; row <= options.rows; row++) {
    const age = random.int(18, 80);
    const income = Math.exp(random.normal(INCOME_MU, INCOME_SIGMA)) * (drift.income ?? 1);
    const plan = random.choice(PLAN_P);
    const region = random.choice(REGION_P);
    const tenure = random.int(0, 72);
    const dormant = random.float() < 0.06;
    const orderCount = random.poisson(tenure * PLAN_ORDER_RATE[plan]! * 0.5);
    const orders = dormant ? 0 : orderCount;
    const orderValue = Math.exp(
      random.normal(Math.log(40 * PLAN_ORDER_VALUE[plan]! * (income / 75_000) ** 0.3), 0.35),
    );
    const tickets = random.poisson(PLAN_TICKET_RATE[plan]!);
    const lastGap = Math.min(random.exponential(25), 365);
    const daysSince = Math.floor(orders === 0 ? Math.min(tenure * 30, 365) : lastGap);
    const eventMs = asOfMs - Math.floor(random.float() * WEEK_MS);
    const record: LabeledRecord = {
      customer_id: `c-${String(firstId - 1 + row).padStart(idWidth, '0')}`,
      age: scale('age', age),
      income: round2(income),
      plan: PLANS[plan]!,
      region: REGIONS[region]!,
      tenure_months: scale('tenure_months', tenure),
      total_spend: round2(scale('total_spend', orders * orderValue)),
      orders: scale('orders', orders),
      support_tickets_90d: scale('support_tickets_90d', tickets),
      days_since_last_order: scale('days_since_last_order', daysSince),
      event_time: new Date(eventMs - (eventMs % 1000)).toISOString(),
      churned: 0,
    };
    encodeInto(record, features, 0);
    // Drawn either way: the stream, and so every later customer, is the unshifted run's.
    record.churned = random.float() < sigmoid(churnLogOdds(features)) ? 1 : 0;
    if (shiftedLabel) record.churned = shiftedLabel(features);
    yield record;
  }
}

/**
 * Options of {@link generateOutcomes}: the customers' (as for {@link generateRecords}; with a concept
 * shift, the customers' fields of the unshifted run and labels of the shifted one), and the outcome's.
 */
export interface OutcomeOptions extends Omit<GenerateOptions, 'asOf'> {
  /** When every outcome was observed. */
  readonly observedAt: Date;
}

/** One row of an outcome file (`customer_id,churned,observed_at`). */
export interface GeneratedOutcome {
  readonly customer_id: string;
  readonly churned: 0 | 1;
  readonly observed_at: string;
}

export function validateOutcomeOptions(options: OutcomeOptions): void {
  if (Number.isNaN(options.observedAt.getTime())) throw new RangeError('observedAt must be a valid date');
  validateGenerateOptions({ ...options, asOf: options.observedAt });
}

/** Parses the CLI's `--concept-shift F`. */
export function parseConceptShift(text: string): number {
  const shift = Number(text);
  if (!/^[0-9]*\.?[0-9]+$/.test(text.trim()) || !isShare(shift)) {
    throw new RangeError(`--concept-shift must be a number greater than 0 and at most 1, got "${text}"`);
  }
  return shift;
}

/**
 * Labels under concept shift F, drawn on a stream of their own (another seed): the customers' stream,
 * and so their inputs, stays byte-identical to the unshifted run's.
 */
function shiftedLabels(shift: number, seed: number): (features: Float64Array) => 0 | 1 {
  const random = new Random(Number.MAX_SAFE_INTEGER - seed);
  return (features) => (random.float() < sigmoid(shiftedChurnLogOdds(features, shift)) ? 1 : 0);
}

/**
 * The outcomes of the customers {@link generateRecords} yields for the same options, one at a time:
 * ground truth for the quality job, optionally from a shifted concept (same inputs, new labels).
 */
export function* generateOutcomes(options: OutcomeOptions): Generator<GeneratedOutcome> {
  validateOutcomeOptions(options);
  const { observedAt, ...customers } = options;
  const observed_at = observedAt.toISOString();
  for (const record of generateRecords({ ...customers, asOf: observedAt }))
    yield { customer_id: record.customer_id, churned: record.churned, observed_at };
}
