import { CfnResource, Duration, FeatureFlags, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type IBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { isKnown } from '#lib/prop-checks.ts';

/*
 * Encryption is SSE-S3, not KMS: S3 server access logs can only be delivered to an SSE-S3 bucket, and on
 * the data buckets a customer key would add a second permission gate (its key policy) at the price of
 * per-request KMS cost and a key grant for every consumer in the other stacks; bucket policies and IAM
 * grants are the gate Keel relies on.
 */

/** Days of incomplete multipart uploads to keep before S3 discards their parts (large CSV/ONNX uploads). */
const ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(7);

/** S3 "safe" key characters, as path segments, ending with `/` so each bucket's logs sit in a folder. */
const LOG_PREFIX_PATTERN = /^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*\/$/;

function assertWholeDays(owner: string, prop: string, value: Duration | undefined): void {
  if (!isKnown(value)) return;
  const days = value.toDays({ integral: false });
  if (!Number.isInteger(days) || days < 1) {
    throw new Error(
      `${owner}: ${prop} must be a whole number of days, at least 1 (got ${value.toHumanString()})`,
    );
  }
}

function assertSupportedRemovalPolicy(owner: string, policy: RemovalPolicy | undefined): void {
  if (policy === RemovalPolicy.SNAPSHOT) {
    throw new Error(`${owner}: removalPolicy SNAPSHOT is not supported by S3 buckets; use RETAIN or DESTROY`);
  }
}

/** Construct id of the function CDK adds to a stack for `autoDeleteObjects`, one per stack. */
const AUTO_DELETE_PROVIDER = 'Custom::S3AutoDeleteObjectsCustomResourceProvider';

/**
 * Gives the stack's auto-delete function a log group of the stack with a retention, as every Keel
 * function has: CDK's provider sets none, so Lambda would create `/aws/lambda/<name>`, never expiring.
 */
function logAutoDeletes(owner: string, scope: Construct, retention: RetentionDays): void {
  const stack = Stack.of(scope);
  if (stack.node.tryFindChild('AutoDeleteObjectsLogs')) return;
  const handler = stack.node.tryFindChild(AUTO_DELETE_PROVIDER)?.node.tryFindChild('Handler');
  if (!CfnResource.isCfnResource(handler)) {
    throw new Error(`${owner}: CDK's ${AUTO_DELETE_PROVIDER} has no Handler function: update this construct`);
  }
  const logs = new LogGroup(stack, 'AutoDeleteObjectsLogs', {
    retention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  handler.addPropertyOverride('LoggingConfig', { LogGroup: logs.logGroupName });
}

/** Props of {@link AccessLogsBucket}. */
export interface AccessLogsBucketProps {
  /**
   * How long server access log objects are kept before S3 expires them.
   *
   * @default - 365 days
   */
  readonly retention?: Duration;
  /**
   * What happens to the bucket when it leaves the stack. With DESTROY the bucket is emptied first
   * (CDK's `autoDeleteObjects`: a stack-wide function, allowed by the bucket policy to list and delete
   * every object and version, runs when the bucket is deleted), as a throw-away stage's data goes with
   * its stack.
   *
   * @default - RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long the log group of that emptying function keeps its logs (DESTROY only).
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The destination of the server access logs of every {@link SecureBucket} in a stack.
 * Its physical name is left to CloudFormation: it holds no data Keel reads by name. It does not log
 * itself (that would log every log delivery); cdk-nag's AwsSolutions-S1 accepts a bucket that receives
 * the access logs of another bucket in the same stack, so there is nothing to acknowledge.
 */
export class AccessLogsBucket extends Construct {
  public readonly bucket: IBucket;

  constructor(scope: Construct, id: string, props: AccessLogsBucketProps = {}) {
    super(scope, id);
    const owner = `AccessLogsBucket ${this.node.path}`;
    this.validateProps(owner, props);
    const retention = props.retention ?? Duration.days(365);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.bucket = new Bucket(this, 'Bucket', {
      // Log delivery only writes to SSE-S3 buckets.
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      // No ACLs: log delivery is granted through the bucket policy (@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy).
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { expiration: retention, abortIncompleteMultipartUploadAfter: ABORT_INCOMPLETE_UPLOADS_AFTER },
      ],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    if (removalPolicy === RemovalPolicy.DESTROY) {
      logAutoDeletes(owner, this, props.logRetention ?? RetentionDays.ONE_MONTH);
    }
  }

  /** Refuses props S3 would refuse; values known only at deploy time pass. */
  private validateProps(owner: string, props: AccessLogsBucketProps): void {
    assertWholeDays(owner, 'retention', props.retention);
    assertSupportedRemovalPolicy(owner, props.removalPolicy);
  }
}

/** Props of {@link SecureBucket}. */
export interface SecureBucketProps {
  /**
   * Physical bucket name; take it from `bucketName()` in `shared/resources.ts` for Keel's buckets.
   *
   * @default - a name generated by CloudFormation
   */
  readonly bucketName?: string;
  /** Where S3 delivers this bucket's server access logs, normally {@link AccessLogsBucket.bucket}. */
  readonly accessLogsBucket: IBucket;
  /**
   * Key prefix of this bucket's access logs in {@link accessLogsBucket}: path segments of S3 safe
   * characters, ending with `/` (e.g. `raw/`). Give each bucket its own prefix.
   */
  readonly accessLogsPrefix: string;
  /**
   * Keep every version of every object, so an overwrite or delete can be undone.
   *
   * @default - false
   */
  readonly versioned?: boolean;
  /**
   * How long a version is kept after it stops being current. Only valid when {@link versioned} is true.
   *
   * @default - 90 days when versioned
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Objects under each prefix expire this long after they were written (e.g. captured predictions).
   * Prefixes follow the same rule as {@link accessLogsPrefix}.
   *
   * @default - none: objects are kept until deleted
   */
  readonly expirations?: readonly { readonly prefix: string; readonly after: Duration }[];
  /**
   * What happens to the bucket when it leaves the stack. With DESTROY the bucket is emptied first
   * (CDK's `autoDeleteObjects`: a stack-wide function, allowed by the bucket policy to list and delete
   * every object and version, runs when the bucket is deleted), as a throw-away stage's data goes with
   * its stack.
   *
   * @default - RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long the log group of that emptying function keeps its logs (DESTROY only).
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * A Keel data bucket: SSE-S3 encrypted, TLS 1.2+ only, no public access, no ACLs, server access
 * logs delivered to a log bucket, incomplete uploads cleaned up, retained by default.
 */
export class SecureBucket extends Construct {
  public readonly bucket: IBucket;

  constructor(scope: Construct, id: string, props: SecureBucketProps) {
    super(scope, id);
    const owner = `SecureBucket ${this.node.path}`;
    if (!FeatureFlags.of(this).isEnabled(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY)) {
      // Without it CDK grants log delivery through an ACL, which ACL-less (BucketOwnerEnforced) buckets refuse.
      throw new Error(
        `${owner}: set the feature flag "${S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY}": true in the app context (cdk.json)`,
      );
    }
    this.validateProps(owner, props);
    const versioned = props.versioned ?? false;
    const noncurrentVersionExpiration = props.noncurrentVersionExpiration ?? Duration.days(90);
    const expirations = props.expirations ?? [];
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.bucket = new Bucket(this, 'Bucket', {
      bucketName: props.bucketName,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: props.accessLogsPrefix,
      versioned,
      lifecycleRules: [
        {
          abortIncompleteMultipartUploadAfter: ABORT_INCOMPLETE_UPLOADS_AFTER,
          ...(versioned ? { noncurrentVersionExpiration } : {}),
        },
        ...expirations.map(({ prefix, after }) => ({ prefix, expiration: after })),
      ],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    if (removalPolicy === RemovalPolicy.DESTROY) {
      logAutoDeletes(owner, this, props.logRetention ?? RetentionDays.ONE_MONTH);
    }
  }

  /** Refuses props S3 would refuse, or that would not do what they say; deploy-time values pass. */
  private validateProps(owner: string, props: SecureBucketProps): void {
    if (isKnown(props.accessLogsPrefix) && !LOG_PREFIX_PATTERN.test(props.accessLogsPrefix)) {
      throw new Error(
        `${owner}: accessLogsPrefix "${props.accessLogsPrefix}" is invalid: use path segments of letters, digits or !_.*'()- ` +
          'joined by "/", not starting with "/" and ending with "/" (e.g. "raw/")',
      );
    }
    if (props.noncurrentVersionExpiration !== undefined && !props.versioned) {
      throw new Error(
        `${owner}: noncurrentVersionExpiration only applies to versioned buckets: set versioned: true or remove it`,
      );
    }
    assertWholeDays(owner, 'noncurrentVersionExpiration', props.noncurrentVersionExpiration);
    for (const { prefix, after } of props.expirations ?? []) {
      if (isKnown(prefix) && !LOG_PREFIX_PATTERN.test(prefix)) {
        throw new Error(
          `${owner}: expirations prefix "${prefix}" is invalid: use path segments of letters, digits or !_.*'()- ending with "/" (e.g. "captures/")`,
        );
      }
      assertWholeDays(owner, `expirations of "${prefix}"`, after);
    }
    assertSupportedRemovalPolicy(owner, props.removalPolicy);
  }
}
