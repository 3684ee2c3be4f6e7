import { callDependency } from '#shared/aws/errors.ts';
import {
  IncompleteFeaturesError,
  issuesOf,
  KeelError,
  UnknownEntityError,
  ValidationError,
} from '#shared/errors.ts';
import {
  encodeFeatures,
  FEATURE_COUNT,
  FEATURE_FIELD_NAMES,
  FEATURE_SET,
  type PartialFeatureFields,
  type RawRecord,
} from '#shared/features/index.ts';
import type { VariantDimension } from '#shared/monitoring/metrics.ts';
import { freshness, type RecordReader } from '#shared/online-store/store.ts';
import { type RolloutMode, type Variant, variantFor } from '#shared/registry/rollout.ts';
import type { LoadedModel, ModelHolder, ServingModels } from './model-holder.ts';
import {
  batchRequestSchema,
  type HealthResponse,
  type PredictRequest,
  type PredictResponse,
  predictRequestSchema,
} from './schemas.ts';

/**
 * The inference domain, free of HTTP and Lambda: validate → read the online store → merge request
 * attributes → features (shared/features) → score → apply the model's threshold.
 */
export interface InferenceDeps {
  readonly models: ModelHolder;
  /** The online store's reads (a server joins concurrent requests' reads: `coalescedReader`). */
  readonly readRecords: RecordReader;
  /** Stored records older than this are reported in `warnings`. */
  readonly maxRecordAgeMs: number;
  readonly now?: () => Date;
}

/** What a prediction tells the metrics beyond its body. */
export interface PredictionFacts {
  readonly imputed: number;
  readonly unseen: number;
  readonly stale: boolean;
}

/** One variant's score of one request during a rollout. */
export interface VariantScore {
  readonly role: VariantDimension;
  readonly version: string;
  /** Absent when the variant's model failed on this request (the champion then answered instead). */
  readonly probability?: number;
  readonly prediction?: 0 | 1;
  /** Milliseconds from the start of the prediction until this score was ready. */
  readonly ms: number;
}

export interface Prediction {
  readonly body: PredictResponse;
  readonly facts: PredictionFacts;
  /** The encoded features the model scored (float32, FEATURE_SET order): what prediction capture keeps. */
  readonly vector: Float32Array;
  /**
   * The stored record's event_time when the features came from it alone (no attributes): what ties
   * the answer to one stored record, for the quality job's consistency and skew checks.
   */
  readonly storedEventTime?: string;
  /** During a rollout: which one, and the score of every variant that scored this request. */
  readonly rollout?: {
    readonly id: string;
    readonly mode: RolloutMode;
    readonly scores: readonly VariantScore[];
  };
}

export function parsePredictRequest(body: unknown, prefix = ''): PredictRequest {
  const parsed = predictRequestSchema.safeParse(body);
  if (!parsed.success) {
    throw new ValidationError('the request body is invalid', issuesOf(parsed.error, prefix));
  }
  return parsed.data;
}

/** The feature fields a record or the request's attributes hold (the others never become features). */
function featureFields(record: Partial<RawRecord> | undefined): PartialFeatureFields {
  if (!record) return {};
  const fields: Record<string, unknown> = {};
  for (const name of FEATURE_FIELD_NAMES) if (record[name] !== undefined) fields[name] = record[name];
  return fields as PartialFeatureFields;
}

interface Prepared {
  readonly request: PredictRequest;
  /** Float32 once, here: the model scores this vector and capture keeps the same one. */
  readonly vector: Float32Array;
  readonly storedEventTime: string | undefined;
  readonly warnings: string[];
  readonly facts: PredictionFacts;
}

function prepare(request: PredictRequest, stored: RawRecord | undefined, deps: InferenceDeps): Prepared {
  if (!stored && request.attributes === undefined) {
    throw new UnknownEntityError(
      `customer ${request.customerId} is not in the online store; send its fields in "attributes"`,
    );
  }
  const encoded = encodeFeatures({ ...featureFields(stored), ...featureFields(request.attributes) });
  if (!encoded.ok) {
    throw new IncompleteFeaturesError(
      `missing fields for ${request.customerId}: ${encoded.missing.join(', ')}`,
      {
        details: { missing: encoded.missing },
      },
    );
  }
  const warnings: string[] = [];
  let stale = false;
  // The values' own time when the request dates them, else the stored record's.
  const dated = request.attributes?.event_time
    ? { what: 'attributes are', event_time: request.attributes.event_time }
    : stored && { what: 'stored record is', event_time: stored.event_time };
  if (dated) {
    stale = freshness(dated, (deps.now ?? (() => new Date()))(), deps.maxRecordAgeMs).stale;
    if (stale)
      warnings.push(`${dated.what} stale: event_time ${dated.event_time} is older than the freshness limit`);
  }
  if (encoded.imputed.length > 0) warnings.push(`imputed: ${encoded.imputed.join(', ')}`);
  if (encoded.unseen.length > 0) warnings.push(`unseen category in: ${encoded.unseen.join(', ')}`);
  return {
    request,
    vector: Float32Array.from(encoded.vector),
    storedEventTime: request.attributes === undefined ? stored?.event_time : undefined,
    warnings,
    facts: { imputed: encoded.imputed.length, unseen: encoded.unseen.length, stale },
  };
}

const decide = (probability: number, model: LoadedModel): 0 | 1 => (probability >= model.threshold ? 1 : 0);

/** How one prepared request was scored: who answered, and during a rollout every variant's score. */
interface Scored {
  readonly probability: number;
  readonly model: LoadedModel;
  readonly variant: Variant;
  readonly scores?: VariantScore[];
}

function respond(prepared: Prepared, scored: Scored, serving: ServingModels, requestId: string): Prediction {
  const { probability, model, variant } = scored;
  const body: PredictResponse = {
    customerId: prepared.request.customerId,
    prediction: decide(probability, model),
    probability,
    model: { name: model.name, version: model.version, variant },
    featureSet: { version: FEATURE_SET.version, fingerprint: FEATURE_SET.fingerprint },
    requestId,
    ...(prepared.warnings.length > 0 ? { warnings: prepared.warnings } : {}),
  };
  const rollout =
    serving.rollout && scored.scores
      ? { id: serving.rollout.id, mode: serving.rollout.mode, scores: scored.scores }
      : undefined;
  return {
    body,
    facts: prepared.facts,
    vector: prepared.vector,
    ...(prepared.storedEventTime ? { storedEventTime: prepared.storedEventTime } : {}),
    ...(rollout ? { rollout } : {}),
  };
}

/** The class-1 probabilities of `rows` by `model`: one model call whatever their number. */
async function scoreWith(model: LoadedModel, rows: readonly Prepared[]): Promise<ArrayLike<number>> {
  if (rows.length === 0) return [];
  if (rows.length === 1) return [await model.scorer.scoreOne(rows[0]!.vector)];
  const x = new Float32Array(rows.length * FEATURE_COUNT);
  rows.forEach((row, i) => {
    x.set(row.vector, i * FEATURE_COUNT);
  });
  return model.scorer.scoreBatch(x, rows.length);
}

/** `rows` scored by `model`, and when (ms since `started`) the scores were ready. */
async function timedScores(
  model: LoadedModel,
  rows: readonly Prepared[],
  started: number,
): Promise<{ probabilities: ArrayLike<number>; ms: number }> {
  const probabilities = await scoreWith(model, rows);
  return { probabilities, ms: performance.now() - started };
}

/** The challenger's scores of `rows`, or undefined when its model failed: it never fails a request. */
function challengerScores(
  challenger: LoadedModel,
  rows: readonly Prepared[],
  started: number,
): Promise<{ probabilities: ArrayLike<number> | undefined; ms: number }> {
  return timedScores(challenger, rows, started).catch(() => ({
    probabilities: undefined,
    ms: performance.now() - started,
  }));
}

const scoreOf = (
  role: VariantDimension,
  model: LoadedModel,
  probability: number | undefined,
  ms: number,
): VariantScore =>
  probability === undefined
    ? { role, version: model.version, ms }
    : { role, version: model.version, probability, prediction: decide(probability, model), ms };

/**
 * Scores prepared requests as the serving models say. No rollout: the champion. Canary: each
 * customer's stable variant answers, and canary rows the challenger fails on are answered by the
 * champion. Shadow: both score every row, side by side, and the champion answers. A champion failure
 * fails the requests, as without a rollout; a challenger failure fails none.
 */
async function scoreServing(
  serving: ServingModels,
  rows: readonly Prepared[],
  started: number,
): Promise<Scored[]> {
  const { champion, rollout, challenger } = serving;
  if (!rollout || !challenger) {
    const probabilities = await scoreWith(champion, rows);
    return rows.map((_, i) => ({ probability: probabilities[i]!, model: champion, variant: 'champion' }));
  }
  if (rollout.mode === 'shadow') {
    const [answers, shadow] = await Promise.all([
      timedScores(champion, rows, started),
      challengerScores(challenger, rows, started),
    ]);
    return rows.map((_, i) => {
      const probability = answers.probabilities[i]!;
      return {
        probability,
        model: champion,
        variant: 'champion',
        scores: [
          scoreOf('champion', champion, probability, answers.ms),
          scoreOf('challenger', challenger, shadow.probabilities?.[i], shadow.ms),
        ],
      };
    });
  }
  const toCanary = rows.map((row) => variantFor(rollout, row.request.customerId) === 'canary');
  const canaryRows = rows.filter((_, i) => toCanary[i]);
  const championRows = rows.filter((_, i) => !toCanary[i]);
  const [canary, answers] = await Promise.all([
    challengerScores(challenger, canaryRows, started),
    timedScores(champion, championRows, started),
  ]);
  const fallback = canary.probabilities ? undefined : await timedScores(champion, canaryRows, started);
  let nextCanary = 0;
  let nextChampion = 0;
  return rows.map((_, i): Scored => {
    if (!toCanary[i]) {
      const probability = answers.probabilities[nextChampion++]!;
      return {
        probability,
        model: champion,
        variant: 'champion',
        scores: [scoreOf('champion', champion, probability, answers.ms)],
      };
    }
    const k = nextCanary++;
    if (!fallback) {
      const probability = canary.probabilities![k]!;
      return {
        probability,
        model: challenger,
        variant: 'canary',
        scores: [scoreOf('challenger', challenger, probability, canary.ms)],
      };
    }
    const probability = fallback.probabilities[k]!;
    return {
      probability,
      model: champion,
      variant: 'champion',
      scores: [
        scoreOf('challenger', challenger, undefined, canary.ms),
        scoreOf('champion', champion, probability, fallback.ms),
      ],
    };
  });
}

/**
 * Whether the request carries every feature field itself: then nothing stored would survive the
 * override, and the online store is not read (as the reference FastAPI service is called: every field
 * in the body).
 */
export function needsStoredRecord(request: PredictRequest): boolean {
  const attributes = request.attributes;
  return attributes === undefined || FEATURE_FIELD_NAMES.some((name) => attributes[name] === undefined);
}

async function readStore(deps: InferenceDeps, ids: string[]): Promise<Map<string, RawRecord>> {
  return callDependency('the online feature store', () => deps.readRecords(ids));
}

export async function predictOne(deps: InferenceDeps, body: unknown, requestId: string): Promise<Prediction> {
  const started = performance.now();
  // A malformed request is the client's to fix whatever the model state: validate first.
  const request = parsePredictRequest(body);
  const serving = await deps.models.requireServing();
  const stored = needsStoredRecord(request)
    ? (await readStore(deps, [request.customerId])).get(request.customerId)
    : undefined;
  const prepared = prepare(request, stored, deps);
  const [scored] = await scoreServing(serving, [prepared], started);
  return respond(prepared, scored!, serving, requestId);
}

/** One batch item: its prediction, or the error that stopped it (the HTTP layer maps it to its body). */
export type BatchResult =
  | { readonly ok: true; readonly prediction: Prediction }
  | { readonly ok: false; readonly error: KeelError };

/**
 * Scores up to 100 items with one store read (BatchGetItem) and one model call. Each item succeeds or
 * fails on its own; store or model outages fail the whole batch (503), since every item would.
 */
export async function predictBatch(
  deps: InferenceDeps,
  body: unknown,
  requestId: string,
): Promise<BatchResult[]> {
  const started = performance.now();
  const parsed = batchRequestSchema.safeParse(body);
  if (!parsed.success) throw new ValidationError('the request body is invalid', issuesOf(parsed.error));
  const serving = await deps.models.requireServing();
  const requests = parsed.data.items.map((item, i) => {
    try {
      return parsePredictRequest(item, `items.${i}`);
    } catch (error) {
      return error as KeelError;
    }
  });
  const ids = requests.flatMap((r) =>
    r instanceof KeelError || !needsStoredRecord(r) ? [] : [r.customerId],
  );
  const stored = ids.length > 0 ? await readStore(deps, ids) : new Map<string, RawRecord>();
  const prepared = requests.map((request) => {
    if (request instanceof KeelError) return request;
    try {
      return prepare(request, needsStoredRecord(request) ? stored.get(request.customerId) : undefined, deps);
    } catch (error) {
      if (error instanceof KeelError) return error;
      throw error;
    }
  });
  const ready = prepared.filter((p): p is Prepared => !(p instanceof KeelError));
  const scored = await scoreServing(serving, ready, started);
  let next = 0;
  return prepared.map((p) =>
    p instanceof KeelError
      ? { ok: false, error: p }
      : { ok: true, prediction: respond(p, scored[next++]!, serving, requestId) },
  );
}

export async function health(deps: InferenceDeps): Promise<HealthResponse> {
  const { champion, rollout } = await deps.models.requireServing();
  return {
    status: 'ok',
    model: { name: champion.name, version: champion.version },
    // Only a rollout this process serves: one whose challenger was refused is not.
    ...(rollout
      ? {
          rollout: { id: rollout.id, mode: rollout.mode, version: rollout.version, percent: rollout.percent },
        }
      : {}),
  };
}
