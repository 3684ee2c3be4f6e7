import { CfnOutput, CrossStackReferences, Fn, ReferenceStrength, Stack } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ApiWebAcl } from '#lib/constructs/api-web-acl.ts';
import { FargatePredict } from '#lib/constructs/fargate-predict.ts';
import type { KeelFunction } from '#lib/constructs/keel-function.ts';
import { LambdaPredict } from '#lib/constructs/lambda-predict.ts';
import { PredictApi, type ThrottleLimits } from '#lib/constructs/predict-api.ts';
import type { PredictSettings } from '#lib/predict-settings.ts';
import {
  type DataResources,
  type KeelStackProps,
  type ModelProps,
  modelNameOf,
} from '#lib/stacks/common-props.ts';
import type { InferenceKind } from '#shared/config/keel-config.ts';
import { lambdaOnlyKeysSet, lambdaOnlyProblem } from '#shared/config/rules.ts';
import type { ModelBackend } from '#shared/inference/predict-environment.ts';
import { assertValidStage } from '#shared/resources.ts';

/**
 * Props of {@link InferenceStack}. Of the data stack's resources, the models bucket, the registry and
 * the online store are read; prediction captures are written to the outputs bucket
 * (`captures/model=<name>/`) for the drift job.
 */
export interface InferenceStackProps extends KeelStackProps, DataResources, ModelProps {
  /**
   * What runs the predict handler behind the API: a Lambda function, or an ECS Fargate service
   * reached through a VPC link.
   *
   * @default - 'lambda'
   */
  readonly inference?: InferenceKind;
  /**
   * Where the model is evaluated: onnxruntime in the predict process, or a SageMaker endpoint.
   *
   * @default - { kind: 'onnx' }
   */
  readonly modelBackend?: ModelBackend;
  /**
   * Provisioned concurrency of the predict function (`inference: 'lambda'` only): the API then
   * invokes an alias with this many initialized execution environments.
   *
   * @default - none: on-demand only
   */
  readonly provisionedConcurrency?: number;
  /**
   * Stage-wide API throttling.
   *
   * @default - 100 requests per second, bursts of 200
   */
  readonly throttle?: ThrottleLimits;
  /**
   * WAF limit of requests per client IP in any 5-minute window.
   *
   * @default - 3000
   */
  readonly wafRateLimitPer5Minutes?: number;
  /**
   * Principals of other AWS accounts allowed to call the API through its resource policy: account ids
   * or IAM role or user ARNs.
   *
   * @default - none: only the stack's own account's principals that IAM allows
   */
  readonly crossAccountCallers?: readonly string[];
  /**
   * Memory of the predict function in MB (`inference: 'lambda'` only).
   *
   * @default - 1024
   */
  readonly memorySize?: number;
  /**
   * Share of predictions captured to the outputs bucket for the drift job, 0..1; 0 turns capture off.
   *
   * @default - 1 (every prediction)
   */
  readonly captureSampleRate?: number;
  /**
   * How long the predict process's and the API's access log groups keep their logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * Keel's real-time inference: the REST API of docs/architecture.md ("Inference API") in front of the predict
 * handler on Lambda or ECS, with a WAF web ACL on its stage.
 */
export class InferenceStack extends Stack {
  public readonly api: PredictApi;
  /** The predict function (its alarms and logs are watched by the monitoring stack); undefined with ECS. */
  public readonly predictFunction?: KeelFunction;

  /**
   * The region's first two zones (every region has two) as CloudFormation resolves them
   * (`Fn::GetAZs`), as for a stack without an env: with one, CDK would look them up, which needs AWS
   * credentials, and `cdk synth` runs offline.
   */
  override get availabilityZones(): string[] {
    return [0, 1].map((i) => Fn.select(i, Fn.getAzs()));
  }

  constructor(scope: Construct, id: string, props: InferenceStackProps) {
    // Before super(): a bad prop must not leave a half-built stack in the app.
    assertValidStage(props.stage);
    const inference = props.inference ?? 'lambda';
    const { provisionedConcurrency, memorySize } = props;
    const [lambdaOnly] = lambdaOnlyKeysSet(inference, { provisionedConcurrency, memorySize });
    if (lambdaOnly) throw new Error(`InferenceStack ${id}: ${lambdaOnly} ${lambdaOnlyProblem('inference')}`);
    super(scope, id, { description: `Keel ${props.stage}: inference API (${inference})`, ...props });
    // Exports/imports: the data stack cannot remove a bucket or table this stack still reads. Strong
    // references suit what exists under every configuration; test/infra/config-changes.test.ts
    // checks that no documented configuration change removes an export another stack imports.
    CrossStackReferences.of(this).consume(ReferenceStrength.STRONG);
    const { stage } = props;
    const settings: PredictSettings = {
      modelsBucket: props.buckets.models,
      registryTable: props.tables.modelRegistry,
      onlineTable: props.tables.onlineFeatures,
      modelName: modelNameOf(props),
      backend: props.modelBackend ?? { kind: 'onnx' },
      outputsBucket: props.buckets.outputs,
      captureSampleRate: props.captureSampleRate,
    };

    const backend =
      inference === 'lambda'
        ? new LambdaPredict(this, 'Lambda', {
            settings,
            provisionedConcurrency: props.provisionedConcurrency,
            memorySize: props.memorySize,
            logRetention: props.logRetention,
          })
        : new FargatePredict(this, 'Ecs', { settings, logRetention: props.logRetention });
    this.api = new PredictApi(this, 'Api', {
      apiName: `keel-${stage}-inference`,
      backend,
      throttle: props.throttle,
      crossAccountCallers: props.crossAccountCallers,
      logRetention: props.logRetention,
    });
    new ApiWebAcl(this, 'Waf', {
      name: `keel-${stage}-inference`,
      stageArn: this.api.api.deploymentStage.stageArn,
      rateLimitPer5Minutes: props.wafRateLimitPer5Minutes,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.api.url, exportName: `keel-${stage}-inference-api-url` });
    if (backend instanceof LambdaPredict) {
      this.predictFunction = backend.function;
      // Only the Lambda variant has these, so the monitoring stack references them weakly: it reads
      // their names from this stack's outputs when it deploys (Fn::GetStackOutput). A strong reference
      // would make switching to ECS fail: CloudFormation updates this stack first, and it may not
      // delete an export that the monitoring stack still imports. BOTH, not WEAK, keeps the export
      // too, which no stack imports any more: a stage deployed before still imports it until its
      // monitoring stack updates, so deleting the export now would block that update.
      for (const resource of [backend.function.function, backend.function.logGroup]) {
        CrossStackReferences.of(resource).produce(ReferenceStrength.BOTH);
      }
      new CfnOutput(this, 'FunctionName', {
        value: backend.function.function.functionName,
        exportName: `keel-${stage}-predict-function-name`,
      });
    } else {
      new CfnOutput(this, 'ServiceName', {
        value: backend.service.serviceName,
        exportName: `keel-${stage}-predict-service-name`,
      });
    }
  }
}
