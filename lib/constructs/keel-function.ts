import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  type CfnFunction,
  type ILayerVersion,
  LoggingFormat,
  Runtime,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FUNCTION_BUNDLING } from '#lib/bundling.ts';
import { acknowledgeWildcardResource } from '#lib/nag.ts';
import { ENTRY_METADATA, REPO_ROOT } from '#lib/paths.ts';
import {
  type KeelLogLevel,
  powertoolsVariables,
  type ResourceRefs,
  resourceVariables,
} from '#lib/process-environment.ts';
import { checkLogRetention, isKnown } from '#lib/prop-checks.ts';

/** Props of {@link KeelFunction}. */
export interface KeelFunctionProps {
  /** The handler's source file, relative to the repository root, e.g. `lambdas/predict/handler.ts`. */
  readonly entry: string;
  /**
   * Name of the exported handler function in {@link entry}.
   *
   * @default - 'handler'
   */
  readonly handler?: string;
  /** What the function does, shown in the Lambda console. */
  readonly description: string;
  /**
   * A fixed physical name, for a function another stack invokes by name (a reference would make the
   * stacks depend on each other). At most 64 characters.
   *
   * @default - a name CloudFormation generates
   */
  readonly functionName?: string;
  /** Powertools service name (`POWERTOOLS_SERVICE_NAME`): the `service` of every log line, metric and trace. */
  readonly serviceName: string;
  /**
   * CloudWatch namespace of the function's Powertools metrics (`POWERTOOLS_METRICS_NAMESPACE`).
   *
   * @default - 'Keel'
   */
  readonly metricsNamespace?: string;
  /**
   * Lowest level logged, by Powertools and by Lambda's JSON log filter alike.
   *
   * @default - 'INFO'
   */
  readonly logLevel?: KeelLogLevel;
  /**
   * Memory in MB, 128 to 10240; Lambda allocates CPU in proportion.
   *
   * @default - 512
   */
  readonly memorySize?: number;
  /**
   * Maximum run time of one invocation, whole seconds from 1 second to 15 minutes.
   *
   * @default - 30 seconds
   */
  readonly timeout?: Duration;
  /**
   * How long the function's log group keeps its logs. INFINITE is refused.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Packages left out of the bundle and imported at run time, from a layer in {@link layers}
   * (native addons such as onnxruntime-node, which esbuild cannot bundle).
   *
   * @default - none: everything is bundled, the AWS SDK included
   */
  readonly externalModules?: readonly string[];
  /**
   * Lambda layers, e.g. the one providing {@link externalModules}.
   *
   * @default - none
   */
  readonly layers?: readonly ILayerVersion[];
  /**
   * Names of the Keel buckets and tables the handler uses, passed as the `RESOURCE_ENV` variables of
   * `shared/resources.ts`. Naming a resource here grants nothing: grant access separately.
   *
   * @default - none
   */
  readonly resources?: ResourceRefs;
  /**
   * Further environment variables. They may not redefine one this construct sets (resources,
   * Powertools, `NODE_OPTIONS`).
   *
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * For a function invoked asynchronously (an EventBridge rule, an S3 notification): where Lambda sends
   * an event that failed all its attempts — the function's on-failure destination, which records the
   * error and the request with the event.
   *
   * @default - none: the function is invoked synchronously (API Gateway, Step Functions tasks), whose
   *   callers receive its failures
   */
  readonly asyncInvocation?: {
    readonly onFailure: IQueue;
    /** @default - 2 (Lambda's default) */
    readonly retryAttempts?: number;
    /** @default - 6 hours (Lambda's default) */
    readonly maxEventAge?: Duration;
  };
}

const MEMORY_MB = { min: 128, max: 10_240 };
const TIMEOUT_SECONDS = { min: 1, max: 900 };

/**
 * THE Lambda function of Keel: a TypeScript handler bundled locally by esbuild as one minified ESM
 * file with a source map, on Node.js 22, x86_64 (onnxruntime-node's arm64 build has a reported
 * initialisation crash), with X-Ray active tracing, JSON logs in its own log group with a retention, and
 * a role that may write only to that log group (plus X-Ray); callers add their grants to {@link role}.
 *
 * Most Keel functions are invoked synchronously (API Gateway, Step Functions tasks): errors return to
 * the caller, so they have no asynchronous failure destination or dead-letter queue. A function invoked
 * asynchronously says so ({@link KeelFunctionProps.asyncInvocation}) and gets an on-failure destination.
 */
export class KeelFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: KeelFunctionProps) {
    super(scope, id);
    const logLevel = props.logLevel ?? 'INFO';
    const environment = {
      ...resourceVariables(props.resources ?? {}),
      ...powertoolsVariables({
        serviceName: props.serviceName,
        metricsNamespace: props.metricsNamespace ?? 'Keel',
        logLevel,
      }),
      // Stack traces point into the TypeScript sources instead of the minified bundle.
      NODE_OPTIONS: '--enable-source-maps',
    };
    this.validateProps(props, environment);
    // Without a local esbuild, CDK falls back to bundling in Docker, which Keel never uses.
    if (!existsSync(join(REPO_ROOT, 'node_modules/.bin/esbuild'))) {
      throw new Error(
        `KeelFunction ${this.node.path}: esbuild is not installed: run npm ci (it is a dev dependency) to bundle locally`,
      );
    }
    const memorySize = props.memorySize ?? 512;
    const timeout = props.timeout ?? Duration.seconds(30);

    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    // Instead of AWSLambdaBasicExecutionRole, which may write to every log group in the account.
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, props.entry),
      handler: props.handler ?? 'handler',
      description: props.description,
      functionName: props.functionName,
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.X86_64,
      memorySize,
      timeout,
      tracing: Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel[logLevel],
      layers: props.layers ? [...props.layers] : undefined,
      environment: { ...environment, ...props.environment },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: [...FUNCTION_BUNDLING.mainFields],
        banner: FUNCTION_BUNDLING.banner,
        minify: FUNCTION_BUNDLING.minify,
        keepNames: FUNCTION_BUNDLING.keepNames,
        sourceMap: true,
        sourcesContent: FUNCTION_BUNDLING.sourcesContent,
        // The SDK is bundled, not taken from the runtime: the deployed code runs the SDK version the
        // tests ran (package-lock.json), not whatever version the runtime ships that week.
        bundleAwsSDK: true,
        externalModules: props.externalModules ? [...props.externalModules] : [],
      },
    });

    // The local platform runs this source file in its Lambda-like environments (local/lambda).
    (this.function.node.defaultChild as CfnFunction).addMetadata(ENTRY_METADATA, props.entry);

    acknowledgeWildcardResource(this.role, {
      resource: '*',
      actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
      reason:
        'Active tracing: X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions, so AWS requires "*"',
    });
    for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
      Validations.of(this.function).acknowledge({
        id,
        reason:
          'Node.js 22 (LTS, supported by Lambda) is the runtime Keel bundles for (esbuild target node22) and its onnxruntime layer is built for; a newer one is a deliberate upgrade with its own test run',
      });
    }
    const async = props.asyncInvocation;
    if (async) {
      this.function.configureAsyncInvoke({
        onFailure: new SqsDestination(async.onFailure),
        retryAttempts: async.retryAttempts,
        maxEventAge: async.maxEventAge,
      });
      Validations.of(this.function).acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason:
          'Failed asynchronous events go to the on-failure destination (a queue), which supersedes a dead-letter queue: it receives the same events plus the error and the request; a DLQ as well would queue each failure twice',
      });
    } else {
      for (const id of ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination']) {
        Validations.of(this.function).acknowledge({
          id,
          reason:
            'Invoked synchronously only (API Gateway, Step Functions tasks), which return failures to the caller; no event is ever queued for a dead-letter target',
        });
      }
    }
  }

  /** Refuses props Lambda or this construct would refuse; values known only at deploy time pass. */
  private validateProps(props: KeelFunctionProps, ownVariables: Readonly<Record<string, string>>): void {
    const owner = `KeelFunction ${this.node.path}`;
    if (!existsSync(join(REPO_ROOT, props.entry))) {
      throw new Error(
        `${owner}: entry "${props.entry}" does not exist: give a path relative to ${REPO_ROOT}`,
      );
    }
    const memorySize = props.memorySize;
    if (
      isKnown(memorySize) &&
      (!Number.isInteger(memorySize) || memorySize < MEMORY_MB.min || memorySize > MEMORY_MB.max)
    ) {
      throw new Error(
        `${owner}: memorySize must be a whole number of MB from ${MEMORY_MB.min} to ${MEMORY_MB.max} (got ${memorySize})`,
      );
    }
    const timeout = props.timeout;
    if (isKnown(timeout)) {
      const seconds = timeout.toSeconds({ integral: false });
      if (!Number.isInteger(seconds) || seconds < TIMEOUT_SECONDS.min || seconds > TIMEOUT_SECONDS.max) {
        throw new Error(
          `${owner}: timeout must be whole seconds from ${TIMEOUT_SECONDS.min} second to 15 minutes (got ${timeout.toHumanString()})`,
        );
      }
    }
    const { functionName } = props;
    if (isKnown(functionName) && !/^[A-Za-z0-9_-]{1,64}$/.test(functionName)) {
      throw new Error(
        `${owner}: functionName "${functionName}" is not a Lambda function name: 1 to 64 letters, digits, dashes and underscores`,
      );
    }
    checkLogRetention(owner, props.logRetention);
    const redefined = Object.keys(props.environment ?? {}).filter((name) => name in ownVariables);
    if (redefined.length > 0) {
      throw new Error(
        `${owner}: environment may not set ${redefined.join(', ')}: use the resources, serviceName, metricsNamespace or logLevel props`,
      );
    }
  }
}
