import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AccountRootPrincipal, Role } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { KeelTable } from '#lib/constructs/keel-table.ts';
import { AccessLogsBucket, SecureBucket, type SecureBucketProps } from '#lib/constructs/secure-bucket.ts';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack, type DataStackProps } from '#lib/stacks/data-stack.ts';
import { BUCKET_ROLES, resourceNames, TABLE_ROLES, TABLES } from '#shared/resources.ts';
import { acknowledgementsIn, CDK_CONTEXT, findingsIn, runApp, synthFindings } from '../support/cdk.ts';

const STAGE = 'test';
const ENV = { account: '111122223333', region: 'eu-west-1' };
const NAMES = resourceNames({ stage: STAGE, ...ENV });

const TMP = mkdtempSync(join(tmpdir(), 'keel-infra-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function newOutdir(): string {
  return mkdtempSync(join(TMP, 'cdk.out-'));
}

function newApp(): App {
  return new App({ context: CDK_CONTEXT, outdir: newOutdir() });
}

function synthDataStack(props: Partial<DataStackProps> = {}): { stack: DataStack; template: Template } {
  const stack = new DataStack(newApp(), 'Keel-test-Data', {
    stage: STAGE,
    env: ENV,
    ...props,
  });
  return { stack, template: Template.fromStack(stack) };
}

/** `{ Ref: logicalId }` of a bucket or table, as the stack resolves its name. */
function ref(stack: Stack, name: string): { Ref: string } {
  return stack.resolve(name);
}

function logicalId(stack: Stack, name: string): string {
  return ref(stack, name).Ref;
}

describe('DataStack template', () => {
  const { stack, template } = synthDataStack();
  const logBucket = ref(stack, stack.accessLogsBucket.bucketName);

  it('names every bucket and table as resourceNames() does', () => {
    template.resourceCountIs('AWS::S3::Bucket', BUCKET_ROLES.length + 1);
    template.resourceCountIs('AWS::DynamoDB::Table', TABLE_ROLES.length);
    // Each public property is the resource carrying the role's name.
    for (const role of BUCKET_ROLES) {
      const named = template.findResources('AWS::S3::Bucket', { Properties: { BucketName: NAMES[role] } });
      expect(Object.keys(named)).toEqual([logicalId(stack, stack.buckets[role].bucketName)]);
    }
    for (const role of TABLE_ROLES) {
      const named = template.findResources('AWS::DynamoDB::Table', {
        Properties: { TableName: NAMES[role] },
      });
      expect(Object.keys(named)).toEqual([logicalId(stack, stack.tables[role].tableName)]);
    }
  });

  it('encrypts every bucket with SSE-S3, blocks public access and disables ACLs', () => {
    template.allResourcesProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('denies requests without TLS, or below TLS 1.2, on every bucket', () => {
    const buckets = [stack.accessLogsBucket, ...BUCKET_ROLES.map((role) => stack.buckets[role])];
    template.resourceCountIs('AWS::S3::BucketPolicy', buckets.length);
    for (const bucket of buckets) {
      const arn = { 'Fn::GetAtt': [logicalId(stack, bucket.bucketName), 'Arn'] };
      const denyAll = {
        Effect: 'Deny',
        Action: 's3:*',
        Principal: { AWS: '*' },
        Resource: [arn, Match.anyValue()],
      };
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: ref(stack, bucket.bucketName),
        PolicyDocument: {
          Statement: Match.arrayWith([
            { ...denyAll, Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
            { ...denyAll, Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } },
          ]),
        },
      });
    }
  });

  it('versions the models bucket only, expiring noncurrent versions after 90 days', () => {
    const versioned = template.findResources('AWS::S3::Bucket', {
      Properties: { VersioningConfiguration: Match.anyValue() },
    });
    expect(Object.keys(versioned)).toEqual([logicalId(stack, stack.buckets.models.bucketName)]);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: NAMES.models,
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 90 }, Status: 'Enabled' })],
      },
    });
  });

  it('delivers each data bucket’s access logs to the log bucket under its role prefix, by bucket policy', () => {
    for (const role of BUCKET_ROLES) {
      template.hasResourceProperties('AWS::S3::Bucket', {
        BucketName: NAMES[role],
        LoggingConfiguration: { DestinationBucketName: logBucket, LogFilePrefix: `${role}/` },
      });
      // Log delivery may write only this bucket's prefix, and only for this bucket.
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: logBucket,
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Effect: 'Allow',
              Action: 's3:PutObject',
              Principal: { Service: 'logging.s3.amazonaws.com' },
              Resource: {
                'Fn::Join': ['', [{ 'Fn::GetAtt': [logBucket.Ref, 'Arn'] }, `/${role}/*`]],
              },
              Condition: {
                ArnLike: {
                  'aws:SourceArn': {
                    'Fn::GetAtt': [logicalId(stack, stack.buckets[role].bucketName), 'Arn'],
                  },
                },
                StringEquals: { 'aws:SourceAccount': ENV.account },
              },
            },
          ]),
        },
      });
    }
    // The log bucket expires its logs and does not log itself.
    const unlogged = template.findResources('AWS::S3::Bucket', {
      Properties: { LoggingConfiguration: Match.absent() },
    });
    expect(Object.keys(unlogged)).toEqual([logBucket.Ref]);
    expect(unlogged[logBucket.Ref]?.Properties.LifecycleConfiguration.Rules).toEqual([
      expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' }),
    ]);
  });

  it("expires a SageMaker retrain's channels and model archive in the features bucket after 30 days", () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.stringLikeRegexp('features'),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([{ Prefix: 'sagemaker/', ExpirationInDays: 30, Status: 'Enabled' }]),
      },
    });
  });

  it('aborts incomplete multipart uploads after 7 days in every bucket', () => {
    template.allResourcesProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }),
        ]),
      },
    });
  });

  it('makes tables on-demand, point-in-time recoverable, KMS-encrypted and deletion-protected, keyed as TABLES says', () => {
    for (const role of TABLE_ROLES) {
      const keys: { partitionKey: string; sortKey?: string } = TABLES[role];
      const keyNames = [keys.partitionKey, ...(keys.sortKey === undefined ? [] : [keys.sortKey])];
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: NAMES[role],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
        KeySchema: keyNames.map((name, i) => ({ AttributeName: name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
        AttributeDefinitions: keyNames.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
      });
    }
  });

  it('retains buckets and tables by default', () => {
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      template.allResources(type, { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('exports every bucket and table name as keel-<stage>-…', () => {
    const exports: [string, string][] = [
      ['keel-test-access-logs-bucket-name', stack.accessLogsBucket.bucketName],
      ['keel-test-raw-bucket-name', stack.buckets.raw.bucketName],
      ['keel-test-features-bucket-name', stack.buckets.features.bucketName],
      ['keel-test-models-bucket-name', stack.buckets.models.bucketName],
      ['keel-test-outputs-bucket-name', stack.buckets.outputs.bucketName],
      ['keel-test-online-features-table-name', stack.tables.onlineFeatures.tableName],
      ['keel-test-model-registry-table-name', stack.tables.modelRegistry.tableName],
    ];
    expect(Object.keys(template.findOutputs('*'))).toHaveLength(exports.length);
    for (const [exportName, name] of exports) {
      template.hasOutput('*', { Value: ref(stack, name), Export: { Name: exportName } });
    }
  });
});

describe('DataStack props', () => {
  it('lets a throw-away stage destroy its resources and drop deletion protection', () => {
    const { template } = synthDataStack({ removalPolicy: RemovalPolicy.DESTROY, deletionProtection: false });
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      template.allResources(type, { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    }
    template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
  });

  it('empties each bucket of a throw-away stage before deleting it, logging for the given retention', () => {
    const { stack, template } = synthDataStack({
      removalPolicy: RemovalPolicy.DESTROY,
      deletionProtection: false,
      logRetention: RetentionDays.ONE_WEEK,
    });
    const emptied = Object.values(template.findResources('Custom::S3AutoDeleteObjects')).map(
      (r) => r.Properties.BucketName,
    );
    expect(emptied).toHaveLength(BUCKET_ROLES.length + 1);
    for (const bucket of [stack.accessLogsBucket, ...Object.values(stack.buckets)]) {
      expect(emptied).toContainEqual(ref(stack, bucket.bucketName));
    }
    // CDK's one function per stack logs to a log group of the stack that expires, like Keel's own.
    const [[, fn]] = Object.entries(template.findResources('AWS::Lambda::Function')) as [
      [string, { Properties: { LoggingConfig: { LogGroup: { Ref: string } } } }],
    ];
    const group = template.toJSON().Resources[fn.Properties.LoggingConfig.LogGroup.Ref];
    expect(group).toMatchObject({ Type: 'AWS::Logs::LogGroup', Properties: { RetentionInDays: 7 } });
  });

  it('keeps the objects, and adds no function, when the buckets are retained', () => {
    const { template } = synthDataStack();
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  it('rejects an invalid stage before adding anything to the app', () => {
    const app = newApp();
    expect(() => new DataStack(app, 'Bad', { stage: 'Prod_1' })).toThrow(
      'stage "Prod_1" is invalid: use 1-16 lower-case letters, digits or dashes, starting with a letter',
    );
    expect(app.node.children).toHaveLength(0);
  });
});

describe('construct validation', () => {
  function bucketIn(props: Partial<SecureBucketProps>, context = CDK_CONTEXT): () => SecureBucket {
    const stack = new Stack(new App({ context, outdir: newOutdir() }), 'S');
    const logs = new AccessLogsBucket(stack, 'Logs').bucket;
    return () =>
      new SecureBucket(stack, 'Data', { accessLogsBucket: logs, accessLogsPrefix: 'data/', ...props });
  }

  it.each(['data', '/data/', 'data//', 'a b/', ''])(
    'rejects the access-log prefix %j, saying what is allowed',
    (prefix) => {
      expect(bucketIn({ accessLogsPrefix: prefix })).toThrow(
        new RegExp(
          `SecureBucket S/Data: accessLogsPrefix "${prefix}" is invalid: .*ending with "/" \\(e\\.g\\. "raw/"\\)`,
        ),
      );
    },
  );

  it('accepts a nested access-log prefix', () => {
    expect(bucketIn({ accessLogsPrefix: 's3/data-v2/' })).not.toThrow();
  });

  it('rejects noncurrent-version expiry on an unversioned bucket', () => {
    expect(bucketIn({ noncurrentVersionExpiration: Duration.days(30) })).toThrow(
      'noncurrentVersionExpiration only applies to versioned buckets: set versioned: true or remove it',
    );
  });

  it('rejects a noncurrent-version expiry that is not whole days', () => {
    expect(bucketIn({ versioned: true, noncurrentVersionExpiration: Duration.hours(36) })).toThrow(
      'noncurrentVersionExpiration must be a whole number of days, at least 1 (got 1 day 12 hours)',
    );
  });

  it('expires objects under a prefix after whole days, and rejects a bad prefix or a fraction of a day', () => {
    const bucket = bucketIn({ expirations: [{ prefix: 'captures/', after: Duration.days(30) }] })();
    Template.fromStack(Stack.of(bucket)).hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.absent(),
      LoggingConfiguration: Match.anyValue(),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([{ Prefix: 'captures/', ExpirationInDays: 30, Status: 'Enabled' }]),
      },
    });
    expect(bucketIn({ expirations: [{ prefix: '/captures', after: Duration.days(30) }] })).toThrow(
      'SecureBucket S/Data: expirations prefix "/captures" is invalid',
    );
    expect(bucketIn({ expirations: [{ prefix: 'captures/', after: Duration.hours(12) }] })).toThrow(
      'expirations of "captures/" must be a whole number of days, at least 1 (got 12 hours)',
    );
  });

  it('rejects a point-in-time recovery window DynamoDB would refuse', () => {
    const stack = new Stack(newApp(), 'S');
    for (const days of [0, 36, 1.5]) {
      expect(
        () =>
          new KeelTable(stack, `T${days}`, {
            role: 'modelRegistry',
            tableName: 'keel-test-registry',
            pointInTimeRecoveryDays: days,
          }),
      ).toThrow(`pointInTimeRecoveryDays must be a whole number from 1 to 35 (got ${days})`);
    }
  });

  it('rejects the SNAPSHOT removal policy, which S3 does not have', () => {
    expect(bucketIn({ removalPolicy: RemovalPolicy.SNAPSHOT })).toThrow('use RETAIN or DESTROY');
  });

  it('names the feature flag it needs when the app context lacks it', () => {
    expect(bucketIn({}, {})).toThrow('"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": true');
  });

  it('rejects a table name DynamoDB would refuse', () => {
    const stack = new Stack(newApp(), 'S');
    expect(() => new KeelTable(stack, 'T', { role: 'modelRegistry', tableName: 'keel/registry' })).toThrow(
      'KeelTable S/T: tableName "keel/registry" is invalid: use 3-255 letters, digits, "_", "-" or "."',
    );
  });

  it('encrypts a table with a customer managed key when given one', () => {
    const stack = new Stack(newApp(), 'S');
    const key = new Key(stack, 'Key', { enableKeyRotation: true });
    new KeelTable(stack, 'T', { role: 'onlineFeatures', tableName: 'keel-test-online', encryptionKey: key });
    Template.fromStack(stack).hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: stack.resolve(key.keyArn),
      },
    });
  });

  it('grants the key use each table grant needs when the table has a customer managed key', () => {
    const stack = new Stack(newApp(), 'S');
    const key = new Key(stack, 'Key', { enableKeyRotation: true });
    const { table } = new KeelTable(stack, 'T', {
      role: 'onlineFeatures',
      tableName: 'keel-test-online',
      encryptionKey: key,
    });
    const principal = new AccountRootPrincipal();
    const reader = new Role(stack, 'Reader', { assumedBy: principal });
    const writer = new Role(stack, 'Writer', { assumedBy: principal });
    const describer = new Role(stack, 'Describer', { assumedBy: principal });
    table.grant(reader, 'dynamodb:GetItem', 'dynamodb:Query');
    table.grant(writer, 'dynamodb:PutItem');
    table.grant(describer, 'dynamodb:DescribeTable');
    const template = Template.fromStack(stack);
    const keyStatements = (role: Role) =>
      Object.values(template.findResources('AWS::IAM::Policy'))
        .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([stack.resolve(role.roleName)]))
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .filter((s) => JSON.stringify(s.Resource) === JSON.stringify(stack.resolve(key.keyArn)))
        .map((s) => s.Action);
    // Reading needs the key to decrypt; writing also to encrypt (CDK's own read and write grant sets).
    expect(keyStatements(reader)).toEqual([['kms:Decrypt', 'kms:DescribeKey']]);
    expect(keyStatements(writer)).toEqual([
      ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
    ]);
    // No data, no key.
    expect(keyStatements(describer)).toEqual([]);
  });

  it('grants no key use when the table has DynamoDB’s own key', () => {
    const stack = new Stack(newApp(), 'S');
    const { table } = new KeelTable(stack, 'T', { role: 'onlineFeatures', tableName: 'keel-test-online' });
    table.grant(new Role(stack, 'Writer', { assumedBy: new AccountRootPrincipal() }), 'dynamodb:PutItem');
    expect(JSON.stringify(Template.fromStack(stack).toJSON())).not.toContain('kms:');
  });
});

describe('cdk-nag', () => {
  it('finds nothing unacknowledged in the app as `cdk synth` runs it (default stage, dummy account)', async () => {
    const outdir = newOutdir();
    const failure = await runApp(outdir);
    expect(findingsIn(outdir, failure)).toEqual([]);
    expect(failure).toBeUndefined();
    const template = Template.fromJSON(
      JSON.parse(readFileSync(join(outdir, 'Keel-dev-Data.template.json'), 'utf8')),
    );
    const names = resourceNames({ stage: 'dev', account: '123456789012', region: 'us-east-1' });
    for (const role of BUCKET_ROLES) {
      template.hasResourceProperties('AWS::S3::Bucket', { BucketName: names[role] });
    }
  });

  it('is live: both packs report a flaw added beside the data stack, and nothing else', () => {
    const app = newApp();
    addNagChecks(app);
    const stack = new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV });
    new Bucket(stack, 'PlainHttp', {
      serverAccessLogsBucket: stack.accessLogsBucket,
      serverAccessLogsPrefix: 'plain/',
      enforceSSL: false,
    });
    new LogGroup(stack, 'KeptForever', { retention: RetentionDays.INFINITE });
    expect(synthFindings(app)).toEqual([
      {
        plugin: 'AwsSolutions',
        rule: 'AwsSolutions-S10',
        severity: 'error',
        paths: ['Keel-test-Data/PlainHttp/Resource'],
      },
      {
        plugin: 'Serverless',
        rule: 'Serverless-CloudWatchLogGroupRetentionPeriod',
        severity: 'warning',
        paths: ['Keel-test-Data/KeptForever/Resource'],
      },
    ]);
  });

  it('passes the access-log bucket on S1 only because other buckets log into it', () => {
    const app = newApp();
    addNagChecks(app);
    new AccessLogsBucket(new Stack(app, 'Alone', { env: ENV }), 'AccessLogs');
    expect(synthFindings(app)).toEqual([
      {
        plugin: 'AwsSolutions',
        rule: 'AwsSolutions-S1',
        severity: 'error',
        paths: ['Alone/AccessLogs/Bucket/Resource'],
      },
    ]);
  });

  it('acknowledges no finding in the data stack: each one is fixed, not silenced', () => {
    const app = newApp();
    new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV });
    expect(acknowledgementsIn(app)).toEqual([]);
  });
});
