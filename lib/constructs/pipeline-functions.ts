import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { OnnxRuntimeLayer } from '#lib/constructs/onnxruntime-layer.ts';
import type { BucketRole, TableRole } from '#shared/resources.ts';

/** Props of {@link PipelineFunctions}. */
export interface PipelineFunctionsProps {
  /** The data stack's buckets, by role. */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables, by role. */
  readonly tables: Readonly<Record<TableRole, ITable>>;
  /** Registry name of the model. */
  readonly modelName: string;
}

/**
 * The Lambda functions behind the pipeline tasks, one per task, each granted only what its step
 * touches. Handlers live in lambdas/{etl,retrain,batch}/handler.ts as named exports.
 */
export class PipelineFunctions extends Construct {
  public readonly etlPlan: KeelFunction;
  public readonly etlChunk: KeelFunction;
  public readonly etlFinalize: KeelFunction;
  public readonly train: KeelFunction;
  public readonly promote: KeelFunction;
  public readonly batchPlan: KeelFunction;
  public readonly batchScore: KeelFunction;
  public readonly batchFinalize: KeelFunction;

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { buckets, tables } = props;
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
      needsOnnx = false,
    ) =>
      new KeelFunction(this, name, {
        entry: `lambdas/${entry}/handler.ts`,
        handler,
        description,
        serviceName: `keel-${entry}`,
        memorySize: sizing.memorySize,
        timeout: Duration.minutes(sizing.timeoutMinutes),
        resources,
        environment: { KEEL_MODEL_NAME: props.modelName },
        ...(needsOnnx ? { externalModules: OnnxRuntimeLayer.EXTERNAL_MODULES, layers: [layer] } : {}),
      });

    this.etlPlan = fn('EtlPlan', 'etl', 'plan', 'Keel ETL: cut a raw CSV into row chunks', {
      memorySize: 512,
      timeoutMinutes: 5,
    });
    this.etlChunk = fn('EtlChunk', 'etl', 'chunk', 'Keel ETL: validate, encode and store one chunk', {
      memorySize: 1024,
      timeoutMinutes: 15,
    });
    this.etlFinalize = fn('EtlFinalize', 'etl', 'finalize', 'Keel ETL: check the counts of a run', {
      memorySize: 256,
      timeoutMinutes: 1,
    });
    this.train = fn(
      'Train',
      'retrain',
      'train',
      'Keel retrain: train, evaluate against the champion, register',
      { memorySize: 3008, timeoutMinutes: 15 },
      true,
    );
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
      true,
    );
    this.batchFinalize = fn('BatchFinalize', 'batch', 'finalize', 'Keel batch scoring: totals and manifest', {
      memorySize: 256,
      timeoutMinutes: 1,
    });

    buckets.raw.grantRead(this.etlPlan.function);
    buckets.raw.grantRead(this.etlChunk.function);
    buckets.features.grantWrite(this.etlChunk.function, 'features/*');
    buckets.features.grantWrite(this.etlChunk.function, 'quarantine/*');
    tables.onlineFeatures.grantWriteData(this.etlChunk.function);

    buckets.features.grantRead(this.train.function, 'features/*');
    buckets.models.grantReadWrite(this.train.function, 'models/*');
    tables.modelRegistry.grantReadWriteData(this.train.function);
    tables.modelRegistry.grantReadWriteData(this.promote.function);

    for (const f of [this.batchPlan, this.batchScore]) {
      buckets.models.grantRead(f.function, 'models/*');
      tables.modelRegistry.grantReadData(f.function);
    }
    tables.onlineFeatures.grantReadData(this.batchScore.function);
    buckets.outputs.grantWrite(this.batchScore.function, 'predictions/*');
    buckets.outputs.grantWrite(this.batchFinalize.function, 'predictions/*');
  }
}
