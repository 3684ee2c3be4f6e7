import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { OnnxRuntimeLayer } from '#lib/constructs/onnxruntime-layer.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { grantPromotionReads } from '#lib/promotion-grants.ts';
import { checkShare } from '#lib/prop-checks.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { captureModelPrefix } from '#shared/inference/capture.ts';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';
import { type BucketRole, KEYS, type TableRole } from '#shared/resources.ts';
import { type Channel, sagemakerKeys } from '#shared/training/sagemaker.ts';

/** Account, region and repository of an ECR image URI (`retrain.sagemaker.image`). */
function ecrRepositoryOf(image: string): { account: string; region: string; repository: string } | undefined {
  const match = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)/.exec(image);
  return match ? { account: match[1]!, region: match[2]!, repository: match[3]! } : undefined;
}

/** Props of {@link PipelineFunctions}. */
export interface PipelineFunctionsProps {
  /** The data stack's buckets, by role. */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables, by role. */
  readonly tables: Readonly<Record<TableRole, ITable>>;
  /** Registry name of the model. */
  readonly modelName: string;
  /**
   * How long each function's log group keeps its logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Share of quarantined rows (0 to 1) above which the ETL's finalize task fails a run whose input
   * sets none (`KEEL_ETL_MAX_BAD_ROW_SHARE`, read by `lambdas/etl/handler.ts`).
   *
   * @default - the ETL's own (1%)
   */
  readonly maxBadRowShare?: number;
  /**
   * Share of the rows batch scoring captures for the drift job (`KEEL_CAPTURE_SAMPLE_RATE`), 0..1.
   *
   * @default - 1 (every row)
   */
  readonly batchCaptureSampleRate?: number;
  /**
   * The retrain's engine: with `sagemaker`, the functions around a SageMaker training job
   * ({@link PipelineFunctions.sagemaker}), its role and its KMS key are created too.
   *
   * @default - 'lambda'
   */
  readonly retrainEngine?: 'lambda' | 'sagemaker';
  /**
   * The stage, which names its training jobs (`keel-<stage>-…`).
   *
   * @default - none; required with the `sagemaker` engine
   */
  readonly stage?: string;
  /**
   * With the `sagemaker` engine and an image of the stage's own account's ECR (`retrain.sagemaker.image`):
   * the training role may pull it.
   *
   * @default - AWS's built-in image, which SageMaker pulls without the role
   */
  readonly trainingImage?: string;
}

/** The SageMaker engine's functions, the training job's role and the key of its output and volume. */
export interface SageMakerTrainingResources {
  readonly prepare: KeelFunction;
  readonly writeChannels: KeelFunction;
  readonly importModel: KeelFunction;
  /** The training job's role: reads the run's train and validation channels, writes its output. */
  readonly role: Role;
  /** Encrypts the job's output (model.tar.gz) and its instances' volumes. */
  readonly key: Key;
}

/**
 * The Lambda functions behind the pipeline tasks, one per task, each granted only what its step
 * touches. Handlers live in lambdas/{etl,retrain,batch}/handler.ts as named exports.
 */
export class PipelineFunctions extends Construct {
  public readonly etlPlan: KeelFunction;
  public readonly etlChunk: KeelFunction;
  public readonly etlFinalize: KeelFunction;
  /** Present with the `lambda` retrain engine (the default). */
  public readonly train?: KeelFunction;
  public readonly promote: KeelFunction;
  public readonly batchPlan: KeelFunction;
  public readonly batchScore: KeelFunction;
  public readonly batchFinalize: KeelFunction;
  /** Present with the `sagemaker` retrain engine. */
  public readonly sagemaker?: SageMakerTrainingResources;

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    this.validateProps(props);
    const { buckets, tables } = props;
    const share = props.maxBadRowShare;
    const captureRate = props.batchCaptureSampleRate;
    const resources = Object.fromEntries([
      ...Object.entries(buckets).map(([role, bucket]) => [role, bucket.bucketName]),
      ...Object.entries(tables).map(([role, table]) => [role, table.tableName]),
    ]);
    const layer = new OnnxRuntimeLayer(this, 'OnnxRuntime').layer;
    const fn = (
      name: string,
      entry: 'etl' | 'retrain' | 'batch',
      handler: string,
      description: string,
      sizing: { memorySize: number; timeoutMinutes: number },
      environment: Record<string, string> = {},
    ) =>
      new KeelFunction(this, name, {
        entry: `lambdas/${entry}/handler.ts`,
        handler,
        description,
        serviceName: `keel-${entry}`,
        memorySize: sizing.memorySize,
        timeout: Duration.minutes(sizing.timeoutMinutes),
        resources,
        logRetention: props.logRetention,
        environment: { [KEEL_ENV.modelName]: props.modelName, ...environment },
        // The retrain and batch modules load onnxruntime at import, so every task exported from them needs the layer.
        ...(entry === 'etl' ? {} : { externalModules: OnnxRuntimeLayer.EXTERNAL_MODULES, layers: [layer] }),
      });

    this.etlPlan = fn('EtlPlan', 'etl', 'plan', 'Keel ETL: cut a raw CSV into row chunks', {
      memorySize: 512,
      timeoutMinutes: 5,
    });
    this.etlChunk = fn('EtlChunk', 'etl', 'chunk', 'Keel ETL: validate and store one chunk', {
      memorySize: 1024,
      timeoutMinutes: 15,
    });
    this.etlFinalize = fn(
      'EtlFinalize',
      'etl',
      'finalize',
      'Keel ETL: check the counts of a run',
      { memorySize: 256, timeoutMinutes: 1 },
      share === undefined ? {} : { [KEEL_ENV.etlMaxBadRowShare]: String(share) },
    );
    const train =
      props.retrainEngine === 'sagemaker'
        ? undefined
        : fn('Train', 'retrain', 'train', 'Keel retrain: train, evaluate against the champion, register', {
            memorySize: 3008,
            timeoutMinutes: 15,
          });
    this.train = train;
    this.promote = fn('Promote', 'retrain', 'promote', 'Keel retrain: move the champion alias', {
      memorySize: 256,
      timeoutMinutes: 1,
    });
    this.batchPlan = fn('BatchPlan', 'batch', 'plan', 'Keel batch scoring: pin the model, split the store', {
      memorySize: 256,
      timeoutMinutes: 1,
    });
    this.batchScore = fn(
      'BatchScore',
      'batch',
      'score',
      'Keel batch scoring: score one segment of the store',
      { memorySize: 1024, timeoutMinutes: 15 },
      { [KEEL_ENV.captureSampleRate]: String(captureRate ?? 1) },
    );
    this.batchFinalize = fn('BatchFinalize', 'batch', 'finalize', 'Keel batch scoring: totals and manifest', {
      memorySize: 256,
      timeoutMinutes: 1,
    });

    const objects = (f: KeelFunction, bucket: IBucket, prefix: string, actions: string[], why: string) => {
      const resource = bucket.arnForObjects(`${prefix}*`);
      Grant.addToPrincipal({ grantee: f.role, actions, resourceArns: [resource] });
      acknowledgeWildcardResource(f.role, {
        resource,
        actions,
        reason: `${why}: object keys under ${prefix} are only known at run time`,
      });
    };
    const list = (f: KeelFunction, bucket: IBucket, prefix: string) =>
      f.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
      );
    const modelPrefix = `models/${props.modelName}/`;

    list(this.etlPlan, buckets.raw, 'raw/');
    objects(this.etlPlan, buckets.raw, 'raw/', ['s3:GetObject'], 'Reads the raw file it plans');
    objects(this.etlChunk, buckets.raw, 'raw/', ['s3:GetObject'], 'Reads its byte range of the raw file');
    objects(this.etlChunk, buckets.features, 'features/', ['s3:PutObject'], 'Writes its feature part');
    objects(this.etlChunk, buckets.features, 'quarantine/', ['s3:PutObject'], 'Writes its quarantined rows');
    objects(this.etlFinalize, buckets.features, 'features/', ['s3:PutObject'], 'Marks a complete dataset');
    // The run's plan and chunk results (shared/pipelines/run-objects.ts): kept out of the 256 KiB state.
    objects(this.etlPlan, buckets.features, KEYS.etlRunsPrefix, ['s3:PutObject'], 'Writes the run plan');
    objects(
      this.etlChunk,
      buckets.features,
      KEYS.etlRunsPrefix,
      ['s3:GetObject', 's3:PutObject'],
      'Reads the run plan, writes its chunk result',
    );
    objects(
      this.etlFinalize,
      buckets.features,
      KEYS.etlRunsPrefix,
      ['s3:GetObject'],
      'Reads the chunk results',
    );
    tables.onlineFeatures.grant(this.etlChunk.role, 'dynamodb:BatchWriteItem', 'dynamodb:PutItem');
    // The store-fields manifest, one key read-merged-written (shared/online-store/fields.ts); listing
    // that key alone makes a missing manifest read as NoSuchKey instead of AccessDenied.
    this.etlFinalize.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [buckets.features.arnForObjects(STORE_FIELDS_KEY)],
      }),
    );
    this.etlFinalize.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [buckets.features.bucketArn],
        conditions: { StringEquals: { 's3:prefix': STORE_FIELDS_KEY } },
      }),
    );

    if (train) {
      list(train, buckets.features, 'features/');
      objects(train, buckets.features, 'features/', ['s3:GetObject'], 'Reads the offline feature dataset');
      objects(
        train,
        buckets.models,
        modelPrefix,
        ['s3:GetObject', 's3:PutObject'],
        'Registers a new version and reads the champion',
      );
      tables.modelRegistry.grant(
        train.role,
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
      );
    }
    tables.modelRegistry.grant(
      this.promote.role,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:Query',
    );
    grantPromotionReads(this.promote.role, {
      models: buckets.models,
      features: buckets.features,
      modelName: props.modelName,
    });

    for (const f of [this.batchPlan, this.batchScore]) {
      objects(f, buckets.models, modelPrefix, ['s3:GetObject'], 'Reads and verifies the champion artifact');
      tables.modelRegistry.grant(f.role, 'dynamodb:GetItem');
    }
    tables.onlineFeatures.grant(this.batchScore.role, 'dynamodb:Scan');
    objects(this.batchPlan, buckets.raw, 'raw/', ['s3:GetObject'], 'Plans the scoring of a given input file');
    objects(
      this.batchScore,
      buckets.raw,
      'raw/',
      ['s3:GetObject'],
      'Scores its byte range of a given input file',
    );
    objects(
      this.batchScore,
      buckets.outputs,
      'predictions/',
      ['s3:PutObject'],
      'Writes its segment of predictions',
    );
    objects(
      this.batchScore,
      buckets.outputs,
      captureModelPrefix(props.modelName),
      ['s3:PutObject'],
      'Captures its scored rows for the drift job',
    );
    if (props.retrainEngine === 'sagemaker') {
      this.sagemaker = this.sagemakerTraining(
        props,
        (name, handler, description, sizing, environment) =>
          fn(name, 'retrain', handler, description, sizing, environment),
        objects,
        list,
      );
    }
    objects(this.batchFinalize, buckets.outputs, 'predictions/', ['s3:PutObject'], 'Writes the run manifest');
    objects(this.batchPlan, buckets.outputs, KEYS.batchRunsPrefix, ['s3:PutObject'], 'Writes the run plan');
    objects(
      this.batchScore,
      buckets.outputs,
      KEYS.batchRunsPrefix,
      ['s3:GetObject', 's3:PutObject'],
      'Reads the run plan, writes its segment result',
    );
    objects(
      this.batchFinalize,
      buckets.outputs,
      KEYS.batchRunsPrefix,
      ['s3:GetObject'],
      'Reads the segment results',
    );
  }

  /**
   * The SageMaker engine (shared/training/sagemaker-retrain.ts): every run's objects live under
   * `sagemaker/<kind>/<run>/` of the features bucket, so each grant below names its kind: the job reads
   * `train/` and `validation/` only (never the held-out rows) and writes `output/` only.
   */
  private sagemakerTraining(
    props: PipelineFunctionsProps,
    fn: (
      name: string,
      handler: string,
      description: string,
      sizing: { memorySize: number; timeoutMinutes: number },
      environment?: Record<string, string>,
    ) => KeelFunction,
    objects: (f: KeelFunction, bucket: IBucket, prefix: string, actions: string[], why: string) => void,
    list: (f: KeelFunction, bucket: IBucket, prefix: string) => void,
  ): SageMakerTrainingResources {
    const owner = `PipelineFunctions ${this.node.path}`;
    if (props.stage === undefined) throw new Error(`${owner}: stage is required with the sagemaker engine`);
    const features = props.buckets.features;
    const prepare = fn(
      'PrepareTraining',
      'prepareTraining',
      'Keel retrain on SageMaker: plan the training channels',
      { memorySize: 512, timeoutMinutes: 5 },
      { [KEEL_ENV.stage]: props.stage },
    );
    const writeChannels = fn(
      'WriteChannels',
      'writeChannels',
      'Keel retrain on SageMaker: one offline part into the training channels',
      { memorySize: 1024, timeoutMinutes: 15 },
    );
    const importModel = fn(
      'ImportTrainedModel',
      'importTrained',
      'Keel retrain on SageMaker: convert the XGBoost model, check parity, gate, register',
      { memorySize: 3008, timeoutMinutes: 15 },
    );
    const channel = (c: Channel) => sagemakerKeys.channelPrefix(c);
    list(prepare, features, 'features/');
    objects(prepare, features, sagemakerKeys.runsPrefix, ['s3:PutObject'], 'Writes the run plan');
    objects(writeChannels, features, 'features/', ['s3:GetObject'], 'Reads its offline part');
    objects(
      writeChannels,
      features,
      sagemakerKeys.runsPrefix,
      ['s3:GetObject', 's3:PutObject'],
      'Reads the run plan, writes its channel counts',
    );
    for (const c of ['train', 'validation', 'heldout'] as const) {
      objects(writeChannels, features, channel(c), ['s3:PutObject'], `Writes its part of the ${c} channel`);
    }
    objects(importModel, features, sagemakerKeys.runsPrefix, ['s3:GetObject'], 'Reads the channel counts');
    list(importModel, features, channel('heldout'));
    objects(importModel, features, channel('heldout'), ['s3:GetObject'], 'Reads the held-out rows');
    objects(importModel, features, sagemakerKeys.outputPrefix, ['s3:GetObject'], "Reads the job's model");
    objects(
      importModel,
      props.buckets.models,
      `models/${props.modelName}/`,
      ['s3:GetObject', 's3:PutObject'],
      'Registers a new version and reads the champion',
    );
    props.tables.modelRegistry.grant(
      importModel.role,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:Query',
    );

    const key = new Key(this, 'TrainingKey', {
      enableKeyRotation: true,
      description: "Keel retrain on SageMaker: the training job's output and volumes",
    });
    // The job writes model.tar.gz with the key (SSE-KMS), the import reads it.
    key.grant(importModel.role, 'kms:Decrypt');
    const role = new Role(this, 'TrainingJobRole', {
      assumedBy: new ServicePrincipal('sagemaker.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: "Keel retrain on SageMaker: the training job's own role",
    });
    const readable = [channel('train'), channel('validation')];
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: readable.map((prefix) => features.arnForObjects(`${prefix}*`)),
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [features.bucketArn],
        conditions: { StringLike: { 's3:prefix': readable.map((prefix) => `${prefix}*`) } },
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [features.arnForObjects(`${sagemakerKeys.outputPrefix}*`)],
      }),
    );
    // S3 encrypts the output as the writer, with the key (a multipart upload also decrypts its data key);
    // SageMaker encrypts the instances' volumes through a grant it creates as the role.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['kms:Encrypt', 'kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [key.keyArn],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['kms:CreateGrant'],
        resources: [key.keyArn],
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      }),
    );
    const stack = Stack.of(this);
    const logGroup = stack.formatArn({
      service: 'logs',
      resource: 'log-group',
      resourceName: '/aws/sagemaker/TrainingJobs:*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [
          'logs:CreateLogGroup',
          'logs:CreateLogStream',
          'logs:DescribeLogStreams',
          'logs:PutLogEvents',
        ],
        resources: [logGroup],
      }),
    );
    acknowledgeWildcardResource(role, {
      resource: logGroup,
      actions: [
        'logs:CreateLogGroup',
        'logs:CreateLogStream',
        'logs:DescribeLogStreams',
        'logs:PutLogEvents',
      ],
      reason: "SageMaker writes the job's logs to streams of the TrainingJobs log group it names at run time",
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringLike: { 'cloudwatch:namespace': '/aws/sagemaker/*' } },
      }),
    );
    acknowledgeWildcardResource(role, {
      resource: '*',
      actions: ['cloudwatch:PutMetricData'],
      reason:
        "The job's metrics: PutMetricData has no resource-level permissions; held to SageMaker's namespaces",
    });
    for (const prefix of [...readable, sagemakerKeys.outputPrefix]) {
      acknowledgeWildcardResource(role, {
        resource: features.arnForObjects(`${prefix}*`),
        actions: prefix === sagemakerKeys.outputPrefix ? ['s3:PutObject'] : ['s3:GetObject'],
        reason: `The training job's ${prefix} objects: each run's keys are only known at run time`,
      });
    }
    const image = props.trainingImage === undefined ? undefined : ecrRepositoryOf(props.trainingImage);
    if (image && image.account === stack.account) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          resources: [
            stack.formatArn({
              service: 'ecr',
              region: image.region,
              resource: 'repository',
              resourceName: image.repository,
            }),
          ],
        }),
      );
      role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
      );
      acknowledgeWildcardResource(role, {
        resource: '*',
        actions: ['ecr:GetAuthorizationToken'],
        reason:
          'Pulls the configured image from ECR: GetAuthorizationToken has no resource-level permissions',
      });
    }
    return { prepare, writeChannels, importModel, role, key };
  }

  /** Refuses shares outside 0..1; values known only at deploy time pass. */
  private validateProps(props: PipelineFunctionsProps): void {
    const owner = `PipelineFunctions ${this.node.path}`;
    checkShare(owner, 'maxBadRowShare', props.maxBadRowShare);
    checkShare(owner, 'batchCaptureSampleRate', props.batchCaptureSampleRate);
  }
}
