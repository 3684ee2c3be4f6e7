import { Duration } from 'aws-cdk-lib';
import { type Integration, LambdaIntegration } from 'aws-cdk-lib/aws-apigateway';
import { Alias, type IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { CaptureStream } from '#lib/constructs/capture-stream.ts';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { OnnxRuntimeLayer } from '#lib/constructs/onnxruntime-layer.ts';
import type { PredictBackend } from '#lib/constructs/predict-api.ts';
import {
  assertValidPredictSettings,
  captureStreamFor,
  grantPredictAccess,
  modelVariables,
  PREDICT_POWERTOOLS,
  type PredictSettings,
  predictResources,
} from '#lib/predict-settings.ts';
import { isKnown } from '#lib/prop-checks.ts';

/** Props of {@link LambdaPredict}. */
export interface LambdaPredictProps {
  /** What to serve and read. */
  readonly settings: PredictSettings;
  /**
   * Execution environments kept initialized (model loaded) for the API. When set, the API invokes a
   * `live` alias of the current version that has this provisioned concurrency.
   *
   * @default - none: the API invokes the function itself, on demand
   */
  readonly provisionedConcurrency?: number;
  /**
   * Memory in MB; CPU grows with it, and onnxruntime and the cold-start model load use it.
   *
   * @default - 1024
   */
  readonly memorySize?: number;
  /**
   * Longest invocation. Must stay under API Gateway's 29-second integration timeout, or API Gateway
   * answers 504 while the function still runs.
   *
   * @default - 15 seconds
   */
  readonly timeout?: Duration;
  /**
   * How long the function's log group keeps its logs.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** API Gateway REST integrations give up after 29 seconds. */
const API_GATEWAY_TIMEOUT = Duration.seconds(29);

/**
 * The predict handler (`lambdas/predict/handler.ts`) as a Keel function with the onnxruntime layer,
 * allowed exactly what serving needs, optionally behind an alias with provisioned concurrency.
 */
export class LambdaPredict extends Construct implements PredictBackend {
  public readonly function: KeelFunction;
  /** What the API invokes: the alias when provisioned concurrency is set, else the function. */
  public readonly target: IFunction;
  /** Delivers the function's capture lines to the outputs bucket; undefined when capture is off. */
  public readonly capture: CaptureStream | undefined;
  private readonly integration: Integration;

  constructor(scope: Construct, id: string, props: LambdaPredictProps) {
    super(scope, id);
    this.validateProps(props);
    const timeout = props.timeout ?? Duration.seconds(15);
    const provisioned = props.provisionedConcurrency;

    const layer = new OnnxRuntimeLayer(this, 'OnnxRuntime');
    this.function = new KeelFunction(this, 'Predict', {
      entry: 'lambdas/predict/handler.ts',
      description: `Keel inference API: serves model "${props.settings.modelName}" (${props.settings.backend.kind})`,
      ...PREDICT_POWERTOOLS,
      memorySize: props.memorySize ?? 1024,
      timeout,
      logRetention: props.logRetention,
      externalModules: OnnxRuntimeLayer.EXTERNAL_MODULES,
      layers: [layer.layer],
      resources: predictResources(props.settings),
      environment: modelVariables(props.settings),
    });
    grantPredictAccess(this, this.function.role, props.settings);
    this.capture = captureStreamFor(this, this.function.logGroup, props.settings, props.logRetention);

    this.target =
      provisioned === undefined
        ? this.function.function
        : new Alias(this, 'Live', {
            aliasName: 'live',
            version: this.function.function.currentVersion,
            provisionedConcurrentExecutions: provisioned,
          });
    // No test-invoke permissions: the console's "Test" button is not a way Keel is called.
    this.integration = new LambdaIntegration(this.target, { allowTestInvoke: false });
  }

  integrationFor(): Integration {
    return this.integration;
  }

  /** Refuses settings and props that cannot work; values known only at deploy time pass. */
  private validateProps(props: LambdaPredictProps): void {
    const owner = `LambdaPredict ${this.node.path}`;
    assertValidPredictSettings(owner, props.settings);
    const { timeout, provisionedConcurrency: provisioned } = props;
    if (isKnown(timeout) && timeout.toMilliseconds() >= API_GATEWAY_TIMEOUT.toMilliseconds()) {
      throw new Error(
        `${owner}: timeout ${timeout.toHumanString()} is not below API Gateway's 29-second integration timeout: lower it`,
      );
    }
    if (isKnown(provisioned) && (!Number.isInteger(provisioned) || provisioned < 1)) {
      throw new Error(
        `${owner}: provisionedConcurrency must be a whole number of at least 1, or left out for none (got ${provisioned})`,
      );
    }
  }
}
