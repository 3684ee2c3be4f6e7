import { Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnDeliveryStream } from 'aws-cdk-lib/aws-kinesisfirehose';
import {
  CfnSubscriptionFilter,
  type ILogGroup,
  LogGroup,
  LogStream,
  RetentionDays,
} from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { checkLogRetention, checkModelName, isKnown } from '#lib/prop-checks.ts';
import {
  CAPTURE_FILTER_PATTERN,
  CAPTURE_PARTITION_SLACK_MS,
  captureModelPrefix,
} from '#shared/inference/capture.ts';

/** Props of {@link CaptureStream}. */
export interface CaptureStreamProps {
  /** The predict process's log group: the Lambda function's, or the ECS container's awslogs group. */
  readonly logGroup: ILogGroup;
  /** The outputs bucket; the stream writes under `captures/model=<modelName>/` only. */
  readonly bucket: IBucket;
  /** The registry model the process serves: its capture prefix. */
  readonly modelName: string;
  /**
   * How long Firehose buffers capture lines before it writes an object (or 64 MiB, whichever comes
   * first): whole seconds up to 15 minutes, the partition slack the drift job allows.
   *
   * @default - 60 seconds: about a minute from prediction to S3, 1,440 objects a day
   */
  readonly bufferInterval?: Duration;
  /**
   * How long Firehose's own log of failed deliveries is kept. INFINITE is refused.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** Firehose's largest S3 buffer: what keeps an object about as large as a busy minute. */
const BUFFER_SIZE_MIB = 64;

/**
 * Prediction capture in AWS: the capture lines the predict process writes to stdout (see
 * `shared/inference/capture.ts`) travel from its log group through a subscription filter, which
 * passes those lines only, to a Firehose stream that writes them to the outputs bucket as JSON-lines
 * objects under `captures/model=<name>/date=YYYY-MM-DD/hour=HH/` (the hour its buffer started, UTC).
 * CloudWatch Logs sends gzip'd batches of log events: Firehose decompresses them, keeps each event's
 * message (the line itself) and ends each record with a newline. What it cannot deliver after its
 * retries goes under `captures/model=<name>/errors/`. The stream is encrypted (AWS-owned key); its role
 * may write under the model's capture prefix only; CloudWatch Logs' role may only put records into it.
 */
export class CaptureStream extends Construct {
  public readonly deliveryStream: CfnDeliveryStream;
  public readonly subscription: CfnSubscriptionFilter;
  /** Firehose's role (writes the objects). */
  public readonly deliveryRole: Role;
  /** The role CloudWatch Logs assumes to put the subscribed lines into the stream. */
  public readonly subscriptionRole: Role;

  constructor(scope: Construct, id: string, props: CaptureStreamProps) {
    super(scope, id);
    this.validateProps(props);
    const interval = (props.bufferInterval ?? Duration.seconds(60)).toSeconds({ integral: false });
    const retention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const stack = Stack.of(this);
    const prefix = captureModelPrefix(props.modelName);

    const errors = new LogGroup(this, 'DeliveryErrors', { retention });
    const errorStream = new LogStream(this, 'DeliveryErrorStream', {
      logGroup: errors,
      logStreamName: 'S3Delivery',
    });
    this.deliveryRole = new Role(this, 'DeliveryRole', {
      // Firehose passes the account as the external id: no other account's stream can use this role.
      assumedBy: new ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'sts:ExternalId': stack.account } },
      }),
    });
    // What AWS documents for a Firehose S3 destination, the object actions narrowed to the prefix.
    const objects = props.bucket.arnForObjects(`${prefix}*`);
    const objectActions = ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'];
    this.deliveryRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: objectActions, resources: [objects] }),
    );
    this.deliveryRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        resources: [props.bucket.bucketArn],
      }),
    );
    // An SSE-KMS bucket (Keel's are SSE-S3) needs its key for every object written.
    props.bucket.encryptionKey?.grant(this.deliveryRole, 'kms:GenerateDataKey', 'kms:Decrypt');
    errors.grantWrite(this.deliveryRole);
    acknowledgeWildcardResource(this.deliveryRole, {
      resource: objects,
      actions: objectActions,
      reason: `Firehose writes the capture objects of model "${props.modelName}" only; their keys carry the hour and Firehose's own id, so they cannot be listed`,
    });

    this.deliveryStream = new CfnDeliveryStream(this, 'Delivery', {
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'AWS_OWNED_CMK' },
      extendedS3DestinationConfiguration: {
        bucketArn: props.bucket.bucketArn,
        roleArn: this.deliveryRole.roleArn,
        prefix: `${prefix}date=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/`,
        errorOutputPrefix: `${prefix}errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/`,
        bufferingHints: { intervalInSeconds: interval, sizeInMBs: BUFFER_SIZE_MIB },
        compressionFormat: 'UNCOMPRESSED',
        fileExtension: '.jsonl',
        cloudWatchLoggingOptions: {
          enabled: true,
          logGroupName: errors.logGroupName,
          logStreamName: errorStream.logStreamName,
        },
        processingConfiguration: {
          enabled: true,
          processors: [
            {
              type: 'Decompression',
              parameters: [{ parameterName: 'CompressionFormat', parameterValue: 'GZIP' }],
            },
            {
              type: 'CloudWatchLogProcessing',
              parameters: [{ parameterName: 'DataMessageExtraction', parameterValue: 'true' }],
            },
            { type: 'AppendDelimiterToRecord' },
          ],
        },
      },
    });
    // Firehose checks its role when the stream is created.
    this.deliveryStream.node.addDependency(this.deliveryRole);

    this.subscriptionRole = new Role(this, 'SubscriptionRole', {
      // As AWS documents for subscription filters: CloudWatch Logs of this account and region only.
      assumedBy: new ServicePrincipal('logs.amazonaws.com', {
        conditions: { StringLike: { 'aws:SourceArn': stack.formatArn({ service: 'logs', resource: '*' }) } },
      }),
    });
    this.subscriptionRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['firehose:PutRecord', 'firehose:PutRecordBatch'],
        resources: [this.deliveryStream.attrArn],
      }),
    );
    this.subscription = new CfnSubscriptionFilter(this, 'Subscription', {
      logGroupName: props.logGroup.logGroupName,
      filterPattern: CAPTURE_FILTER_PATTERN,
      destinationArn: this.deliveryStream.attrArn,
      roleArn: this.subscriptionRole.roleArn,
    });
    // CloudWatch Logs test-puts into the stream when the filter is created.
    this.subscription.node.addDependency(this.subscriptionRole);
  }

  /** Refuses props Firehose would refuse or the drift job could not work with; deploy-time values pass. */
  private validateProps(props: CaptureStreamProps): void {
    const owner = `CaptureStream ${this.node.path}`;
    checkModelName(owner, props.modelName);
    if (isKnown(props.bufferInterval)) {
      const interval = props.bufferInterval.toSeconds({ integral: false });
      const maxInterval = CAPTURE_PARTITION_SLACK_MS / 1000;
      if (!Number.isInteger(interval) || interval < 0 || interval > maxInterval) {
        throw new Error(
          `${owner}: bufferInterval must be whole seconds from 0 to ${maxInterval} (got ${interval} s): the drift job looks ${maxInterval / 60} minutes around its window for late partitions`,
        );
      }
    }
    checkLogRetention(owner, props.logRetention);
  }
}
