import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { KeelTable } from '#lib/constructs/keel-table.ts';
import { AccessLogsBucket, SecureBucket } from '#lib/constructs/secure-bucket.ts';
import type { KeelStackProps } from '#lib/stacks/common-props.ts';
import { CAPTURE_PREFIX } from '#shared/inference/capture.ts';
import {
  assertValidStage,
  BUCKET_ROLES,
  type BucketRole,
  resourceNames,
  TABLE_ROLES,
  type TableRole,
} from '#shared/resources.ts';
import { SAGEMAKER_PREFIX, SAGEMAKER_RUN_RETENTION_DAYS } from '#shared/training/sagemaker.ts';

/** Props of {@link DataStack}. */
export interface DataStackProps extends KeelStackProps {
  /**
   * Removal policy of every bucket and table. DESTROY suits throw-away stages: the buckets are emptied
   * before they are deleted, and the tables must be unprotected (see {@link deletionProtection}).
   *
   * @default - RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long the log group of the function that empties the buckets keeps its logs (DESTROY only).
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * DynamoDB deletion protection on both tables.
   *
   * @default - true
   */
  readonly deletionProtection?: boolean;
  /**
   * How long the S3 server access logs of the data buckets are kept.
   *
   * @default - 365 days
   */
  readonly accessLogsRetention?: Duration;
  /**
   * How long an overwritten or deleted model artifact (a non-current version in the models bucket)
   * stays recoverable.
   *
   * @default - 90 days
   */
  readonly modelVersionRetention?: Duration;
  /**
   * How long captured predictions (`captures/` in the outputs bucket, the drift job's input) are kept.
   *
   * @default - kept until deleted
   */
  readonly captureRetention?: Duration;
  /**
   * How long batch-scoring outputs (`predictions/` in the outputs bucket) are kept.
   *
   * @default - kept until deleted
   */
  readonly predictionRetention?: Duration;
  /**
   * Point-in-time recovery window of both tables, 1 to 35 days.
   *
   * @default - 35 days (DynamoDB's default)
   */
  readonly pointInTimeRecoveryDays?: number;
}

/** Key prefix of the batch-scoring outputs in the outputs bucket (`shared/batch/batch.ts`). */
const PREDICTIONS_PREFIX = 'predictions/';

const pascal = (role: string): string => role.charAt(0).toUpperCase() + role.slice(1);
const kebab = (role: string): string => role.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Keel's stateful resources: the data buckets, their access-log bucket and the DynamoDB tables,
 * named by `shared/resources.ts` so handlers, the CLI and the local platform agree on them.
 * The pipelines, inference and monitoring stacks take these as props.
 */
export class DataStack extends Stack {
  public readonly accessLogsBucket: IBucket;
  public readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  public readonly tables: Readonly<Record<TableRole, ITable>>;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    // Before super(): a bad stage must not leave a half-built stack in the app.
    assertValidStage(props.stage);
    super(scope, id, { description: `Keel ${props.stage}: data buckets and tables`, ...props });
    const { stage } = props;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const names = resourceNames({ stage, account: this.account, region: this.region });

    this.accessLogsBucket = new AccessLogsBucket(this, 'AccessLogs', {
      retention: props.accessLogsRetention,
      removalPolicy,
      logRetention: props.logRetention,
    }).bucket;
    this.output(
      'AccessLogsBucketName',
      this.accessLogsBucket.bucketName,
      `keel-${stage}-access-logs-bucket-name`,
    );

    const outputExpirations = [
      { prefix: CAPTURE_PREFIX, after: props.captureRetention },
      { prefix: PREDICTIONS_PREFIX, after: props.predictionRetention },
    ].flatMap(({ prefix, after }) => (after ? [{ prefix, after }] : []));
    const expirations: Partial<Record<BucketRole, { prefix: string; after: Duration }[]>> = {
      outputs: outputExpirations,
      features: [{ prefix: SAGEMAKER_PREFIX, after: Duration.days(SAGEMAKER_RUN_RETENTION_DAYS) }],
    };
    const buckets = {} as Record<BucketRole, IBucket>;
    for (const role of BUCKET_ROLES) {
      buckets[role] = new SecureBucket(this, `${pascal(role)}Bucket`, {
        bucketName: names[role],
        accessLogsBucket: this.accessLogsBucket,
        accessLogsPrefix: `${role}/`,
        // The model registry's artifacts: an overwritten or deleted version stays recoverable.
        versioned: role === 'models',
        noncurrentVersionExpiration: role === 'models' ? props.modelVersionRetention : undefined,
        expirations: expirations[role],
        removalPolicy,
        logRetention: props.logRetention,
      }).bucket;
      this.output(`${pascal(role)}BucketName`, buckets[role].bucketName, `keel-${stage}-${role}-bucket-name`);
    }
    this.buckets = buckets;

    const tables = {} as Record<TableRole, ITable>;
    for (const role of TABLE_ROLES) {
      tables[role] = new KeelTable(this, `${pascal(role)}Table`, {
        role,
        tableName: names[role],
        deletionProtection: props.deletionProtection,
        pointInTimeRecoveryDays: props.pointInTimeRecoveryDays,
        removalPolicy,
      }).table;
      this.output(
        `${pascal(role)}TableName`,
        tables[role].tableName,
        `keel-${stage}-${kebab(role)}-table-name`,
      );
    }
    this.tables = tables;
  }

  private output(id: string, value: string, exportName: string): void {
    new CfnOutput(this, id, { value, exportName });
  }
}
