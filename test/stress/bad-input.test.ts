import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { HTTP_STATUS } from '#shared/errors.ts';
import { FEATURE_FIELD_NAMES } from '#shared/features/index.ts';
import { MAX_BODY_BYTES } from '#shared/http/responses.ts';
import { MAX_BATCH_ITEMS } from '#shared/inference/schemas.ts';
import { collectGarbage } from '../../bench/util.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { startTestAws, type TestAws } from '../support/aws.ts';
import { promoteVersion, registerTrainedModel } from '../support/model.ts';

/**
 * Thousands of generated malformed and hostile requests against the local API over real HTTP: every
 * answer is a 4xx with the contract's error body (or, for a well-formed batch of bad items, a 200 whose
 * every result is such an error), never a 5xx, and the server neither dies nor keeps the garbage.
 * The server runs in this process so that heap in use after a full GC measures the server itself.
 */
let aws: TestAws;
let api: TestApi;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

beforeAll(async () => {
  aws = await startTestAws();
  const customers = [...generateRecords({ rows: 600, seed: 5, asOf: new Date() })];
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 5 });
  await promoteVersion(aws, version);
  api = await startTestApi(aws);
});
afterAll(async () => {
  agent.destroy();
  await api?.close();
  await aws?.close();
});

interface HostileRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array | undefined;
  /** A batch whose envelope is valid: 200, and every item answered with an error. */
  readonly batchOfBadItems?: boolean;
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

function send(req: HostileRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: '127.0.0.1',
        port: api.server.port,
        path: req.path,
        method: req.method,
        // Node frames a GET or DELETE body with no length at all: say it, as any client must.
        headers:
          req.body === undefined
            ? req.headers
            : { ...req.headers, 'content-length': Buffer.byteLength(req.body) },
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(req.body);
  });
}

// ---- arbitraries: every one of them is invalid by construction ----

const CODES = Object.keys(HTTP_STATUS) as (keyof typeof HTTP_STATUS)[];
const validId = fc.stringMatching(/^c-\d{6}$/);
const jsonScalar = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 40 }),
);
const jsonValue = fc.oneof(
  { depthSize: 'small' },
  jsonScalar,
  fc.array(jsonScalar, { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 10 }), jsonScalar, { maxKeys: 5 }),
);
const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(jsonScalar, { maxLength: 3 }),
);
const badId = fc.oneof(
  notAString,
  fc.constantFrom('', ' ', '-leading-dash', 'c 000001', 'c-0001/../x', '<script>', 'x'.repeat(65), 'ç-1'),
);
const FIELDS = FEATURE_FIELD_NAMES;
/** One attribute value outside its field's domain. */
const badAttribute = fc.oneof(
  fc.record({
    field: fc.constant('age'),
    value: fc.oneof(fc.integer({ max: 17 }), fc.integer({ min: 101 })),
  }),
  fc.record({
    field: fc.constantFrom('income', 'tenure_months', 'total_spend', 'days_since_last_order'),
    value: fc.double({ max: -Number.MIN_VALUE, noNaN: true }),
  }),
  fc.record({
    field: fc.constantFrom('orders', 'support_tickets_90d'),
    value: fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ min: 0.001, max: 1e6, noNaN: true }).filter((v) => !Number.isInteger(v)),
      fc.constant(2 ** 60),
    ),
  }),
  fc.record({
    field: fc.constantFrom('plan', 'region'),
    value: fc.oneof(notAString, fc.constantFrom('', 'Premium', 'PLAN', '1basic', 'a'.repeat(33), 'dé')),
  }),
  fc.record({
    field: fc.constantFrom(...FIELDS.filter((f) => f !== 'plan' && f !== 'region')),
    value: fc.oneof(fc.string({ maxLength: 12 }), fc.boolean(), fc.constant(null), fc.array(fc.integer())),
  }),
);
const badPredictObject: fc.Arbitrary<unknown> = fc.oneof(
  // customerId missing (arbitrary other keys)
  fc.dictionary(
    fc.string({ maxLength: 12 }).filter((k) => k !== 'customerId'),
    jsonValue,
    { maxKeys: 4 },
  ),
  // customerId of the wrong type or shape
  fc.record({ customerId: badId }),
  // an unknown key beside a valid request
  fc
    .record({ customerId: validId, key: fc.string({ minLength: 1, maxLength: 12 }), value: jsonValue })
    .filter(({ key }) => key !== 'customerId' && key !== 'attributes')
    .map(({ customerId, key, value }) => ({ customerId, [key]: value })),
  // attributes that are not an object
  fc.record({ customerId: validId, attributes: fc.oneof(notAString, fc.string()) }),
  // one bad attribute, one unknown attribute key
  fc
    .record({ customerId: validId, bad: badAttribute, age: fc.integer({ min: 18, max: 100 }) })
    .map(({ customerId, bad, age }) => ({ customerId, attributes: { age, [bad.field]: bad.value } })),
  fc
    .record({ customerId: validId, key: fc.string({ minLength: 1, maxLength: 20 }) })
    .filter(({ key }) => !(FIELDS as readonly string[]).includes(key))
    .map(({ customerId, key }) => ({ customerId, attributes: { [key]: 1 } })),
  // not an object at all
  notAString,
  fc.string(),
);

const nested = (depth: number, open: string, close: string) => `${open.repeat(depth)}1${close.repeat(depth)}`;
const MAX_DEPTH = 200_000;
const MAX_OVERSIZE = MAX_BODY_BYTES + 64 * 1024;
const oversized = (size: number) => `{"customerId":"c-000001","pad":"${'x'.repeat(size - 32)}"}`;
const nestedBodies = (depth: number) => [
  nested(depth, '[', ']'),
  nested(depth, '{"a":', '}'),
  `{"customerId":"c-000001","attributes":${nested(depth, '{"x":', '}')}}`,
];
/** Bodies that are not JSON (or not text), sent raw. */
const badRawBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.constantFrom('', ' ', 'null', '{', '{"customerId":', '{"customerId":"c-000001",}', "{'customerId':1}"),
  fc
    .constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1e999999', 'undefined', '0x10')
    .map((n) => `{"customerId":"c-000001","attributes":{"income":${n}}}`),
  fc
    .constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1e999999', 'undefined', '0x10')
    .map((n) => `{"customerId":"c-000001","attributes":{"orders":${n}}}`),
  fc.integer({ min: 1_000, max: MAX_DEPTH }).chain((depth) => fc.constantFrom(...nestedBodies(depth))),
  // invalid UTF-8 somewhere in an otherwise plausible body
  fc
    .record({
      at: fc.nat({ max: 30 }),
      bad: fc.constantFrom(
        [0xff],
        [0xc3, 0x28],
        [0xe2, 0x82],
        [0xed, 0xa0, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
      ),
    })
    .map(({ at, bad }) => {
      const text = Buffer.from('{"customerId":"c-000001","attributes":{"plan":"basic"}}');
      const cut = Math.min(at, text.byteLength);
      return Buffer.concat([text.subarray(0, cut), Buffer.from(bad), text.subarray(cut)]);
    }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Uint8Array.from([0xff, ...bytes])),
  // just over the handler's limit (API Gateway's own 10 MB limit is the contract test's)
  fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_OVERSIZE }).map(oversized),
);

/**
 * The largest requests the arbitraries can make. Sent PER_RUN at a time during the warm-up, they take
 * the allocator to the peak the random runs could reach, so a later rise of RSS is growth, not the
 * first draw of the largest body (which half the time falls in the second half of the run).
 */
const worstCases: HostileRequest[] = [oversized(MAX_OVERSIZE), ...nestedBodies(MAX_DEPTH)].map((body) => ({
  method: 'POST',
  path: '/predict',
  headers: { 'content-type': 'application/json' },
  body,
}));

const jsonTypes: fc.Arbitrary<Record<string, string>> = fc.constantFrom<Record<string, string>>(
  { 'content-type': 'application/json' },
  { 'content-type': 'application/json; charset=utf-8' },
  { 'content-type': 'text/plain' },
  { 'content-type': 'application/x-www-form-urlencoded' },
  { 'content-type': 'multipart/form-data; boundary=x' },
  { 'content-type': 'application/octet-stream' },
  { 'content-type': 'application/json; charset=latin1' },
  {},
);

const predictPath: fc.Arbitrary<string> = fc.constantFrom(
  '/predict',
  '/predict/',
  '/predict?x=1',
  '/predict?customerId=c-000001',
);
const batchPath: fc.Arbitrary<string> = fc.constantFrom(
  '/predict/batch',
  '/predict/batch/',
  '/predict/batch?items=1',
);

const badPredict: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.constant('POST'),
  path: predictPath,
  headers: jsonTypes,
  body: fc.oneof(
    { weight: 3, arbitrary: badPredictObject.map((value) => JSON.stringify(value) ?? '') },
    { weight: 2, arbitrary: badRawBody },
  ),
});

const badBatchEnvelope: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.constant('POST'),
  path: batchPath,
  headers: jsonTypes,
  body: fc.oneof(
    fc.constant(JSON.stringify({ items: [] })),
    fc
      .integer({ min: MAX_BATCH_ITEMS + 1, max: MAX_BATCH_ITEMS + 50 })
      .map((n) => JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ customerId: `c-${i}` })) })),
    fc
      .oneof(
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.string(),
        fc.dictionary(fc.string(), jsonScalar),
      )
      .map((items) => JSON.stringify({ items })),
    fc.constant(JSON.stringify({ items: [{ customerId: 'c-000001' }], extra: 1 })),
    fc.constant(JSON.stringify({})),
    badRawBody,
  ),
});

const badBatchItems: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.constant('POST'),
  path: batchPath,
  headers: fc.constant({ 'content-type': 'application/json' }),
  body: fc
    .array(badPredictObject, { minLength: 1, maxLength: MAX_BATCH_ITEMS })
    .map((items) => JSON.stringify({ items })),
  batchOfBadItems: fc.constant(true),
});

const ROUTES = new Set(['POST /predict', 'POST /predict/batch', 'GET /health']);
const wrongRoute: fc.Arbitrary<HostileRequest> = fc
  .record({
    method: fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'POST'),
    path: fc.oneof(
      fc.constantFrom(
        '/predict',
        '/predict/batch',
        '/health',
        '/',
        '/predict/batch/x',
        '/%2e%2e/etc/passwd',
        '//[',
        '//example.com/predict',
        '/predict%00',
        '*',
      ),
      fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
    ),
    headers: jsonTypes,
    body: fc.option(fc.constant('{"customerId":"c-000001"}'), { nil: undefined }),
  })
  .filter(({ method, path }) => {
    if (!URL.canParse(path, 'http://x')) return true;
    const pathname = new URL(path, 'http://x').pathname.replace(/\/+$/, '') || '/';
    return !ROUTES.has(`${method} ${pathname}`);
  });

/** Counterexamples print short: method, path, content type and the body's first bytes. */
function shortened(req: HostileRequest): HostileRequest {
  const head = Buffer.from(req.body ?? '').subarray(0, 120);
  const size = Buffer.byteLength(req.body ?? '');
  const text = `${req.method} ${req.path} [${req.headers['content-type'] ?? 'no content-type'}] ${size} bytes: ${JSON.stringify(head.toString('latin1'))}`;
  return Object.assign(Object.create(null), req, { [fc.toStringMethod]: () => text });
}

const weighted = (weight: number, arbitrary: fc.Arbitrary<HostileRequest>) => ({ weight, arbitrary });
const hostileRequest: fc.Arbitrary<HostileRequest> = fc
  .oneof(
    weighted(6, badPredict),
    weighted(2, badBatchEnvelope),
    weighted(1, badBatchItems),
    weighted(2, wrongRoute),
  )
  .map(shortened);

type ErrorShape = { error: { code: string; message: string; details?: unknown } };
function expectContractError(body: unknown): asserts body is ErrorShape {
  expect(body).toEqual({
    error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
  });
  const { error } = body as ErrorShape;
  expect(Object.keys(error).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
  expect(CODES).toContain(error.code);
}

/** The invariant of every hostile request. */
function check(req: HostileRequest, answer: Answer): void {
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    throw new Error('the body is not JSON');
  }
  if (req.batchOfBadItems) {
    expect(answer.status).toBe(200);
    const { results } = body as { results: unknown[] };
    expect(results).toHaveLength((JSON.parse(req.body as string) as { items: unknown[] }).items.length);
    for (const result of results) {
      expectContractError(result);
      expect(HTTP_STATUS[result.error.code as keyof typeof HTTP_STATUS]).toBeLessThan(500);
    }
    return;
  }
  expect(answer.status).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  expectContractError(body);
  expect(HTTP_STATUS[body.error.code as keyof typeof HTTP_STATUS]).toBe(answer.status);
}

const REQUESTS = Number(process.env.KEEL_STRESS_REQUESTS ?? 10_000);
const PER_RUN = 20;

const mb = (bytes: number) => bytes / 2 ** 20;

function memoryAfterGc() {
  collectGarbage();
  const { heapUsed, external, rss } = process.memoryUsage();
  return { heapMb: mb(heapUsed), externalMb: mb(external), rssMb: mb(rss) };
}

describe('hostile requests against the local API', () => {
  it(`answers ${REQUESTS} generated malformed requests with 4xx contract errors, and keeps its memory`, async () => {
    let sent = 0;
    /** The highest RSS sampled after a run in the current phase (MB). */
    let peakRssMb = 0;
    const statuses = new Map<number, number>();
    const property = fc.asyncProperty(
      fc.array(hostileRequest, { minLength: PER_RUN, maxLength: PER_RUN }),
      async (reqs) => {
        const answers = await Promise.all(reqs.map(send));
        sent += reqs.length;
        reqs.forEach((req, i) => {
          const answer = answers[i]!;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          try {
            check(req, answer);
          } catch (error) {
            throw new Error(`${fc.stringify(req)} → ${answer.status} ${answer.text.slice(0, 300)}`, {
              cause: error,
            });
          }
        });
        peakRssMb = Math.max(peakRssMb, mb(process.memoryUsage.rss()));
      },
    );
    // Warm-up (JIT, lazily loaded modules, socket pool, allocator arenas at their peak for the 1 MB
    // bodies and the deepest parses), then two equal halves: heap in use must not grow, and the process
    // must have reached its plateau.
    for (const worst of worstCases) {
      const answers = await Promise.all(Array.from({ length: PER_RUN }, () => send(worst)));
      for (const answer of answers) check(worst, answer);
    }
    await fc.assert(property, { numRuns: 25 });
    const before = memoryAfterGc();
    peakRssMb = 0;
    await fc.assert(property, { numRuns: Math.ceil(REQUESTS / PER_RUN / 2) });
    const middle = { ...memoryAfterGc(), peakRssMb };
    peakRssMb = 0;
    await fc.assert(property, { numRuns: Math.ceil(REQUESTS / PER_RUN / 2) });
    const after = { ...memoryAfterGc(), peakRssMb };

    expect(sent).toBeGreaterThanOrEqual(REQUESTS);
    const health = await send({ method: 'GET', path: '/health', headers: {}, body: undefined });
    expect(health.status).toBe(200);
    console.log(
      `hostile requests: ${sent} sent, statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `after GC, before → middle → after: ${[before, middle, after]
          .map(
            (m) =>
              `heap ${m.heapMb.toFixed(1)} external ${m.externalMb.toFixed(1)} RSS ${m.rssMb.toFixed(0)} MB`,
          )
          .join(
            ' → ',
          )}; peak RSS of each half ${middle.peakRssMb.toFixed(0)} → ${after.peakRssMb.toFixed(0)} MB`,
    );
    // A leak of even 1 KB per request would add ~10 MB of heap.
    expect(after.heapMb - before.heapMb).toBeLessThan(8);
    // Buffers of in-flight 1 MB bodies come and go (tens of MB); keeping each would be hundreds.
    expect(after.externalMb - before.externalMb).toBeLessThan(32);
    // RSS keeps what the allocator once used (1 MB bodies, deep parses) and gives some back when it
    // trims, so a sample after GC moves tens of MB either way: the check is the plateau, the peak of
    // the second half against the peak of the first (the warm-up reached the largest request's peak).
    expect(after.peakRssMb - middle.peakRssMb).toBeLessThan(0.1 * middle.peakRssMb);
  }, 300_000);
});
