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
import { freshness, type RecordReader } from '#shared/online-store/store.ts';
import type { LoadedModel, ModelHolder } from './model-holder.ts';
import {
  batchRequestSchema,
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

export interface Prediction {
  readonly body: PredictResponse;
  readonly facts: PredictionFacts;
  /** The encoded features the model scored (float32, FEATURE_SET order): what prediction capture keeps. */
  readonly vector: Float32Array;
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
    warnings,
    facts: { imputed: encoded.imputed.length, unseen: encoded.unseen.length, stale },
  };
}

function respond(prepared: Prepared, probability: number, model: LoadedModel, requestId: string): Prediction {
  const body: PredictResponse = {
    customerId: prepared.request.customerId,
    prediction: probability >= model.threshold ? 1 : 0,
    probability,
    model: { name: model.name, version: model.version },
    featureSet: { version: FEATURE_SET.version, fingerprint: FEATURE_SET.fingerprint },
    requestId,
    ...(prepared.warnings.length > 0 ? { warnings: prepared.warnings } : {}),
  };
  return { body, facts: prepared.facts, vector: prepared.vector };
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
  // A malformed request is the client's to fix whatever the model state: validate first.
  const request = parsePredictRequest(body);
  const model = await deps.models.require();
  const stored = needsStoredRecord(request)
    ? (await readStore(deps, [request.customerId])).get(request.customerId)
    : undefined;
  const prepared = prepare(request, stored, deps);
  const probability = await model.scorer.scoreOne(prepared.vector);
  return respond(prepared, probability, model, requestId);
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
  const parsed = batchRequestSchema.safeParse(body);
  if (!parsed.success) throw new ValidationError('the request body is invalid', issuesOf(parsed.error));
  const model = await deps.models.require();
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
  const x = new Float32Array(ready.length * FEATURE_COUNT);
  ready.forEach((p, i) => {
    x.set(p.vector, i * FEATURE_COUNT);
  });
  const probabilities =
    ready.length > 0 ? await model.scorer.scoreBatch(x, ready.length) : new Float64Array();
  let next = 0;
  return prepared.map((p) =>
    p instanceof KeelError
      ? { ok: false, error: p }
      : { ok: true, prediction: respond(p, probabilities[next++]!, model, requestId) },
  );
}

export async function health(
  deps: InferenceDeps,
): Promise<{ status: 'ok'; model: { name: string; version: string } }> {
  const model = await deps.models.require();
  return { status: 'ok', model: { name: model.name, version: model.version } };
}
