import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { CaptureStream } from '#lib/constructs/capture-stream.ts';
import { NO_BUNDLING } from '../support/cdk.ts';
import { only, type Resource } from '../support/cfn-template.ts';
import { ENV, synthesizedInferenceApp } from '../support/inference-stack.ts';

/**
 * Prediction capture in AWS: the predict process's log group → a subscription filter that passes the
 * capture lines only → Firehose (decompress, extract the message, a newline per record, encrypted) →
 * the outputs bucket under the captures layout; least-privilege roles on both hops; Lambda and ECS alike.
 */

const policyOf = (template: Template, role: string) =>
  (Object.entries(template.findResources('AWS::IAM::Policy')) as [string, Resource][]).filter(([, p]) =>
    JSON.stringify(p.Properties.Roles).includes(`"${role}"`),
  );

const statementsOf = (template: Template, role: string) =>
  policyOf(template, role).flatMap(([, p]) => p.Properties.PolicyDocument.Statement);

/** `{Fn::ImportValue: …}` of the data stack's outputs bucket ARN. */
const outputsArn = {
  'Fn::ImportValue': expect.stringMatching(/^Keel-test-Data:ExportsOutputFnGetAttOutputs.*Arn/),
};

describe.each([
  ['lambda', 'AWS::Lambda::Function'],
  ['ecs', 'AWS::ECS::TaskDefinition'],
] as const)('prediction capture on %s', (inference, computeType) => {
  const { findings, template } = synthesizedInferenceApp({ inference }, NO_BUNDLING);

  it('leaves no cdk-nag finding unacknowledged', () => {
    expect(findings).toEqual([]);
  });

  it("subscribes to the predict process's log group with a filter that passes capture lines only", () => {
    const [, filter] = only(template, 'AWS::Logs::SubscriptionFilter');
    expect(filter.Properties.FilterPattern).toBe('{ $.keel_capture = 1 }');
    const [streamId] = only(template, 'AWS::KinesisFirehose::DeliveryStream');
    expect(filter.Properties.DestinationArn).toEqual({ 'Fn::GetAtt': [streamId, 'Arn'] });
    // The log group the predict process writes to: the function's, or the container's awslogs group.
    const [, compute] = only(template, computeType);
    const logGroup = filter.Properties.LogGroupName.Ref as string;
    if (inference === 'lambda') {
      expect(compute.Properties.LoggingConfig).toMatchObject({ LogGroup: { Ref: logGroup } });
    } else {
      const options = compute.Properties.ContainerDefinitions[0].LogConfiguration.Options;
      // Blocking: the non-blocking default drops lines when the driver's buffer is full.
      expect(options).toMatchObject({ 'awslogs-group': { Ref: logGroup }, mode: 'blocking' });
    }
    // CloudWatch Logs may only put records into that stream, as this account's CloudWatch Logs.
    const roleId = filter.Properties.RoleArn['Fn::GetAtt'][0] as string;
    const resources = template.toJSON().Resources as Record<string, Resource>;
    expect(resources[roleId]!.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'logs.amazonaws.com' },
        Condition: {
          StringLike: {
            'aws:SourceArn': {
              'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:logs:${ENV.region}:${ENV.account}:*`]],
            },
          },
        },
      },
    ]);
    expect(statementsOf(template, roleId)).toEqual([
      {
        Effect: 'Allow',
        Action: ['firehose:PutRecord', 'firehose:PutRecordBatch'],
        Resource: { 'Fn::GetAtt': [streamId, 'Arn'] },
      },
    ]);
    // Created after its role's policy: CloudWatch Logs test-puts into the stream when it creates the filter.
    const [policyId] = policyOf(template, roleId)[0]!;
    expect(filter.DependsOn).toContain(policyId);
  });

  it('delivers through an encrypted Firehose stream that writes plain JSON lines under the captures layout', () => {
    const [, stream] = only(template, 'AWS::KinesisFirehose::DeliveryStream');
    expect(stream.Properties).toMatchObject({
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
    });
    const s3 = stream.Properties.ExtendedS3DestinationConfiguration;
    expect(s3).toMatchObject({
      Prefix: 'captures/model=churn/date=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/',
      ErrorOutputPrefix:
        'captures/model=churn/errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/',
      BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 64 },
      CompressionFormat: 'UNCOMPRESSED',
      FileExtension: '.jsonl',
      CloudWatchLoggingOptions: { Enabled: true },
    });
    expect(s3.ProcessingConfiguration).toEqual({
      Enabled: true,
      Processors: [
        {
          Type: 'Decompression',
          Parameters: [{ ParameterName: 'CompressionFormat', ParameterValue: 'GZIP' }],
        },
        {
          Type: 'CloudWatchLogProcessing',
          Parameters: [{ ParameterName: 'DataMessageExtraction', ParameterValue: 'true' }],
        },
        { Type: 'AppendDelimiterToRecord' },
      ],
    });
    expect(s3.BucketARN).toEqual(outputsArn);
  });

  it("lets Firehose's role write under the model's capture prefix only, and nothing else of the bucket", () => {
    const [, stream] = only(template, 'AWS::KinesisFirehose::DeliveryStream');
    const roleId = stream.Properties.ExtendedS3DestinationConfiguration.RoleARN['Fn::GetAtt'][0] as string;
    const role = template.toJSON().Resources[roleId] as Resource;
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'firehose.amazonaws.com' },
        Condition: { StringEquals: { 'sts:ExternalId': ENV.account } },
      },
    ]);
    const statements = statementsOf(template, roleId);
    expect(statements).toHaveLength(3);
    expect(statements[0]).toEqual({
      Effect: 'Allow',
      Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
      Resource: { 'Fn::Join': ['', [outputsArn, '/captures/model=churn/*']] },
    });
    expect(statements[1]).toEqual({
      Effect: 'Allow',
      Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
      Resource: outputsArn,
    });
    expect(statements[2]).toMatchObject({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    });
    expect(JSON.stringify(statements)).not.toContain('kms:');
  });

  it('leaves the predict process without any S3 write: its captures leave as lines on stdout', () => {
    const [, compute] = only(template, computeType);
    const role = (inference === 'lambda' ? compute.Properties.Role : compute.Properties.TaskRoleArn)[
      'Fn::GetAtt'
    ][0] as string;
    const actions = statementsOf(template, role).flatMap((s: { Action: string | string[] }) =>
      [s.Action].flat(),
    );
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((a: string) => a.startsWith('s3:') && a !== 's3:GetObject')).toEqual([]);
  });
});

describe('prediction capture turned off', () => {
  it('creates no subscription and no stream at a sample rate of 0', () => {
    const { findings, template } = synthesizedInferenceApp({ captureSampleRate: 0 }, NO_BUNDLING);
    expect(findings).toEqual([]);
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', 0);
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 0);
  });
});

describe('CaptureStream', () => {
  const build = (props: Partial<ConstructorParameters<typeof CaptureStream>[2]> = {}) => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const bucket = props.bucket ?? new Bucket(stack, 'B');
    new CaptureStream(stack, 'C', {
      logGroup: new LogGroup(stack, 'L'),
      bucket,
      modelName: 'churn',
      ...props,
    });
    return Template.fromStack(stack);
  };

  it('refuses a buffer the drift job would not wait for, and a bad model name', () => {
    expect(() => build({ bufferInterval: Duration.seconds(901) })).toThrow(
      'CaptureStream S/C: bufferInterval must be whole seconds from 0 to 900 (got 901 s)',
    );
    expect(() => build({ modelName: 'Churn' })).toThrow('CaptureStream S/C: modelName "Churn" is invalid');
    build({ bufferInterval: Duration.seconds(900) }).hasResourceProperties(
      'AWS::KinesisFirehose::DeliveryStream',
      {
        ExtendedS3DestinationConfiguration: Match.objectLike({
          BufferingHints: { IntervalInSeconds: 900, SizeInMBs: 64 },
        }),
      },
    );
  });

  it("grants the bucket's key when the bucket is SSE-KMS", () => {
    const stack = new Stack(new App(), 'K', { env: ENV });
    const key = new Key(stack, 'Key');
    const bucket = new Bucket(stack, 'B', { encryption: BucketEncryption.KMS, encryptionKey: key });
    new CaptureStream(stack, 'C', { logGroup: new LogGroup(stack, 'L'), bucket, modelName: 'churn' });
    const template = Template.fromStack(stack);
    const keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0]!;
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
            Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
          },
        ]),
      },
    });
  });
});
