import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import {
  batchCaptureLine,
  CAPTURE_FILTER_PATTERN,
  captureLine,
  captureRecord,
  createPredictionCapture,
  parseCaptureLine,
} from '#shared/inference/capture.ts';
import { servedPrediction } from '../../support/capture.ts';
import {
  apiEvent,
  customerAttributes,
  fixedScoreModels,
  lambdaContext,
  predictHandlerOver,
} from '../../support/predict-handler.ts';

/**
 * Prediction capture on the request path, as Lambda runs it: the handler's promise resolves and the
 * environment freezes (no timer fires, no pending promise runs until the next invocation, which may
 * never come). Every sampled prediction must already be out of the process by then.
 */
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Collects what the process writes to stdout from now on (nothing reaches the console). */
function stdoutChunks(): string[] {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    chunks.push(String(chunk));
    return true;
  });
  return chunks;
}

/** The capture lines among the chunks, each of which must be one whole line with its newline. */
const captureLines = (chunks: string[]) =>
  chunks
    .filter((chunk) => chunk.endsWith('\n') && parseCaptureLine(chunk.slice(0, -1)))
    .map((chunk) => chunk.slice(0, -1));

/** The predict handler as the Lambda entry builds it, capturing every prediction (the model is a stub). */
function predictHandler() {
  const { handler, capture } = predictHandlerOver(fixedScoreModels(), { sampleRate: 1 });
  return { handler, capture: capture! };
}

describe('prediction capture in a Lambda-like environment', () => {
  it('writes each capture line before the handler resolves, leaving no timer or buffer behind', async () => {
    const { handler, capture } = predictHandler();
    const stdout = stdoutChunks();
    // Frozen: from here no timer would ever fire.
    vi.useFakeTimers();
    const response = await handler(
      apiEvent('/predict', { customerId: 'c-1', attributes: customerAttributes }),
      lambdaContext,
    );
    expect(response.statusCode).toBe(200);
    // Already delivered, synchronously: nothing was left for a timer or a later invocation.
    const sink = captureLines(stdout);
    expect(sink).toHaveLength(1);
    expect(sink[0]).toMatch(/^\{"keel_capture":1,.*\}$/);
    expect(vi.getTimerCount()).toBe(0);
    expect(parseCaptureLine(sink[0]!)).toMatchObject({
      source: 'api',
      requestId: 'api-1',
      customerId: 'c-1',
      model: 'churn',
      version: 'v3',
      probability: 0.8,
      prediction: 1,
    });
    expect(parseCaptureLine(sink[0]!)!.x).toHaveLength(FEATURE_COUNT);

    const batch = await handler(
      apiEvent('/predict/batch', {
        items: [
          { customerId: 'c-2', attributes: customerAttributes },
          { customerId: 'c-3', attributes: customerAttributes },
        ],
      }),
      lambdaContext,
    );
    expect(batch.statusCode).toBe(200);
    expect(captureLines(stdout).map((line) => parseCaptureLine(line)!.customerId)).toEqual([
      'c-1',
      'c-2',
      'c-3',
    ]);
    expect(vi.getTimerCount()).toBe(0);
    expect(capture.stats()).toEqual({ sampled: 3 });
  });

  it('samples by rate: 0 captures nothing, 0.5 what the random draw lets through', () => {
    const stdout = stdoutChunks();
    const served = (i: number) => servedPrediction({ customerId: `c-${i}` });
    const off = createPredictionCapture({ sampleRate: 0 });
    for (let i = 0; i < 10; i++) off.record(served(i));
    expect(stdout).toEqual([]);
    let draw = 0;
    const half = createPredictionCapture({ sampleRate: 0.5, random: () => (draw++ % 2) * 0.9 });
    for (let i = 0; i < 10; i++) half.record(served(i));
    expect(half.stats()).toEqual({ sampled: 5 });
    expect(captureLines(stdout).map((line) => parseCaptureLine(line)!.customerId)).toEqual([
      'c-0',
      'c-2',
      'c-4',
      'c-6',
      'c-8',
    ]);
  });
});

describe('capture during a rollout', () => {
  it("keeps a shadow's score and features beside the champion's answer, in the same write, marked as never served", () => {
    const stdout = stdoutChunks();
    const shadowVector = new Float32Array(FEATURE_COUNT + 1).fill(0.25);
    const capture = createPredictionCapture({ sampleRate: 1, now: () => new Date('2026-03-04T05:06:07Z') });
    capture.record(
      servedPrediction({
        rollout: {
          id: 'r-0123456789ab',
          variant: 'champion',
          // Its own definition's features: one more than the champion's, other values.
          shadow: { version: 'v2', probability: 0.9, prediction: 1, vector: shadowVector },
        },
      }),
    );
    capture.record(
      servedPrediction({
        model: { name: 'churn', version: 'v2' },
        rollout: { id: 'r-0123456789ab', variant: 'canary' },
      }),
    );
    expect(stdout).toHaveLength(2);
    const [shadowed, canary] = stdout.map((chunk) =>
      chunk
        .trimEnd()
        .split('\n')
        .map((line) => parseCaptureLine(line)),
    );
    expect(shadowed).toEqual([
      expect.objectContaining({
        version: 'v1',
        probability: 0.5,
        rollout: 'r-0123456789ab',
        variant: 'champion',
      }),
      expect.objectContaining({
        version: 'v2',
        probability: 0.9,
        prediction: 1,
        rollout: 'r-0123456789ab',
        variant: 'shadow',
      }),
    ]);
    expect(shadowed![0]!.x).toEqual(Array.from(servedPrediction().vector));
    expect(shadowed![1]!.x).toEqual(Array.from(shadowVector));
    expect(shadowed![1]!.requestId).toBe(shadowed![0]!.requestId);
    expect(canary).toEqual([
      expect.objectContaining({ version: 'v2', rollout: 'r-0123456789ab', variant: 'canary' }),
    ]);
  });
});

describe('capture lines', () => {
  const record = captureRecord(servedPrediction(), new Date('2026-03-04T05:06:07Z'), 'api');

  it('are told apart from every other line of stdout, as the subscription filter pattern does', () => {
    expect(CAPTURE_FILTER_PATTERN).toBe('{ $.keel_capture = 1 }');
    expect(parseCaptureLine(captureLine(record))).toEqual({ keel_capture: 1, ...record });
    for (const other of [
      '{"level":"INFO","message":"model loaded","service":"keel"}',
      '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"Latency":3}',
      // A log line that mentions the marker is not a capture line.
      '{"level":"WARN","message":"keel_capture is off"}',
      '{"keel_capture":"1","t":"x"}',
      '{"keel_capture":1',
      'START RequestId: 1 Version: $LATEST',
      '',
    ]) {
      expect(parseCaptureLine(other), other).toBeUndefined();
    }
  });
});

describe('batch capture lines', () => {
  const context = {
    at: new Date('2026-03-04T05:06:07.089Z'),
    requestId: '20260304T050607Z-9a4dace1',
    model: { name: 'churn', version: 'v12' },
  };
  const line = batchCaptureLine(context);
  /** What the line must be: the JSON of the batch record, as any reader of a capture object parses it. */
  const expected = (record: Parameters<typeof line>[0]) =>
    `${JSON.stringify(captureRecord({ ...record, requestId: context.requestId, model: context.model }, context.at, 'batch'))}\n`;

  it('writes a scored row exactly as the JSON of its capture record (golden line)', () => {
    const record = {
      customerId: 'c-000001',
      probability: 0.123456789,
      prediction: 0,
      vector: Float32Array.of(43, 49313.94140625, 10.80598258972168, 0.5, 0, 1),
      storedEventTime: '2026-11-30T05:06:23.000Z',
    };
    expect(line(record)).toBe(
      '{"t":"2026-03-04T05:06:07.089Z","source":"batch","requestId":"20260304T050607Z-9a4dace1","customerId":"c-000001","model":"churn","version":"v12","probability":0.123456789,"prediction":0,"x":[43,49313.94140625,10.80598258972168,0.5,0,1],"eventTime":"2026-11-30T05:06:23.000Z"}\n',
    );
    expect(line(record)).toBe(expected(record));
  });

  it('escapes and formats as JSON does: quotes, control characters, non-finite numbers, -0, no event time', () => {
    const cases = [
      { customerId: 'a"b\\c\n\u0001é😀', storedEventTime: 'x"y' },
      { customerId: 'plain', storedEventTime: undefined },
      { customerId: 'empty-time', storedEventTime: '' },
    ];
    const vector = Float32Array.of(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      1e-45,
      3.4e38,
      -7.25,
    );
    for (const { customerId, storedEventTime } of cases) {
      const record = { customerId, probability: Number.NaN, prediction: 1, vector, storedEventTime };
      expect(line(record), customerId).toBe(expected(record));
      expect(JSON.parse(line(record))).toEqual(JSON.parse(expected(record)));
    }
  });

  it('matches the record JSON over many scored rows of generated customers', () => {
    const x = new Float32Array(FEATURE_COUNT);
    let rows = 0;
    for (const { churned: _label, ...customer } of generateRecords({
      rows: 500,
      seed: 11,
      asOf: new Date('2026-03-01'),
    })) {
      expect(FEATURE_SET.encodeInto(customer, x, 0)).toBeUndefined();
      const probability = (rows * 0.618033988749895) % 1;
      const record = {
        customerId: customer.customer_id,
        probability,
        prediction: probability >= 0.5 ? 1 : 0,
        vector: x,
        storedEventTime: customer.event_time,
      };
      expect(line(record)).toBe(expected(record));
      rows++;
    }
    expect(rows).toBe(500);
  });
});
