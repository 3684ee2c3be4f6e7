/**
 * What IAM sees in an S3 or DynamoDB request: the actions it authorizes, each on a resource ARN with
 * the request's condition keys. This is the table of the services' authorization reference
 * ("Actions, resources, and condition keys for Amazon S3 / DynamoDB"), for the calls an SDK makes.
 */

export interface RequestedAction {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string | string[]>>;
}

/** The S3 API a request (path-style, as the local clients send) calls, as IAM actions. */
export function s3RequestActions(request: {
  readonly method: string;
  /** The request path, still URL-encoded: `/bucket/key`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Keys named in the body of a multi-object delete (`POST /bucket?delete`). */
  readonly deleteKeys?: readonly string[];
}): RequestedAction[] {
  const { method, query } = request;
  const [bucketPart = '', ...keyParts] = request.path.replace(/^\//, '').split('/');
  const bucket = decodeURIComponent(bucketPart);
  const key = keyParts.map(decodeURIComponent).join('/');
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const objectArn = `${bucketArn}/${key}`;
  const has = (name: string) => query.has(name);

  if (bucket === '') return [{ action: 's3:ListAllMyBuckets', resource: '*' }];
  // The SDK lists with a trailing slash (`/bucket/?list-type=2`): still the bucket.
  if (key === '') {
    const listContext = {
      's3:prefix': query.get('prefix') ?? '',
      ...(query.has('delimiter') ? { 's3:delimiter': query.get('delimiter')! } : {}),
      ...(query.has('max-keys') ? { 's3:max-keys': query.get('max-keys')! } : {}),
    };
    switch (method) {
      case 'GET':
        if (has('uploads')) return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn }];
        if (has('versions'))
          return [{ action: 's3:ListBucketVersions', resource: bucketArn, context: listContext }];
        if (has('location')) return [{ action: 's3:GetBucketLocation', resource: bucketArn }];
        if (has('versioning')) return [{ action: 's3:GetBucketVersioning', resource: bucketArn }];
        if (has('policy')) return [{ action: 's3:GetBucketPolicy', resource: bucketArn }];
        return [{ action: 's3:ListBucket', resource: bucketArn, context: listContext }];
      case 'HEAD':
        return [{ action: 's3:ListBucket', resource: bucketArn }];
      case 'PUT':
        if (has('policy')) return [{ action: 's3:PutBucketPolicy', resource: bucketArn }];
        if (has('versioning')) return [{ action: 's3:PutBucketVersioning', resource: bucketArn }];
        return [{ action: 's3:CreateBucket', resource: bucketArn }];
      case 'DELETE':
        return [{ action: 's3:DeleteBucket', resource: bucketArn }];
      case 'POST':
        if (has('delete')) {
          return (request.deleteKeys ?? []).map((k) => ({
            action: 's3:DeleteObject',
            resource: `${bucketArn}/${k}`,
          }));
        }
        return [{ action: 's3:PutObject', resource: `${bucketArn}/` }];
    }
  }
  switch (method) {
    case 'GET':
    case 'HEAD': {
      if (has('uploadId')) return [{ action: 's3:ListMultipartUploadParts', resource: objectArn }];
      if (has('tagging')) return [{ action: 's3:GetObjectTagging', resource: objectArn }];
      if (has('acl')) return [{ action: 's3:GetObjectAcl', resource: objectArn }];
      if (has('attributes')) return [{ action: 's3:GetObjectAttributes', resource: objectArn }];
      return [{ action: has('versionId') ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn }];
    }
    case 'PUT': {
      if (has('tagging')) return [{ action: 's3:PutObjectTagging', resource: objectArn }];
      if (has('acl')) return [{ action: 's3:PutObjectAcl', resource: objectArn }];
      const source = headerValue(request.headers['x-amz-copy-source']);
      const copy = source
        ? [
            {
              action: 's3:GetObject',
              resource: `arn:aws:s3:::${decodeURIComponent(source.replace(/^\//, '').split('?')[0]!)}`,
            },
          ]
        : [];
      return [{ action: 's3:PutObject', resource: objectArn }, ...copy];
    }
    case 'POST':
      // Starting (`?uploads`) and completing (`?uploadId`) a multipart upload are both PutObject.
      return [{ action: 's3:PutObject', resource: objectArn }];
    case 'DELETE':
      if (has('uploadId')) return [{ action: 's3:AbortMultipartUpload', resource: objectArn }];
      return [
        { action: has('versionId') ? 's3:DeleteObjectVersion' : 's3:DeleteObject', resource: objectArn },
      ];
  }
  return [{ action: `s3:${method}`, resource: objectArn }];
}

/** Whether an S3 request is part of a multipart upload (which needs kms:Decrypt as well as GenerateDataKey). */
export function isMultipartRequest(query: URLSearchParams): boolean {
  return query.has('uploads') || query.has('uploadId');
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** DynamoDB operations whose IAM action is the operation's own name on the named table. */
const TABLE_OPERATIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'DescribeTable',
  'CreateTable',
  'DeleteTable',
  'UpdateTable',
  'DescribeTimeToLive',
  'UpdateTimeToLive',
  'DescribeContinuousBackups',
]);

/** The DynamoDB API a request calls (`X-Amz-Target: DynamoDB_20120810.<Operation>`), as IAM actions. */
export function dynamoRequestActions(
  target: string,
  body: Readonly<Record<string, unknown>>,
  env: { readonly account: string; readonly region: string },
): RequestedAction[] {
  const operation = target.slice(target.indexOf('.') + 1);
  const tableArn = (name: unknown) => {
    const table = String(name);
    return table.startsWith('arn:') ? table : `arn:aws:dynamodb:${env.region}:${env.account}:table/${table}`;
  };
  const on = (action: string, table: unknown, index?: unknown) => ({
    action: `dynamodb:${action}`,
    resource: index === undefined ? tableArn(table) : `${tableArn(table)}/index/${String(index)}`,
  });
  if (TABLE_OPERATIONS.has(operation)) return [on(operation, body.TableName, body.IndexName)];
  switch (operation) {
    case 'ListTables':
      return [{ action: 'dynamodb:ListTables', resource: '*' }];
    case 'BatchGetItem':
    case 'BatchWriteItem':
      return Object.keys((body.RequestItems ?? {}) as object).map((table) => on(operation, table));
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      const byKind: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      return ((body.TransactItems ?? []) as Record<string, { TableName?: unknown }>[]).flatMap((item) =>
        Object.entries(item).map(([kind, spec]) => on(byKind[kind] ?? kind, spec.TableName)),
      );
    }
    default:
      return [{ action: `dynamodb:${operation}`, resource: tableArn(body.TableName ?? '*') }];
  }
}
