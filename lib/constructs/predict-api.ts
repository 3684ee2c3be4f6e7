import { RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  type Integration,
  type JsonSchema,
  LogGroupLogDestination,
  MethodLoggingLevel,
  type Model,
  Period,
  ResponseType,
  RestApi,
  type UsagePlan,
} from 'aws-cdk-lib/aws-apigateway';
import { AccountPrincipal, ArnPrincipal, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { checkLogRetention, isKnown } from '#lib/prop-checks.ts';
import {
  CROSS_ACCOUNT_CALLER,
  CROSS_ACCOUNT_CALLER_RULE,
  callerAccount,
  crossAccountCallersProblem,
} from '#shared/config/rules.ts';
import { type RequestModelName, requestModelSchema } from '#shared/inference/openapi.ts';
import { MAX_BATCH_ITEMS } from '#shared/inference/schemas.ts';

/** One route of the inference API (docs/architecture.md, "Inference API"). */
export interface ApiRoute {
  readonly method: 'GET' | 'POST';
  /** Path under the stage, e.g. `/predict`. */
  readonly path: string;
}

/** The routes of the contract; the handler's router serves the same ones (`API_ROUTES`). */
export const PREDICT_ROUTES: readonly ApiRoute[] = [
  { method: 'POST', path: '/predict' },
  { method: 'POST', path: '/predict/batch' },
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/openapi.json' },
];

/** The compute behind the API: a Lambda function or the ECS service. */
export interface PredictBackend {
  /** The integration serving `route`. */
  integrationFor(route: ApiRoute): Integration;
}

export interface ThrottleLimits {
  /** Steady-state requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst above the rate. */
  readonly burstLimit: number;
}

export interface RequestQuota {
  /** Requests allowed per {@link period}. */
  readonly limit: number;
  readonly period: Period;
}

/** Props of {@link PredictApi}. */
export interface PredictApiProps {
  /** Name of the REST API, e.g. `keel-dev-inference`. */
  readonly apiName: string;
  /** Serves the routes. */
  readonly backend: PredictBackend;
  /**
   * Name of the deployed stage, the first segment of every URL path.
   *
   * @default - 'v1'
   */
  readonly stageName?: string;
  /**
   * Stage-wide throttling of every method, for all callers together; excess requests get 429.
   *
   * @default - 100 requests per second, bursts of 200
   */
  readonly throttle?: ThrottleLimits;
  /**
   * Quota of the usage plan, counted per API key: only with {@link requireApiKey}.
   *
   * @default - 1,000,000 requests per day, with {@link requireApiKey}
   */
  readonly quota?: RequestQuota;
  /**
   * Require an API key (`x-api-key`) besides the IAM signature, and meter each key with a usage plan
   * of {@link quota} and {@link throttle} (issue keys and add them to the plan out of band). Usage
   * plans count API keys only, so without keys there is no plan, and the stage throttle and the WAF
   * rate rule are what limit traffic.
   *
   * @default - false
   */
  readonly requireApiKey?: boolean;
  /**
   * Principals of other AWS accounts allowed to invoke every route, through the API's resource policy:
   * 12-digit account ids (whatever the account's own IAM policies allow) or IAM role or user ARNs. They
   * sign with IAM like same-account callers, and their own account must allow them `execute-api:Invoke`
   * too. The stack's own account is refused: its principals need only their IAM policy.
   *
   * @default - none: no resource policy, only same-account principals that IAM allows
   */
  readonly crossAccountCallers?: readonly string[];
  /**
   * How long the access and execution log groups keep their logs. INFINITE is refused.
   *
   * @default - RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

const STAGE_NAME_PATTERN = /^[A-Za-z0-9_]{1,128}$/;

/**
 * The access log line: one JSON object per request. API Gateway substitutes values unescaped, so only
 * fields that cannot hold a double quote are logged: ids, ARNs, numbers, API Gateway's own messages;
 * no client-controlled text such as the user agent (callers are identified by their IAM ARN).
 */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: AccessLogField.contextRequestId(),
  extendedRequestId: AccessLogField.contextExtendedRequestId(),
  requestTime: AccessLogField.contextRequestTime(),
  httpMethod: AccessLogField.contextHttpMethod(),
  resourcePath: AccessLogField.contextResourcePath(),
  status: AccessLogField.contextStatus(),
  protocol: AccessLogField.contextProtocol(),
  responseLength: AccessLogField.contextResponseLength(),
  responseLatency: AccessLogField.contextResponseLatency(),
  integrationLatency: AccessLogField.contextIntegrationLatency(),
  integrationStatus: AccessLogField.contextIntegrationStatus(),
  sourceIp: AccessLogField.contextIdentitySourceIp(),
  caller: AccessLogField.contextIdentityCaller(),
  userArn: AccessLogField.contextIdentityUserArn(),
  apiKeyId: AccessLogField.contextIdentityApiKeyId(),
  wafResponseCode: AccessLogField.contextWafResponseCode(),
  errorType: AccessLogField.contextErrorResponseType(),
  errorMessage: AccessLogField.contextErrorMessage(),
  xrayTraceId: AccessLogField.contextXrayTraceId(),
});

/**
 * Errors API Gateway answers itself (before or instead of the backend), in the contract's error body
 * `{"error": {"code", "message"}}`. Gateway response templates are not VTL: `messageString` is the
 * only escaped message, so a body the request model refuses gets no `details` (README: the inference
 * API in AWS). The validation string is not logged either: it echoes the client's values.
 */
const GATEWAY_ERRORS: readonly { readonly type: ResponseType; readonly code: string }[] = [
  { type: ResponseType.BAD_REQUEST_BODY, code: 'ValidationError' },
  { type: ResponseType.BAD_REQUEST_PARAMETERS, code: 'ValidationError' },
  { type: ResponseType.REQUEST_TOO_LARGE, code: 'PayloadTooLarge' },
  { type: ResponseType.INTEGRATION_FAILURE, code: 'Unavailable' },
  { type: ResponseType.INTEGRATION_TIMEOUT, code: 'Unavailable' },
  { type: ResponseType.DEFAULT_5XX, code: 'Internal' },
  // Authentication, authorization, throttling, WAF: API Gateway's own type names the reason.
  { type: ResponseType.DEFAULT_4XX, code: '$context.error.responseType' },
];

function assertPositive(owner: string, name: string, value: number | undefined, integer: boolean): void {
  if (!isKnown(value)) return;
  if (!(value > 0) || (integer && !Number.isInteger(value)) || !Number.isFinite(value)) {
    throw new Error(`${owner}: ${name} must be a positive ${integer ? 'integer' : 'number'} (got ${value})`);
  }
}

/**
 * The resource policy that lets principals of other accounts invoke the stage's routes, or none. A
 * same-account caller is allowed by its IAM policy whatever this says (no statement here denies); a
 * cross-account one needs both. API Gateway expands `execute-api:/…` to this API's ARN.
 */
function crossAccountPolicy(stageName: string, callers: readonly string[]): PolicyDocument | undefined {
  if (callers.length === 0) return undefined;
  return new PolicyDocument({
    statements: [
      new PolicyStatement({
        sid: 'CrossAccountCallers',
        principals: callers.map((caller) =>
          /^\d{12}$/.test(caller) ? new AccountPrincipal(caller) : new ArnPrincipal(caller),
        ),
        actions: ['execute-api:Invoke'],
        resources: PREDICT_ROUTES.map((route) => `execute-api:/${stageName}/${route.method}${route.path}`),
      }),
    ],
  });
}

/**
 * The inference API: a regional REST API with the contract's routes, every method signed with IAM
 * (SigV4), optionally open to named principals of other accounts, bodies checked against JSON-schema
 * models by a request validator, a stage with stage-wide throttling, X-Ray tracing, execution logs
 * (errors) and JSON access logs, optionally API keys metered by a usage plan, and errors API Gateway
 * raises itself in the contract's error format. The firewall is {@link ApiWebAcl}.
 */
export class PredictApi extends Construct {
  public readonly api: RestApi;
  /** The per-key usage plan; undefined unless API keys are required. */
  public readonly usagePlan: UsagePlan | undefined;
  public readonly accessLogs: LogGroup;
  /** The stage's execution log group (errors only: {@link MethodLoggingLevel.ERROR}, no bodies). */
  public readonly executionLogs: LogGroup;

  constructor(scope: Construct, id: string, props: PredictApiProps) {
    super(scope, id);
    this.validateProps(props);
    const stageName = props.stageName ?? 'v1';
    const throttle = props.throttle ?? { rateLimit: 100, burstLimit: 200 };
    const requireApiKey = props.requireApiKey ?? false;
    const quota = props.quota ?? { limit: 1_000_000, period: Period.DAY };
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: logRetention });
    this.api = new RestApi(this, 'Api', {
      restApiName: props.apiName,
      description: 'Keel inference API (docs/architecture.md, "Inference API")',
      endpointTypes: [EndpointType.REGIONAL],
      policy: crossAccountPolicy(stageName, props.crossAccountCallers ?? []),
      // Execution logging needs API Gateway's account-level CloudWatch role. It is one per account and
      // region, shared by every stage's API, so deleting this stack must not delete it.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName,
        tracingEnabled: true,
        loggingLevel: MethodLoggingLevel.ERROR,
        // Request and response bodies hold customer data: never in the execution logs.
        dataTraceEnabled: false,
        metricsEnabled: true,
        throttlingRateLimit: throttle.rateLimit,
        throttlingBurstLimit: throttle.burstLimit,
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    // API Gateway writes the stage's execution logs to this group, and creates it, with no retention,
    // when the first line is logged; created here first, it keeps the stage's retention.
    this.executionLogs = new LogGroup(this, 'ExecutionLogs', {
      logGroupName: `API-Gateway-Execution-Logs_${this.api.restApiId}/${stageName}`,
      retention: logRetention,
    });
    this.api.deploymentStage.node.addDependency(this.executionLogs);
    const validator = this.api.addRequestValidator('Validator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const models = this.requestModels();
    for (const route of PREDICT_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      const model = models.get(`${route.method} ${route.path}`);
      const method = resource.addMethod(route.method, props.backend.integrationFor(route), {
        authorizationType: AuthorizationType.IAM,
        apiKeyRequired: requireApiKey,
        requestValidator: validator,
        requestModels: model ? { 'application/json': model } : undefined,
      });
      Validations.of(method).acknowledge({
        id: 'AwsSolutions-COG4',
        reason:
          'Callers are AWS principals (services, batch jobs, operators) authorized by IAM SigV4 (AuthorizationType.IAM), not Cognito users',
      });
    }
    for (const { type, code } of GATEWAY_ERRORS) {
      this.api.addGatewayResponse(`Error${type.responseType}`, {
        type,
        templates: {
          'application/json': `{"error":{"code":"${code}","message":$context.error.messageString}}`,
        },
      });
    }

    // Usage plans meter, throttle and cap traffic per API key: IAM-signed requests without a key would
    // pass by a plan uncounted.
    this.usagePlan = requireApiKey
      ? this.api.addUsagePlan('UsagePlan', {
          name: `${props.apiName}-plan`,
          description: 'Per-API-key throttle and quota of the inference API',
          throttle,
          quota,
          apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
        })
      : undefined;

    const cloudWatchRole = this.api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "The AWS managed policy AWS documents for API Gateway's account-level logging role; it is limited to log delivery",
      });
    }
  }

  /** Refuses props API Gateway would refuse, or that would not do what they say; deploy-time values pass. */
  private validateProps(props: PredictApiProps): void {
    const owner = `PredictApi ${this.node.path}`;
    const { stageName, throttle, quota } = props;
    if (isKnown(stageName) && !STAGE_NAME_PATTERN.test(stageName)) {
      throw new Error(`${owner}: stageName "${stageName}" is invalid: use 1-128 letters, digits or "_"`);
    }
    assertPositive(owner, 'throttle.rateLimit', throttle?.rateLimit, false);
    assertPositive(owner, 'throttle.burstLimit', throttle?.burstLimit, true);
    if (quota && !props.requireApiKey) {
      throw new Error(`${owner}: quota counts requests per API key: set requireApiKey, or remove quota`);
    }
    assertPositive(owner, 'quota.limit', quota?.limit, true);
    checkLogRetention(owner, props.logRetention);
    const callers = props.crossAccountCallers ?? [];
    const bad = callers.find((caller) => !CROSS_ACCOUNT_CALLER.test(caller));
    if (bad !== undefined)
      throw new Error(`${owner}: crossAccountCallers: "${bad}" ${CROSS_ACCOUNT_CALLER_RULE}`);
    const problem = crossAccountCallersProblem(callers);
    if (problem) throw new Error(`${owner}: crossAccountCallers ${problem}`);
    const { account } = Stack.of(this);
    const own = Token.isUnresolved(account) ? undefined : callers.find((c) => callerAccount(c) === account);
    if (own !== undefined) {
      throw new Error(
        `${owner}: crossAccountCallers: ${own} is in the stack's own account ${account}: its principals need only an IAM policy allowing execute-api:Invoke, not the API's resource policy`,
      );
    }
  }

  /**
   * The request models of the POST bodies: the draft-4 JSON schemas of the OpenAPI document, generated
   * from the handler's zod schemas, so API Gateway refuses what the handler would (bad items of a batch
   * excepted: the handler answers each with an error in its place). The gateway's 400 carries no
   * per-field details; the handler's does, for bodies that reach it.
   */
  private requestModels(): Map<string, Model> {
    const model = (name: RequestModelName, description: string) =>
      this.api.addModel(name, {
        contentType: 'application/json',
        modelName: name,
        description,
        schema: requestModelSchema(name) as JsonSchema,
      });
    return new Map([
      ['POST /predict', model('PredictRequest', '{"customerId": string, "attributes"?: {raw fields}}')],
      [
        'POST /predict/batch',
        model('BatchPredictRequest', `{"items": [<predict body>, …]} with 1 to ${MAX_BATCH_ITEMS} items`),
      ],
    ]);
  }
}
