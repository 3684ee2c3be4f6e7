import { describe, expect, it } from 'vitest';
import { dynamoRequestActions, s3RequestActions } from '#local/rules/requests.ts';

/** Golden vectors: the S3 and DynamoDB requests Keel's SDK clients send, and the IAM actions AWS authorizes for each. */
const s3 = (method: string, target: string, headers: Record<string, string> = {}, deleteKeys?: string[]) => {
  const url = new URL(target, 'http://local');
  return s3RequestActions({ method, path: url.pathname, query: url.searchParams, headers, deleteKeys });
};
const ENV = { account: '000000000000', region: 'us-east-1' };
const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table';

describe('S3 requests as IAM actions', () => {
  it.each([
    ['GET', '/b/raw/x.csv', 's3:GetObject', 'arn:aws:s3:::b/raw/x.csv'],
    ['HEAD', '/b/models/churn/v1/model.onnx', 's3:GetObject', 'arn:aws:s3:::b/models/churn/v1/model.onnx'],
    ['PUT', '/b/features/a%20b.parquet', 's3:PutObject', 'arn:aws:s3:::b/features/a b.parquet'],
    ['POST', '/b/big.csv?uploads', 's3:PutObject', 'arn:aws:s3:::b/big.csv'],
    ['PUT', '/b/big.csv?partNumber=1&uploadId=u', 's3:PutObject', 'arn:aws:s3:::b/big.csv'],
    ['POST', '/b/big.csv?uploadId=u', 's3:PutObject', 'arn:aws:s3:::b/big.csv'],
    ['DELETE', '/b/big.csv?uploadId=u', 's3:AbortMultipartUpload', 'arn:aws:s3:::b/big.csv'],
    ['DELETE', '/b/x', 's3:DeleteObject', 'arn:aws:s3:::b/x'],
    ['GET', '/b/x?tagging', 's3:GetObjectTagging', 'arn:aws:s3:::b/x'],
    ['GET', '/', 's3:ListAllMyBuckets', '*'],
    ['PUT', '/b', 's3:CreateBucket', 'arn:aws:s3:::b'],
  ])('%s %s → %s on %s', (method, target, action, resource) => {
    expect(s3(method, target)).toEqual([expect.objectContaining({ action, resource })]);
  });

  it('lists a bucket (with or without the trailing slash the SDK sends) with the prefix as s3:prefix', () => {
    for (const target of ['/b/?list-type=2&prefix=raw%2F', '/b?list-type=2&prefix=raw%2F']) {
      expect(s3('GET', target)).toEqual([
        { action: 's3:ListBucket', resource: 'arn:aws:s3:::b', context: { 's3:prefix': 'raw/' } },
      ]);
    }
    expect(s3('GET', '/b/?list-type=2')[0]!.context).toEqual({ 's3:prefix': '' });
  });

  it('a copy reads its source and writes its destination', () => {
    expect(s3('PUT', '/b/dest', { 'x-amz-copy-source': '/src/a%2Fb?versionId=1' })).toEqual([
      { action: 's3:PutObject', resource: 'arn:aws:s3:::b/dest' },
      { action: 's3:GetObject', resource: 'arn:aws:s3:::src/a/b' },
    ]);
  });

  it('a multi-object delete deletes each key it names', () => {
    expect(s3('POST', '/b?delete', {}, ['k1', 'k2'])).toEqual([
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/k1' },
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/k2' },
    ]);
  });
});

describe('DynamoDB requests as IAM actions', () => {
  it.each([
    ['GetItem', { TableName: 't' }, [`dynamodb:GetItem ${TABLE}/t`]],
    ['Query', { TableName: 't', IndexName: 'i' }, [`dynamodb:Query ${TABLE}/t/index/i`]],
    ['Scan', { TableName: `${TABLE}/t` }, [`dynamodb:Scan ${TABLE}/t`]],
    [
      'BatchWriteItem',
      { RequestItems: { a: [], b: [] } },
      [`dynamodb:BatchWriteItem ${TABLE}/a`, `dynamodb:BatchWriteItem ${TABLE}/b`],
    ],
    ['BatchGetItem', { RequestItems: { a: {} } }, [`dynamodb:BatchGetItem ${TABLE}/a`]],
    [
      'TransactWriteItems',
      { TransactItems: [{ Put: { TableName: 'a' } }, { ConditionCheck: { TableName: 'b' } }] },
      [`dynamodb:PutItem ${TABLE}/a`, `dynamodb:ConditionCheckItem ${TABLE}/b`],
    ],
    ['ListTables', {}, ['dynamodb:ListTables *']],
  ])('%s', (operation, body, expected) => {
    const actions = dynamoRequestActions(`DynamoDB_20120810.${operation}`, body, ENV);
    expect(actions.map((a) => `${a.action} ${a.resource}`)).toEqual(expected);
  });
});
