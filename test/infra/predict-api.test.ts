import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { type Method, MockIntegration, Period } from 'aws-cdk-lib/aws-apigateway';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { PREDICT_ROUTES, PredictApi, type PredictApiProps } from '#lib/constructs/predict-api.ts';
import { API_ROUTES } from '#shared/inference/api.ts';
import { openApiDocument } from '#shared/inference/openapi.ts';
import { MAX_BATCH_ITEMS } from '#shared/inference/schemas.ts';
import { NO_BUNDLING } from '../support/cdk.ts';
import { only, type Resource } from '../support/cfn-template.ts';
import { newApp, synthesizedInferenceApp } from '../support/inference-stack.ts';

/** The REST API in front of the predict handler (PredictApi): routes, validation, stage, errors, keys. */
describe('PredictApi in the inference stack', () => {
  const { stack, template } = synthesizedInferenceApp({}, NO_BUNDLING);

  it('serves exactly the routes of the contract (and of the handler’s router), each signed with IAM', () => {
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    expect(methods.filter((m) => m.Properties.HttpMethod === 'OPTIONS')).toEqual([]);
    expect(methods.map((m) => m.Properties.AuthorizationType)).toEqual(methods.map(() => 'AWS_IAM'));
    expect(PREDICT_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual([...API_ROUTES].sort());
    expect(methods.map((m) => m.Properties.HttpMethod).sort()).toEqual(['GET', 'GET', 'POST', 'POST']);
    template.allResourcesProperties('AWS::ApiGateway::Method', { ApiKeyRequired: false });
  });

  it('validates body and parameters of every method, and the POST bodies against JSON-schema models', () => {
    const [validatorId] = only(template, 'AWS::ApiGateway::RequestValidator');
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    template.allResourcesProperties('AWS::ApiGateway::Method', { RequestValidatorId: { Ref: validatorId } });
    const models = template.findResources('AWS::ApiGateway::Model');
    const modelId = (name: string) => Object.keys(models).find((id) => models[id]!.Properties.Name === name)!;
    const methodId = (path: string) =>
      stack.resolve((stack.api.api.root.resourceForPath(path).node.findChild('POST') as Method).methodId).Ref;
    const ids = { predict: methodId('/predict'), batch: methodId('/predict/batch') };
    expect(template.toJSON().Resources[ids.predict].Properties.RequestModels).toEqual({
      'application/json': { Ref: modelId('PredictRequest') },
    });
    expect(template.toJSON().Resources[ids.batch].Properties.RequestModels).toEqual({
      'application/json': { Ref: modelId('BatchPredictRequest') },
    });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'GET',
      RequestModels: Match.absent(),
    });
    // The models are the OpenAPI document's request schemas (draft 4, as API Gateway takes them).
    const document = openApiDocument('/') as { components: { schemas: Record<string, object> } };
    for (const name of ['PredictRequest', 'BatchPredictRequest']) {
      expect(models[modelId(name)]!.Properties).toMatchObject({ ContentType: 'application/json' });
      expect(models[modelId(name)]!.Properties.Schema).toEqual({
        $schema: 'http://json-schema.org/draft-04/schema#',
        ...document.components.schemas[name],
      });
    }
    expect(models[modelId('PredictRequest')]!.Properties.Schema).toMatchObject({
      required: ['customerId'],
      additionalProperties: false,
      properties: { attributes: { additionalProperties: false, properties: { age: { minimum: 18 } } } },
    });
    expect(models[modelId('BatchPredictRequest')]!.Properties.Schema).toMatchObject({
      properties: { items: { type: 'array', minItems: 1, maxItems: MAX_BATCH_ITEMS } },
    });
  });

  it('throttles the stage, traces it, logs execution errors (no bodies) and JSON access logs', () => {
    const [logGroupId] = Object.entries(template.findResources('AWS::Logs::LogGroup')).find(([id]) =>
      id.startsWith('ApiAccessLogs'),
    )!;
    template.hasResourceProperties('AWS::Logs::LogGroup', Match.objectLike({ RetentionInDays: 30 }));
    const [, stage] = only(template, 'AWS::ApiGateway::Stage');
    expect(stage.Properties).toMatchObject({
      StageName: 'v1',
      TracingEnabled: true,
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          MetricsEnabled: true,
          ThrottlingRateLimit: 100,
          ThrottlingBurstLimit: 200,
        },
      ],
      AccessLogSetting: { DestinationArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } },
    });
    const format = JSON.parse(stage.Properties.AccessLogSetting.Format);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      caller: '$context.identity.caller',
      userArn: '$context.identity.userArn',
      wafResponseCode: '$context.wafResponseCode',
      integrationLatency: '$context.integrationLatency',
    });
    // API Gateway substitutes unescaped: no client-controlled text in the line.
    expect(Object.values(format)).not.toContain('$context.identity.userAgent');
    only(template, 'AWS::ApiGateway::Account');
  });

  it('has no usage plan: its quota and throttle count API keys, and no method takes one', () => {
    template.resourceCountIs('AWS::ApiGateway::UsagePlan', 0);
    template.allResourcesProperties('AWS::ApiGateway::Method', { ApiKeyRequired: false });
  });

  it('answers the errors API Gateway raises itself in the contract’s error body', () => {
    const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse')) as Resource[];
    const byType = Object.fromEntries(
      responses.map((r) => [
        r.Properties.ResponseType,
        JSON.parse(
          r.Properties.ResponseTemplates['application/json'].replace('$context.error.messageString', '"m"'),
        ),
      ]),
    );
    expect(byType).toEqual({
      BAD_REQUEST_BODY: { error: { code: 'ValidationError', message: 'm' } },
      BAD_REQUEST_PARAMETERS: { error: { code: 'ValidationError', message: 'm' } },
      REQUEST_TOO_LARGE: { error: { code: 'PayloadTooLarge', message: 'm' } },
      INTEGRATION_FAILURE: { error: { code: 'Unavailable', message: 'm' } },
      INTEGRATION_TIMEOUT: { error: { code: 'Unavailable', message: 'm' } },
      DEFAULT_5XX: { error: { code: 'Internal', message: 'm' } },
      DEFAULT_4XX: { error: { code: '$context.error.responseType', message: 'm' } },
    });
  });
});

describe('PredictApi with callers in other accounts', () => {
  const callers = ['210987654321', 'arn:aws:iam::444455556666:role/scoring/batch-scorer'];
  const { template, findings } = synthesizedInferenceApp({ crossAccountCallers: callers }, NO_BUNDLING);
  const deploymentId = (t: Template) => only(t, 'AWS::ApiGateway::Deployment')[0];

  it('lets exactly those principals invoke exactly the stage’s routes, through the API’s resource policy', () => {
    expect(findings).toEqual([]);
    const [, api] = only(template, 'AWS::ApiGateway::RestApi');
    expect(api.Properties.Policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'CrossAccountCallers',
          Effect: 'Allow',
          Principal: {
            AWS: [
              'arn:aws:iam::444455556666:role/scoring/batch-scorer',
              { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::210987654321:root']] },
            ],
          },
          Action: 'execute-api:Invoke',
          // API Gateway expands execute-api:/ to this API's ARN: stage, method, path of each route.
          Resource: [
            'execute-api:/v1/GET/health',
            'execute-api:/v1/GET/openapi.json',
            'execute-api:/v1/POST/predict',
            'execute-api:/v1/POST/predict/batch',
          ],
        },
      ],
    });
    // Every route the stage serves, and no other.
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    expect(api.Properties.Policy.Statement[0].Resource).toHaveLength(methods.length);
    expect(PREDICT_ROUTES).toHaveLength(methods.length);
  });

  it('has no resource policy without them, and redeploys the stage when they change', () => {
    const { template: plain } = synthesizedInferenceApp({}, NO_BUNDLING);
    plain.hasResourceProperties('AWS::ApiGateway::RestApi', { Policy: Match.absent() });
    // A resource policy takes effect with the next deployment of the API.
    expect(deploymentId(template)).not.toBe(deploymentId(plain));
  });

  it.each([
    [
      ['21098765432'],
      'crossAccountCallers: "21098765432" must be a 12-digit AWS account id or an IAM role or user ARN',
    ],
    [['210987654321', '210987654321'], 'crossAccountCallers lists 210987654321 twice'],
    [
      ['arn:aws:iam::123456789012:role/x'],
      "crossAccountCallers: arn:aws:iam::123456789012:role/x is in the stack's own account 123456789012: its principals need only an IAM policy allowing execute-api:Invoke",
    ],
  ])('refuses the callers %j', (crossAccountCallers, message) => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S', {
      env: { account: '123456789012', region: 'us-east-1' },
    });
    const api = () =>
      new PredictApi(stack, 'Api', {
        apiName: 'a',
        backend: { integrationFor: () => new MockIntegration() },
        crossAccountCallers,
      });
    expect(api).toThrow(`PredictApi S/Api: ${message}`);
  });
});

describe('PredictApi on its own', () => {
  it('creates the stage’s execution log group itself, with the retention, before the stage logs to it', () => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    new PredictApi(stack, 'Api', {
      apiName: 'a',
      backend: { integrationFor: () => new MockIntegration() },
      logRetention: RetentionDays.ONE_WEEK,
    });
    const template = Template.fromStack(stack);
    const [apiId] = only(template, 'AWS::ApiGateway::RestApi');
    // The name API Gateway writes execution logs to: created by the service, it would never expire.
    const groups = Object.entries(
      template.findResources('AWS::Logs::LogGroup', {
        Properties: {
          LogGroupName: { 'Fn::Join': ['', ['API-Gateway-Execution-Logs_', { Ref: apiId }, '/v1']] },
        },
      }),
    ) as [string, Resource][];
    expect(groups).toHaveLength(1);
    const [[groupId, group]] = groups as [[string, Resource]];
    expect(group.Properties.RetentionInDays).toBe(7);
    const [, stage] = only(template, 'AWS::ApiGateway::Stage');
    expect(stage.DependsOn).toContain(groupId);
  });

  it('requires an API key besides the signature when asked, and a usage plan meters each key', () => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    new PredictApi(stack, 'Api', {
      apiName: 'a',
      backend: { integrationFor: () => new MockIntegration() },
      requireApiKey: true,
      quota: { limit: 5000, period: Period.WEEK },
    });
    const template = Template.fromStack(stack);
    template.allResourcesProperties('AWS::ApiGateway::Method', {
      AuthorizationType: 'AWS_IAM',
      ApiKeyRequired: true,
    });
    const [stageId] = only(template, 'AWS::ApiGateway::Stage');
    const [apiId] = only(template, 'AWS::ApiGateway::RestApi');
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      UsagePlanName: 'a-plan',
      Throttle: { RateLimit: 100, BurstLimit: 200 },
      Quota: { Limit: 5000, Period: 'WEEK' },
      ApiStages: [{ ApiId: { Ref: apiId }, Stage: { Ref: stageId } }],
    });
  });

  it.each([
    [
      { quota: { limit: 5000, period: Period.DAY } },
      'quota counts requests per API key: set requireApiKey, or remove quota',
    ],
    [
      { requireApiKey: true, quota: { limit: -1, period: Period.DAY } },
      'quota.limit must be a positive integer (got -1)',
    ],
  ] as [Partial<PredictApiProps>, string][])('refuses the usage-plan quota %j', (props, message) => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    const api = () =>
      new PredictApi(stack, 'Api', {
        apiName: 'a',
        backend: { integrationFor: () => new MockIntegration() },
        ...props,
      });
    expect(api).toThrow(`PredictApi S/Api: ${message}`);
  });

  it('refuses a bad stage name of the API', () => {
    const stack = new Stack(newApp(NO_BUNDLING), 'S');
    const props: PredictApiProps = {
      apiName: 'a',
      backend: { integrationFor: () => new MockIntegration() },
      stageName: 'v-1',
    };
    expect(() => new PredictApi(stack, 'Api', props)).toThrow(
      'PredictApi S/Api: stageName "v-1" is invalid: use 1-128 letters, digits or "_"',
    );
  });
});
