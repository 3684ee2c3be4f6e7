import {
  type LabeledRecord,
  PLANS,
  RAW_FIELDS,
  type RawFieldSpec,
  REGIONS,
  type SyntheticValues,
} from '#shared/features/index.ts';
import { Random } from '#shared/random.ts';

/**
 * Deterministic synthetic churn data, modelled on the reference FastAPI service's gen_data.py: lognormal
 * income with a mean of 75,000, orders growing with tenure and plan, ~6% dormant accounts that never
 * order, and a churn label drawn from a fixed logistic function of the customer's raw fields (churn
 * rate ≈ 25%). Every field of the raw schema is written: the nine this world simulates, and any other
 * drawn from its `synthetic` values on a stream of its own, so a new field changes no existing column
 * and no label. The labels never depend on the code's feature definition.
 */

/** A raw schema: {@link RAW_FIELDS}, or in tests one with more fields. */
export type RawSchema = Readonly<Record<string, RawFieldSpec>>;

/** The raw fields the customers' world simulates (and the churn truth reads). */
export type SimulatedFields = {
  readonly age: number;
  readonly income: number;
  readonly plan: string;
  readonly region: string;
  readonly tenure_months: number;
  readonly total_spend: number;
  readonly orders: number;
  readonly support_tickets_90d: number;
  readonly days_since_last_order: number;
};
const SIMULATED: ReadonlySet<string> = new Set(
  Object.keys({
    age: 0,
    income: 0,
    plan: 0,
    region: 0,
    tenure_months: 0,
    total_spend: 0,
    orders: 0,
    support_tickets_90d: 0,
    days_since_last_order: 0,
  } satisfies Record<keyof SimulatedFields, 0>),
);

/** The columns of a generated customers file before the label: CSV_COLUMNS for {@link RAW_FIELDS}. */
export const generatedColumns = (schema: RawSchema = RAW_FIELDS): string[] => [
  'customer_id',
  ...Object.keys(schema),
  'event_time',
];

/** A generated customer: a labeled raw record whose simulated fields are all present. */
export type GeneratedRecord = LabeledRecord & SimulatedFields;

/**
 * A field of the raw schema that the generator cannot produce: the world does not simulate it and its
 * entry declares no (usable) `synthetic` values.
 */
export class UnsimulatedFieldError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'UnsimulatedFieldError';
  }
}

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
  /**
   * Multiplies a numeric raw field, e.g. `{ income: 1.9 }` moves average income from 75,000 to
   * ~142,500; counts stay whole and every value stays in its field's domain.
   */
  readonly drift?: Readonly<Partial<Record<string, number>>>;
  /**
   * Share F (0 < F ≤ 1) of the churn log-odds taken from a changed relation between features and churn:
   * the label is drawn from (1 − F)·z + F·z′ ({@link shiftedChurnLogOdds}). The customers' fields stay
   * those of the unshifted run. Absent: labels from z alone.
   */
  readonly conceptShift?: number;
  /** Event times fall in the 7 days before this instant. */
  readonly asOf: Date;
  /** The raw fields to write. @default RAW_FIELDS */
  readonly schema?: RawSchema;
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

const CHURN_INTERCEPT = -1.3 - 0.004 * 45;
const isPremium = (customer: SimulatedFields) => (customer.plan === 'premium' ? 1 : 0);
/** Spend per order, 0 for a customer without orders. */
const orderValue = (customer: SimulatedFields) =>
  customer.orders === 0 ? 0 : customer.total_spend / customer.orders;

/**
 * The true churn log-odds of a customer, from its raw fields (the truth the trainer must find); the
 * terms are added in a fixed order so the labels of a seed never change.
 */
export function churnLogOdds(customer: SimulatedFields): number {
  let z = CHURN_INTERCEPT;
  z += 0.55 * customer.support_tickets_90d;
  z += -0.035 * customer.tenure_months;
  z += -0.25 * isPremium(customer);
  z += 0.004 * customer.age;
  z += 0.018 * Math.min(customer.days_since_last_order, 180);
  z -= 0.45 * (Math.log1p(orderValue(customer)) - Math.log(45));
  if (customer.orders === 0) z += 0.5;
  return z;
}

/**
 * The changed relation of a concept shift: customers who file tickets are engaged and stay, loyalty
 * wears out with tenure, the young, the poorer and premium payers leave; only dormancy drives churn as
 * before. It ranks customers about independently of {@link churnLogOdds} (a model of the old relation
 * scores near-chance AUC on its labels) at about the same churn rate; the intercept centers the terms on
 * the population's means (tenure 36, age 49, income 75,000).
 */
const CHANGED_CHURN_INTERCEPT = -1.95 - 0.02 * 36 + 0.045 * 49 + Math.log(75_000);

function changedChurnLogOdds(customer: SimulatedFields): number {
  let z = CHANGED_CHURN_INTERCEPT;
  z += -0.45 * customer.support_tickets_90d;
  z += 0.02 * customer.tenure_months;
  z += -0.045 * customer.age;
  z += -1 * Math.log1p(Math.max(customer.income, 0));
  z += 0.5 * isPremium(customer);
  return z + 0.018 * Math.min(customer.days_since_last_order, 180);
}

/** The churn log-odds under concept shift F: (1 − F)·z + F·z′, z′ the changed relation. */
export function shiftedChurnLogOdds(customer: SimulatedFields, shift: number): number {
  return (1 - shift) * churnLogOdds(customer) + shift * changedChurnLogOdds(customer);
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
  const schema = options.schema ?? RAW_FIELDS;
  validateDrift(options.drift ?? {}, schema);
  for (const [name, spec] of Object.entries(schema)) {
    if (!SIMULATED.has(name)) checkSynthetic(name, spec);
  }
  if (Number.isNaN(options.asOf.getTime())) throw new RangeError('asOf must be a valid date');
}

function validateDrift(drift: Readonly<Partial<Record<string, number>>>, schema: RawSchema): void {
  const numeric = Object.keys(schema).filter((name) => schema[name]!.kind === 'number');
  for (const [field, factor] of Object.entries(drift)) {
    if (!numeric.includes(field)) {
      throw new RangeError(`drift field "${field}" is not a numeric field; use one of ${numeric.join(', ')}`);
    }
    if (!(typeof factor === 'number' && Number.isFinite(factor) && factor > 0)) {
      throw new RangeError(`drift factor for ${field} must be a positive number, got ${factor}`);
    }
  }
}

const WHERE = 'its entry of RAW_FIELDS in shared/features/schema.ts';

/** Refuses a field the generator cannot draw: no `synthetic` values, or values of the other kind. */
function checkSynthetic(name: string, spec: RawFieldSpec): void {
  const values = spec.synthetic;
  if (values === undefined) {
    throw new UnsimulatedFieldError(
      `raw field "${name}" has no synthetic values: the generated customers' world does not simulate it, ` +
        `so declare how to draw it as \`synthetic\` in ${WHERE}, e.g. ` +
        (spec.kind === 'category'
          ? `synthetic: { dist: 'choice', values: ['a', 'b'], p: [0.7, 0.3] }`
          : `synthetic: { dist: 'poisson', mean: 4 }`),
    );
  }
  const problem = syntheticProblem(spec, values);
  if (problem) throw new UnsimulatedFieldError(`raw field "${name}": synthetic ${problem} (${WHERE})`);
}

function syntheticProblem(spec: RawFieldSpec, values: SyntheticValues): string | undefined {
  if (spec.kind === 'category') {
    if (values.dist !== 'choice')
      return `dist '${values.dist}' draws numbers; a category field takes 'choice'`;
    const sum = values.p.reduce((total, p) => total + p, 0);
    if (values.values.length === 0 || values.values.length !== values.p.length)
      return 'choice needs as many probabilities p as values, and at least one';
    if (values.p.some((p) => !(p >= 0)) || Math.abs(sum - 1) > 1e-9)
      return `choice probabilities p must be ≥ 0 and sum to 1, got ${sum}`;
    return undefined;
  }
  switch (values.dist) {
    case 'choice':
      return "dist 'choice' draws categories; a number field takes 'poisson', 'uniform' or 'lognormal'";
    case 'poisson':
      return Number.isFinite(values.mean) && values.mean >= 0 ? undefined : 'poisson mean must be ≥ 0';
    case 'uniform':
      return Number.isFinite(values.min) && Number.isFinite(values.max) && values.min <= values.max
        ? undefined
        : 'uniform needs finite min ≤ max';
    case 'lognormal':
      return values.median > 0 &&
        Number.isFinite(values.median) &&
        values.sigma >= 0 &&
        Number.isFinite(values.sigma)
        ? undefined
        : 'lognormal needs a median > 0 and a finite sigma ≥ 0';
  }
}

/** Parses `FIELD=FACTOR` (the CLI's `--drift income=1.9`). */
export function parseDriftSpec(spec: string, schema: RawSchema = RAW_FIELDS): [string, number] {
  const match = /^([a-z_0-9]+)=([0-9]*\.?[0-9]+)$/.exec(spec.trim());
  if (!match) throw new RangeError(`--drift must look like FIELD=FACTOR (e.g. income=1.9), got "${spec}"`);
  const field = match[1]!;
  const factor = Number(match[2]);
  validateDrift({ [field]: factor }, schema);
  return [field, factor];
}

const round2 = (value: number) => Math.round(value * 100) / 100;

type NumberSpec = Extract<RawFieldSpec, { kind: 'number' }>;

/** A value kept in its field's domain: whole for a count (or `whole`), within min and max. */
function inDomain(value: number, spec: NumberSpec, whole: boolean): number {
  const rounded = whole || spec.integer ? Math.round(value) : value;
  return Math.min(spec.max ?? Number.POSITIVE_INFINITY, Math.max(spec.min, rounded));
}

/**
 * Each synthetic field on a random stream of its own, seeded from the seed and the field's name (FNV-1a):
 * adding, removing or reordering such a field changes no other column.
 */
function fieldSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5;
  for (const char of `${seed}/${name}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return hash;
}

/** Draws one value of a synthetic field per call, drifted by `factor`. */
function syntheticDraw(
  name: string,
  spec: RawFieldSpec,
  seed: number,
  factor: number | undefined,
): () => number | string {
  const random = new Random(fieldSeed(seed, name));
  const values = spec.synthetic!;
  if (values.dist === 'choice') return () => values.values[random.choice(values.p)]!;
  // checkSynthetic: only a number field draws numbers.
  const domain = spec as NumberSpec;
  const draw = (): number => {
    switch (values.dist) {
      case 'poisson':
        return random.poisson(values.mean);
      case 'uniform':
        return domain.integer
          ? random.int(Math.ceil(values.min), Math.floor(values.max))
          : values.min + random.float() * (values.max - values.min);
      case 'lognormal':
        return Math.exp(random.normal(Math.log(values.median), values.sigma));
    }
  };
  return () => {
    const value = draw() * (factor ?? 1);
    return inDomain(domain.integer ? value : round2(value), domain, false);
  };
}

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
export function* generateRecords(options: GenerateOptions): Generator<GeneratedRecord> {
  validateGenerateOptions(options);
  const random = new Random(options.seed);
  const drift = options.drift ?? {};
  const schema = options.schema ?? RAW_FIELDS;
  // Ages are whole years; the other simulated fields keep their kind (counts whole) and domain.
  const scale = (field: keyof SimulatedFields & keyof typeof RAW_FIELDS, value: number) => {
    const factor = drift[field];
    if (factor === undefined) return value;
    return inDomain(value * factor, RAW_FIELDS[field] as NumberSpec, field === 'age');
  };
  const synthetic = Object.entries(schema)
    .filter(([name]) => !SIMULATED.has(name))
    .map(([name, spec]) => [name, syntheticDraw(name, spec, options.seed, drift[name])] as const);
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
    const record: GeneratedRecord = {
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
    // Drawn either way: the stream, and so every later customer, is the unshifted run's.
    record.churned = random.float() < sigmoid(churnLogOdds(record)) ? 1 : 0;
    if (shiftedLabel) record.churned = shiftedLabel(record);
    for (const [name, draw] of synthetic) (record as Record<string, unknown>)[name] = draw();
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
function shiftedLabels(shift: number, seed: number): (customer: SimulatedFields) => 0 | 1 {
  const random = new Random(Number.MAX_SAFE_INTEGER - seed);
  return (customer) => (random.float() < sigmoid(shiftedChurnLogOdds(customer, shift)) ? 1 : 0);
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
