/**
 * Scores through a SageMaker real-time endpoint instead of in-process onnxruntime. The wire format is
 * that of SageMaker's built-in XGBoost container (binary:logistic): a request of `text/csv` rows of the
 * features, no header, one row per line; a response of class-1 probabilities, either as CSV (one per
 * line, or comma-separated on one line) or as JSON `{"predictions": [{"score": p}, …]}`.
 */
import { InvokeEndpointCommand, type SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { isTransientAwsError } from '#shared/aws/errors.ts';
import { ConfigError, KeelError, UnavailableError } from '#shared/errors.ts';
import { checkBatchShape, type Scorer, ScoringInputError } from './scorer.ts';

export interface SageMakerScorerOptions {
  /** Owned by the caller (timeouts, retries, region); the scorer never destroys it. */
  readonly client: SageMakerRuntimeClient;
  readonly endpointName: string;
  readonly featureCount: number;
  /** Response format asked for with `Accept`; either is parsed, by the response's content type. */
  readonly accept?: 'text/csv' | 'application/json';
  /** Rows per InvokeEndpoint call; larger batches are split (the payload limit is 25 MB). Default 1000. */
  readonly maxRowsPerRequest?: number;
}

export interface SageMakerScorer extends Scorer {
  readonly kind: 'sagemaker';
  readonly endpointName: string;
}

/** The endpoint answered, but not with one probability in [0, 1] per row. */
export class SageMakerResponseError extends KeelError {
  readonly code = 'Internal';
}

/** The endpoint refused the call for a reason a retry will not fix (unknown endpoint, model error, access). */
export class SageMakerInvocationError extends KeelError {
  readonly code = 'Internal';
}

/** SageMaker's "try again" errors that the generic AWS check does not know (HTTP 424/429). */
const SAGEMAKER_TRANSIENT = new Set(['ModelNotReadyException']);

export function createSageMakerScorer(options: SageMakerScorerOptions): SageMakerScorer {
  const { client, endpointName, featureCount: F } = options;
  const accept = options.accept ?? 'text/csv';
  const maxRows = options.maxRowsPerRequest ?? 1000;
  if (!Number.isInteger(F) || F < 1) {
    throw new ConfigError(`featureCount must be a positive integer, got ${F}`);
  }
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new ConfigError(`maxRowsPerRequest must be a positive integer, got ${maxRows}`);
  }

  const invoke = async (x: Float32Array, firstRow: number, rows: number): Promise<Float64Array> => {
    let response: { Body?: Uint8Array; ContentType?: string };
    try {
      response = await client.send(
        new InvokeEndpointCommand({
          EndpointName: endpointName,
          ContentType: 'text/csv',
          Accept: accept,
          Body: new TextEncoder().encode(toCsv(x, firstRow, rows, F)),
        }),
      );
    } catch (error) {
      const name = (error as { name?: string }).name ?? 'Error';
      if (isTransientAwsError(error) || SAGEMAKER_TRANSIENT.has(name)) {
        throw new UnavailableError(
          `SageMaker endpoint ${endpointName} is unavailable (${name}); retry later`,
          {
            cause: error,
          },
        );
      }
      throw new SageMakerInvocationError(
        `SageMaker endpoint ${endpointName} refused the request (${name}): ${(error as Error).message}`,
        { cause: error },
      );
    }
    const text = new TextDecoder().decode(response.Body ?? new Uint8Array());
    const json = (response.ContentType ?? accept).includes('json');
    const scores = json ? parseJson(endpointName, text) : parseCsv(text);
    return checkProbabilities(endpointName, scores, rows, !json);
  };

  const scoreBatch = async (x: Float32Array, rows: number): Promise<Float64Array> => {
    checkBatchShape(x, rows, F);
    const out = new Float64Array(rows);
    for (let first = 0; first < rows; first += maxRows) {
      const count = Math.min(maxRows, rows - first);
      out.set(await invoke(x, first, count), first);
    }
    return out;
  };

  return {
    kind: 'sagemaker',
    featureCount: F,
    endpointName,
    scoreBatch,
    async scoreOne(x) {
      return (await scoreBatch(x, 1))[0]!;
    },
    // The client belongs to the caller, and an endpoint holds nothing per scorer.
    async release() {},
  };
}

/** Rows as CSV. A float32 widened to a double prints exactly, so the endpoint parses back the same float32. */
function toCsv(x: Float32Array, firstRow: number, rows: number, F: number): string {
  const lines: string[] = [];
  for (let r = firstRow; r < firstRow + rows; r++) {
    const row = x.subarray(r * F, (r + 1) * F);
    const bad = row.findIndex((v) => !Number.isFinite(v));
    if (bad !== -1) {
      // An empty CSV field would be read as "missing" by XGBoost: Keel's features never are.
      throw new ScoringInputError(`row ${r} feature ${bad} is ${row[bad]}: features must be finite numbers`);
    }
    lines.push(Array.from(row, String).join(','));
  }
  return lines.join('\n');
}

/** CSV tokens as strings (an empty field stays an empty, invalid, token); one trailing newline allowed. */
function parseCsv(text: string): string[] {
  const trimmed = text.replace(/\s+$/, '');
  return trimmed === '' ? [] : trimmed.split(/\r?\n/).flatMap((line) => line.split(',').map((t) => t.trim()));
}

function parseJson(endpointName: string, text: string): unknown[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new SageMakerResponseError(`SageMaker endpoint ${endpointName} returned invalid JSON`, { cause });
  }
  const predictions = (body as { predictions?: unknown } | null)?.predictions;
  if (!Array.isArray(predictions)) {
    throw new SageMakerResponseError(
      `SageMaker endpoint ${endpointName} returned JSON without a "predictions" array`,
      { details: { body: text.slice(0, 200) } },
    );
  }
  return predictions.map((p) => (p as { score?: unknown } | null)?.score);
}

/** One probability per row; CSV tokens are numbers in text, JSON scores must be JSON numbers. */
function checkProbabilities(
  endpointName: string,
  values: unknown[],
  rows: number,
  csv: boolean,
): Float64Array {
  if (values.length !== rows) {
    throw new SageMakerResponseError(
      `SageMaker endpoint ${endpointName} returned ${values.length} scores for ${rows} rows`,
    );
  }
  const out = new Float64Array(rows);
  values.forEach((value, i) => {
    const p = csv && typeof value === 'string' && value !== '' ? Number(value) : value;
    if (!(typeof p === 'number' && p >= 0 && p <= 1)) {
      throw new SageMakerResponseError(
        `SageMaker endpoint ${endpointName} returned ${JSON.stringify(value)} for row ${i}: expected a probability in [0, 1]`,
      );
    }
    out[i] = p;
  });
  return out;
}
