import { callDependency } from '#shared/aws/errors.ts';
import {
  IncompleteFeaturesError,
  issuesOf,
  KeelError,
  UnknownEntityError,
  ValidationError,
} from '#shared/errors.ts';
import type { FeatureSet, FieldValues, RawRecord } from '#shared/features/index.ts';
import { scoreRows } from '#shared/model/scorer.ts';
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
 * attributes → features of the answering model's own definition (its `featureSet`) → score → apply
 * the model's threshold. Champion and challenger may read different definitions: each request is
 * encoded once per definition that scores it.
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
  /**
   * Absent when the variant's model failed on this request, or the request lacks a field its
   * definition requires (the champion then answered instead).
   */
  readonly probability?: number;
  readonly prediction?: 0 | 1;
  /** The features this variant scored (float32, its feature set's order), with its probability. */
  readonly vector?: Float32Array;
  /** Milliseconds from the start of the prediction until this score was ready. */
  readonly ms: number;
}

export interface Prediction {
  readonly body: PredictResponse;
  readonly facts: PredictionFacts;
  /**
   * The encoded features the answering model scored (float32, in the order of its own feature set):
   * what prediction capture keeps.
   */
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

/** One request's features as one definition computes them. */
interface Encoded {
  /** Float32 once, here: the model scores this vector and capture keeps the same one. */
  readonly vector: Float32Array;
  readonly imputed: readonly string[];
  readonly unseen: readonly string[];
}

interface Prepared {
  readonly request: PredictRequest;
  /**
   * Every attribute of the stored record, overridden by the request's: a definition reads the fields
   * it names, including fields this code's raw schema does not know.
   */
  readonly values: FieldValues;
  readonly storedEventTime: string | undefined;
  /** What deserves attention whichever model answers (a stale record). */
  readonly warnings: readonly string[];
  readonly stale: boolean;
  /** By feature-set fingerprint: champion and challenger of the same definition encode once. */
  readonly encodings: Map<string, Encoded | IncompleteFeaturesError>;
}

function prepare(request: PredictRequest, stored: RawRecord | undefined, deps: InferenceDeps): Prepared {
  if (!stored && request.attributes === undefined) {
    throw new UnknownEntityError(
      `customer ${request.customerId} is not in the online store; send its fields in "attributes"`,
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
  return {
    request,
    values: { ...stored, ...request.attributes },
    storedEventTime: request.attributes === undefined ? stored?.event_time : undefined,
    warnings,
    stale,
    encodings: new Map(),
  };
}

/** `row`'s features as `featureSet` computes them, or the fields it requires and the row lacks. */
function encodedFor(row: Prepared, featureSet: FeatureSet): Encoded | IncompleteFeaturesError {
  let encoded = row.encodings.get(featureSet.fingerprint);
  if (!encoded) {
    const result = featureSet.encode(row.values);
    encoded = result.ok
      ? { vector: Float32Array.from(result.vector), imputed: result.imputed, unseen: result.unseen }
      : new IncompleteFeaturesError(
          `missing fields for ${row.request.customerId}: ${result.missing.join(', ')} ` +
            `(required by feature set ${featureSet.version})`,
          { details: { missing: result.missing } },
        );
    row.encodings.set(featureSet.fingerprint, encoded);
  }
  return encoded;
}

const decide = (probability: number, model: LoadedModel): 0 | 1 => (probability >= model.threshold ? 1 : 0);

/** How one prepared request was scored: who answered, with which features, and during a rollout every variant's score. */
interface Scored {
  readonly probability: number;
  readonly model: LoadedModel;
  readonly encoded: Encoded;
  readonly variant: Variant;
  readonly scores?: VariantScore[];
}

/** A prepared request's outcome: scored, or refused for lacking a field the answering model requires. */
type Outcome = Scored | IncompleteFeaturesError;

function respond(prepared: Prepared, scored: Scored, serving: ServingModels, requestId: string): Prediction {
  const { probability, model, encoded, variant } = scored;
  const warnings = [...prepared.warnings];
  if (encoded.imputed.length > 0) warnings.push(`imputed: ${encoded.imputed.join(', ')}`);
  if (encoded.unseen.length > 0) warnings.push(`unseen category in: ${encoded.unseen.join(', ')}`);
  const body: PredictResponse = {
    customerId: prepared.request.customerId,
    prediction: decide(probability, model),
    probability,
    model: { name: model.name, version: model.version, variant },
    featureSet: { version: model.featureSet.version, fingerprint: model.featureSet.fingerprint },
    requestId,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
  const rollout =
    serving.rollout && scored.scores
      ? { id: serving.rollout.id, mode: serving.rollout.mode, scores: scored.scores }
      : undefined;
  return {
    body,
    facts: { imputed: encoded.imputed.length, unseen: encoded.unseen.length, stale: prepared.stale },
    vector: encoded.vector,
    ...(prepared.storedEventTime ? { storedEventTime: prepared.storedEventTime } : {}),
    ...(rollout ? { rollout } : {}),
  };
}

/** `rows` as one model scored them: each row's features (or what it lacks) and probability, and when. */
interface ModelScores {
  readonly encoded: readonly (Encoded | IncompleteFeaturesError)[];
  /** One per row, undefined where the row lacks a field; undefined as a whole when the model failed. */
  readonly probabilities: readonly (number | undefined)[] | undefined;
  /** Milliseconds from the start of the prediction until the scores were ready. */
  readonly ms: number;
}

/** `rows` encoded with `model`'s definition and scored by it; a model failure throws. */
async function scoreWith(
  model: LoadedModel,
  rows: readonly Prepared[],
  started: number,
): Promise<ModelScores> {
  const encoded = rows.map((row) => encodedFor(row, model.featureSet));
  const ready = encoded.filter((e): e is Encoded => !(e instanceof KeelError));
  const scores = await scoreRows(
    model.scorer,
    ready.map((e) => e.vector),
  );
  let next = 0;
  return {
    encoded,
    probabilities: encoded.map((e) => (e instanceof KeelError ? undefined : scores[next++]!)),
    ms: performance.now() - started,
  };
}

/** The challenger's scores of `rows`, without probabilities when its model failed: it never fails a request. */
function challengerScores(
  challenger: LoadedModel,
  rows: readonly Prepared[],
  started: number,
): Promise<ModelScores> {
  return scoreWith(challenger, rows, started).catch(() => ({
    encoded: [],
    probabilities: undefined,
    ms: performance.now() - started,
  }));
}

const scoreOf = (
  role: VariantDimension,
  model: LoadedModel,
  scores: ModelScores,
  i: number,
): VariantScore => {
  const probability = scores.probabilities?.[i];
  const encoded = scores.encoded[i];
  return probability === undefined || encoded === undefined || encoded instanceof KeelError
    ? { role, version: model.version, ms: scores.ms }
    : {
        role,
        version: model.version,
        probability,
        prediction: decide(probability, model),
        vector: encoded.vector,
        ms: scores.ms,
      };
};

/** Row `i` of `scores` as `model`'s answer, or the fields it lacks for that model. */
function answer(
  model: LoadedModel,
  variant: Variant,
  scores: ModelScores,
  i: number,
  rollout?: VariantScore[],
): Outcome {
  const encoded = scores.encoded[i]!;
  if (encoded instanceof KeelError) return encoded;
  return {
    probability: scores.probabilities![i]!,
    model,
    encoded,
    variant,
    ...(rollout ? { scores: rollout } : {}),
  };
}

/**
 * Scores prepared requests as the serving models say, each model with its own definition. No rollout:
 * the champion. Canary: each customer's stable variant answers, and canary rows the challenger cannot
 * answer (its model failed, or the row lacks a field its definition requires) are answered by the
 * champion. Shadow: both score every row, side by side, and the champion answers. A champion failure
 * fails the requests, as without a rollout; a challenger failure fails none.
 */
async function scoreServing(
  serving: ServingModels,
  rows: readonly Prepared[],
  started: number,
): Promise<Outcome[]> {
  const { champion, rollout, challenger } = serving;
  if (!rollout || !challenger) {
    const answers = await scoreWith(champion, rows, started);
    return rows.map((_, i) => answer(champion, 'champion', answers, i));
  }
  if (rollout.mode === 'shadow') {
    const [answers, shadow] = await Promise.all([
      scoreWith(champion, rows, started),
      challengerScores(challenger, rows, started),
    ]);
    return rows.map((_, i) =>
      answer(champion, 'champion', answers, i, [
        scoreOf('champion', champion, answers, i),
        scoreOf('challenger', challenger, shadow, i),
      ]),
    );
  }
  const toCanary = rows.map((row) => variantFor(rollout, row.request.customerId) === 'canary');
  const canaryRows = rows.filter((_, i) => toCanary[i]);
  const [canary, answers] = await Promise.all([
    challengerScores(challenger, canaryRows, started),
    scoreWith(
      champion,
      rows.filter((_, i) => !toCanary[i]),
      started,
    ),
  ]);
  const declined = canaryRows.filter((_, k) => canary.probabilities?.[k] === undefined);
  const fallback = declined.length > 0 ? await scoreWith(champion, declined, started) : undefined;
  let nextCanary = 0;
  let nextChampion = 0;
  let nextFallback = 0;
  return rows.map((_, i): Outcome => {
    if (!toCanary[i]) {
      const j = nextChampion++;
      return answer(champion, 'champion', answers, j, [scoreOf('champion', champion, answers, j)]);
    }
    const k = nextCanary++;
    if (canary.probabilities?.[k] !== undefined) {
      return answer(challenger, 'canary', canary, k, [scoreOf('challenger', challenger, canary, k)]);
    }
    const f = nextFallback++;
    return answer(champion, 'champion', fallback!, f, [
      scoreOf('challenger', challenger, canary, k),
      scoreOf('champion', champion, fallback!, f),
    ]);
  });
}

/**
 * Whether the request lacks a field that a serving model's definition reads: then the online store is
 * read; a request carrying every one of them itself reads nothing (as the reference FastAPI service is
 * called: every field in the body).
 */
export function needsStoredRecord(request: PredictRequest, serving: ServingModels): boolean {
  const attributes: FieldValues | undefined = request.attributes;
  if (attributes === undefined) return true;
  return [serving.champion, serving.challenger].some((model) =>
    model?.featureSet.fields.some((name) => attributes[name] === undefined),
  );
}

async function readStore(deps: InferenceDeps, ids: string[]): Promise<Map<string, RawRecord>> {
  return callDependency('the online feature store', () => deps.readRecords(ids));
}

export async function predictOne(deps: InferenceDeps, body: unknown, requestId: string): Promise<Prediction> {
  const started = performance.now();
  // A malformed request is the client's to fix whatever the model state: validate first.
  const request = parsePredictRequest(body);
  const serving = await deps.models.requireServing();
  const stored = needsStoredRecord(request, serving)
    ? (await readStore(deps, [request.customerId])).get(request.customerId)
    : undefined;
  const prepared = prepare(request, stored, deps);
  const [outcome] = await scoreServing(serving, [prepared], started);
  if (outcome instanceof KeelError) throw outcome;
  return respond(prepared, outcome!, serving, requestId);
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
    r instanceof KeelError || !needsStoredRecord(r, serving) ? [] : [r.customerId],
  );
  const stored = ids.length > 0 ? await readStore(deps, ids) : new Map<string, RawRecord>();
  const prepared = requests.map((request) => {
    if (request instanceof KeelError) return request;
    try {
      const record = needsStoredRecord(request, serving) ? stored.get(request.customerId) : undefined;
      return prepare(request, record, deps);
    } catch (error) {
      if (error instanceof KeelError) return error;
      throw error;
    }
  });
  const ready = prepared.filter((p): p is Prepared => !(p instanceof KeelError));
  const outcomes = await scoreServing(serving, ready, started);
  let next = 0;
  return prepared.map((p): BatchResult => {
    if (p instanceof KeelError) return { ok: false, error: p };
    const outcome = outcomes[next++]!;
    return outcome instanceof KeelError
      ? { ok: false, error: outcome }
      : { ok: true, prediction: respond(p, outcome, serving, requestId) };
  });
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
