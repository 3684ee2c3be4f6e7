import {
  InvokeEndpointCommand,
  type InvokeEndpointCommandOutput,
  ModelError,
  ModelNotReadyException,
  SageMakerRuntimeClient,
  ServiceUnavailable,
  ValidationError,
} from '@aws-sdk/client-sagemaker-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { UnavailableError } from '#shared/errors.ts';
import {
  createSageMakerScorer,
  SageMakerInvocationError,
  SageMakerResponseError,
  type SageMakerScorerOptions,
} from '#shared/model/sagemaker-scorer.ts';

const ENDPOINT = 'keel-churn';
const client = new SageMakerRuntimeClient({ region: 'us-east-1' });
const sagemaker = mockClient(client);
afterEach(() => sagemaker.reset());

function scorer(options: Partial<SageMakerScorerOptions> = {}) {
  return createSageMakerScorer({ client, endpointName: ENDPOINT, featureCount: 3, ...options });
}

/** What the SDK hands back: the body as bytes, with the endpoint's content type. */
function answer(body: string, contentType = 'text/csv'): InvokeEndpointCommandOutput {
  return {
    Body: new TextEncoder().encode(body),
    ContentType: contentType,
    $metadata: {},
  } as InvokeEndpointCommandOutput;
}

function sentBodies(): string[] {
  return sagemaker
    .commandCalls(InvokeEndpointCommand)
    .map((call) => new TextDecoder().decode(call.args[0].input.Body as Uint8Array));
}

const ROWS = Float32Array.from([1, 0.1, -2.5, 0, 1e-7, 42]);

describe('createSageMakerScorer request', () => {
  it('sends the rows as headerless text/csv to the named endpoint, float32 values printed exactly', async () => {
    sagemaker.on(InvokeEndpointCommand).resolves(answer('0.25\n0.75\n'));
    await scorer().scoreBatch(ROWS, 2);
    const calls = sagemaker.commandCalls(InvokeEndpointCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toMatchObject({
      EndpointName: ENDPOINT,
      ContentType: 'text/csv',
      Accept: 'text/csv',
    });
    const [body] = sentBodies();
    expect(body).toBe(`1,${Math.fround(0.1)},-2.5\n0,${Math.fround(1e-7)},42`);
    // Parsing the CSV back as float32 gives the very same features.
    expect(Float32Array.from(body!.split(/[,\n]/), Number)).toEqual(ROWS);
  });

  it('asks for JSON when configured to', async () => {
    sagemaker
      .on(InvokeEndpointCommand)
      .resolves(answer('{"predictions":[{"score":0.5}]}', 'application/json'));
    await scorer({ accept: 'application/json' }).scoreOne(Float32Array.from([1, 2, 3]));
    expect(sagemaker.commandCalls(InvokeEndpointCommand)[0]!.args[0].input.Accept).toBe('application/json');
  });

  it('splits a batch larger than maxRowsPerRequest into calls, keeping the row order', async () => {
    sagemaker
      .on(InvokeEndpointCommand)
      .resolvesOnce(answer('0.1\n0.2'))
      .resolvesOnce(answer('0.3\n0.4'))
      .resolvesOnce(answer('0.5'));
    const x = Float32Array.from({ length: 15 }, (_, i) => i);
    const scores = await scorer({ maxRowsPerRequest: 2 }).scoreBatch(x, 5);
    expect(Array.from(scores)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(sentBodies()).toEqual(['0,1,2\n3,4,5', '6,7,8\n9,10,11', '12,13,14']);
  });

  it('makes no call for an empty batch', async () => {
    expect(await scorer().scoreBatch(new Float32Array(0), 0)).toEqual(new Float64Array(0));
    expect(sagemaker.commandCalls(InvokeEndpointCommand)).toHaveLength(0);
  });

  it('rejects a batch of the wrong shape and non-finite features before calling the endpoint', async () => {
    await expect(scorer().scoreBatch(new Float32Array(5), 2)).rejects.toThrow(
      'expected 2 rows x 3 features = 6 values, got 5',
    );
    await expect(scorer().scoreOne(Float32Array.from([1, Number.NaN, 3]))).rejects.toThrow(
      'row 0 feature 1 is NaN: features must be finite numbers',
    );
    expect(sagemaker.commandCalls(InvokeEndpointCommand)).toHaveLength(0);
  });

  it('refuses a configuration it cannot score with', () => {
    expect(() => scorer({ featureCount: 0 })).toThrow('featureCount must be a positive integer, got 0');
    expect(() => scorer({ maxRowsPerRequest: 0.5 })).toThrow(
      'maxRowsPerRequest must be a positive integer, got 0.5',
    );
  });
});

describe('createSageMakerScorer response', () => {
  it.each([
    ['newline-separated CSV', '0.125\n0.875\n', 'text/csv'],
    ['comma-separated CSV', '0.125,0.875', 'text/csv; charset=utf-8'],
    ['CRLF CSV', '0.125\r\n0.875\r\n', 'text/csv'],
    ['JSON predictions', '{"predictions":[{"score":0.125},{"score":0.875}]}', 'application/json'],
  ])('parses %s', async (_, body, contentType) => {
    sagemaker.on(InvokeEndpointCommand).resolves(answer(body, contentType));
    expect(Array.from(await scorer().scoreBatch(ROWS, 2))).toEqual([0.125, 0.875]);
  });

  it('parses by the requested format when the response has no content type', async () => {
    sagemaker
      .on(InvokeEndpointCommand)
      .resolves({ Body: new TextEncoder().encode('{"predictions":[{"score":1}]}'), $metadata: {} } as never);
    expect(await scorer({ accept: 'application/json' }).scoreOne(Float32Array.from([1, 2, 3]))).toBe(1);
  });

  it.each([
    ['too few CSV scores', '0.5', 'text/csv', 'returned 1 scores for 2 rows'],
    ['too many CSV scores', '0.5\n0.5\n0.5', 'text/csv', 'returned 3 scores for 2 rows'],
    ['an empty body', '', 'text/csv', 'returned 0 scores for 2 rows'],
    [
      'too few JSON scores',
      '{"predictions":[{"score":0.5}]}',
      'application/json',
      'returned 1 scores for 2 rows',
    ],
  ])('rejects %s', async (_, body, contentType, message) => {
    sagemaker.on(InvokeEndpointCommand).resolves(answer(body, contentType));
    const failure = scorer().scoreBatch(ROWS, 2);
    await expect(failure).rejects.toThrow(SageMakerResponseError);
    await expect(failure).rejects.toThrow(`SageMaker endpoint ${ENDPOINT} ${message}`);
  });

  it.each([
    ['a word in CSV', 'abc\n0.5', 'text/csv', '"abc" for row 0'],
    ['a value above 1', '0.5\n1.5', 'text/csv', '"1.5" for row 1'],
    ['a negative value', '-0.1,0.5', 'text/csv', '"-0.1" for row 0'],
    ['NaN', 'NaN\n0.5', 'text/csv', '"NaN" for row 0'],
    ['an empty CSV field', '0.5,', 'text/csv', '"" for row 1'],
    [
      'a string score in JSON',
      '{"predictions":[{"score":"0.5"},{"score":0.5}]}',
      'application/json',
      '"0.5" for row 0',
    ],
    [
      'a missing score in JSON',
      '{"predictions":[{"label":1},{"score":0.5}]}',
      'application/json',
      'undefined for row 0',
    ],
    [
      'JSON without predictions',
      '{"scores":[0.5,0.5]}',
      'application/json',
      'JSON without a "predictions" array',
    ],
    ['invalid JSON', '{"predictions":', 'application/json', 'returned invalid JSON'],
  ])('rejects %s, naming the value', async (_, body, contentType, message) => {
    sagemaker.on(InvokeEndpointCommand).resolves(answer(body, contentType));
    const failure = scorer().scoreBatch(ROWS, 2);
    await expect(failure).rejects.toThrow(SageMakerResponseError);
    await expect(failure).rejects.toThrow(message);
  });
});

describe('createSageMakerScorer service errors', () => {
  const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode }, message: 'm' });

  it.each([
    ['throttling', Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: {} })],
    ['an endpoint that is down', new ServiceUnavailable(meta(503) as never)],
    ['a model still loading', new ModelNotReadyException(meta(429) as never)],
    ['a network failure', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
  ])('reports %s as Unavailable (503, retryable)', async (_, error) => {
    sagemaker.on(InvokeEndpointCommand).rejects(error);
    const failure = scorer().scoreOne(Float32Array.from([1, 2, 3]));
    await expect(failure).rejects.toBeInstanceOf(UnavailableError);
    await expect(failure).rejects.toMatchObject({
      code: 'Unavailable',
      message: expect.stringContaining(`SageMaker endpoint ${ENDPOINT} is unavailable`),
      cause: error,
    });
  });

  it.each([
    [
      'an unknown endpoint',
      new ValidationError({ ...meta(400), message: 'Endpoint keel-churn not found.' } as never),
    ],
    [
      'a model error',
      new ModelError({ ...meta(424), message: 'Received client error (400) from model' } as never),
    ],
  ])('reports %s as a named internal error, not a retryable one', async (_, error) => {
    sagemaker.on(InvokeEndpointCommand).rejects(error);
    const failure = scorer().scoreOne(Float32Array.from([1, 2, 3]));
    await expect(failure).rejects.toBeInstanceOf(SageMakerInvocationError);
    await expect(failure).rejects.toMatchObject({
      code: 'Internal',
      message: expect.stringContaining(`SageMaker endpoint ${ENDPOINT} refused the request (${error.name})`),
    });
  });
});
