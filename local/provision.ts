import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { BUCKET_ROLES, type ResourceNames, TABLE_ROLES, TABLES, type TableRole } from '#shared/resources.ts';

/** The CreateTable request for a table role, from the same key schema the CDK data stack uses. */
export function createTableInput(role: TableRole, name: string): CreateTableCommandInput {
  const keys: { partitionKey: string; sortKey?: string } = TABLES[role];
  const attributes = [keys.partitionKey, ...(keys.sortKey ? [keys.sortKey] : [])];
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: attributes.map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: keys.partitionKey, KeyType: 'HASH' },
      ...(keys.sortKey ? [{ AttributeName: keys.sortKey, KeyType: 'RANGE' as const }] : []),
    ],
  };
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return false;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 404) throw error;
  }
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return true;
}

async function ensureTable(dynamo: DynamoDBClient, role: TableRole, name: string): Promise<boolean> {
  try {
    await dynamo.send(new CreateTableCommand(createTableInput(role, name)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
    return false;
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

/**
 * Creates every bucket and table of {@link ResourceNames} that does not exist yet (idempotent), against
 * the embedded servers or any other endpoint (moto). Returns the names it created.
 */
export async function provisionResources(
  clients: { s3: S3Client; dynamo: DynamoDBClient },
  names: ResourceNames,
): Promise<string[]> {
  const created: string[] = [];
  for (const role of BUCKET_ROLES) {
    if (await ensureBucket(clients.s3, names[role])) created.push(names[role]);
  }
  for (const role of TABLE_ROLES) {
    if (await ensureTable(clients.dynamo, role, names[role])) created.push(names[role]);
  }
  return created;
}
