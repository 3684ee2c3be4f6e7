import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionOf, loadLocalDeployment } from '#local/deployment/deployment.ts';
import type { AwsClients } from '#shared/aws/clients.ts';
import { roleClients, startTestAws, type TestAws } from '../support/aws.ts';

/**
 * The rules proxies in front of the local S3 and DynamoDB (embedded or moto): a call signed with a
 * function's role session is allowed only if that role's synthesized policies allow it, and refused
 * with the error AWS returns (S3 AccessDenied, DynamoDB AccessDeniedException) naming action and
 * resource. The operator (no role session) is not checked.
 */
let aws: TestAws;
let chunk: AwsClients;
let predict: AwsClients;

beforeAll(async () => {
  aws = await startTestAws();
  const deployment = await loadLocalDeployment();
  const etlChunk = functionOf(deployment, 'lambdas/etl/handler.ts', 'chunk');
  const predictFn = functionOf(deployment, 'lambdas/predict/handler.ts');
  chunk = roleClients(aws.target, etlChunk.roleArn, etlChunk.name);
  predict = roleClients(aws.target, predictFn.roleArn, predictFn.name);
  await aws.clients.s3.send(
    new PutObjectCommand({ Bucket: aws.names.models, Key: 'models/churn/v1/model.onnx', Body: 'onnx' }),
  );
  await aws.clients.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/a.csv', Body: 'csv' }));
});
afterAll(async () => {
  for (const clients of [chunk, predict]) {
    clients?.s3.destroy();
    clients?.dynamo.destroy();
  }
  await aws?.close();
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: Error) => error,
  );

describe('S3 through the rules proxy', () => {
  it('allows what the role may do', async () => {
    const raw = await chunk.s3.send(new GetObjectCommand({ Bucket: aws.names.raw, Key: 'raw/a.csv' }));
    expect(await raw.Body?.transformToString()).toBe('csv');
    await chunk.s3.send(
      new PutObjectCommand({ Bucket: aws.names.features, Key: 'features/x.jsonl', Body: '{}' }),
    );
  });

  it('refuses the rest with AccessDenied naming the role session, the action and the object', async () => {
    const error = await failure(
      chunk.s3.send(new GetObjectCommand({ Bucket: aws.names.models, Key: 'models/churn/v1/model.onnx' })),
    );
    expect(error).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(error?.message).toMatch(
      new RegExp(
        `^User: arn:aws:sts::000000000000:assumed-role/[^/]+EtlChunk[^/]+/\\S+ is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::${aws.names.models}/models/churn/v1/model\\.onnx because no identity-based policy allows the s3:GetObject action$`,
      ),
    );
    const overwrite = await failure(
      chunk.s3.send(new PutObjectCommand({ Bucket: aws.names.raw, Key: 'raw/a.csv', Body: 'tampered' })),
    );
    expect(overwrite).toMatchObject({ name: 'AccessDenied' });
    const head = await failure(
      predict.s3.send(new HeadObjectCommand({ Bucket: aws.names.raw, Key: 'raw/a.csv' })),
    );
    expect(head).toMatchObject({ $metadata: { httpStatusCode: 403 } });
    // Nothing reached the emulator: the object is as it was.
    const raw = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.raw, Key: 'raw/a.csv' }));
    expect(await raw.Body?.transformToString()).toBe('csv');
  });

  it("lets the operator's own calls (no role session) through", async () => {
    const operator: S3Client = aws.clients.s3;
    await operator.send(
      new PutObjectCommand({ Bucket: aws.names.models, Key: 'models/other.txt', Body: 'ok' }),
    );
  });
});

describe('DynamoDB through the rules proxy', () => {
  it('refuses a write the role may not make with AccessDeniedException naming the action and the table', async () => {
    const error = await failure(
      predict.dynamo.send(
        new PutCommand({ TableName: aws.names.onlineFeatures, Item: { customer_id: 'c-000001', age: 40 } }),
      ),
    );
    expect(error).toMatchObject({ name: 'AccessDeniedException' });
    expect(error?.message).toContain(
      `is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/${aws.names.onlineFeatures}`,
    );
    const read = await predict.dynamo.send(
      new GetCommand({ TableName: aws.names.onlineFeatures, Key: { customer_id: 'c-000001' } }),
    );
    expect(read.Item).toBeUndefined();
  });

  it('allows the writes the ETL chunk role was granted', async () => {
    await chunk.dynamo.send(
      new PutCommand({ TableName: aws.names.onlineFeatures, Item: { customer_id: 'c-000002', age: 41 } }),
    );
    const read = await predict.dynamo.send(
      new GetCommand({ TableName: aws.names.onlineFeatures, Key: { customer_id: 'c-000002' } }),
    );
    expect(read.Item).toMatchObject({ age: 41 });
  });
});
