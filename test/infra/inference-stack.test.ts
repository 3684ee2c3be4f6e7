import { execFile } from 'node:child_process';
import {
  cpSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AuthorizationType, type Method, MockIntegration, Period } from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeelFunction, type KeelFunctionProps } from '#lib/constructs/keel-function.ts';
import { LambdaPredict } from '#lib/constructs/lambda-predict.ts';
import { PREDICT_ROUTES, PredictApi, type PredictApiProps } from '#lib/constructs/predict-api.ts';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack, type InferenceStackProps } from '#lib/stacks/inference-stack.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeFeatures, encodeInto, FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import { API_ROUTES } from '#shared/inference/api.ts';
import { parseCaptureLine } from '#shared/inference/capture.ts';
import { openApiDocument } from '#shared/inference/openapi.ts';
import { MAX_BATCH_ITEMS } from '#shared/inference/schemas.ts';
import { createJsScorer } from '#shared/model/scorer.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { modelKeys } from '#shared/registry/metadata.ts';
import { promote, registerModel } from '#shared/registry/registry.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { trainCandidate } from '#shared/training/train.ts';
import { startTestAws } from '../support/aws.ts';
import { acknowledgementsIn, CDK_CONTEXT, findingsIn, runApp, synthFindings } from '../support/cdk.ts';

const STAGE = 'test';
const ENV = { account: '111122223333', region: 'eu-west-1' };
const ENDPOINT = 'churn-xgb';
/** Lambda's limit is 250 MB unzipped; Keel's budget for the function package and its layer together. */
const SIZE_BUDGET_BYTES = 60 * 1024 * 1024;

const TMP = mkdtempSync(join(tmpdir(), 'keel-inference-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** Skips asset bundling (esbuild, the layer copy) in apps whose assets no test reads. */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

function newApp(context: Record<string, unknown> = {}): App {
  return new App({ context: { ...CDK_CONTEXT, ...context }, outdir: mkdtempSync(join(TMP, 'cdk.out-')) });
}

/** The data stack and an inference stack over it, in one app checked by cdk-nag. */
function inferenceApp(props: Partial<InferenceStackProps> = {}, context: Record<string, unknown> = {}) {
  const app = newApp(context);
  addNagChecks(app);
  const data = new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV });
  const stack = new InferenceStack(app, 'Keel-test-Inference', {
    stage: STAGE,
    env: ENV,
    buckets: data.buckets,
    tables: data.tables,
    ...props,
  });
  return { app, data, stack };
}

// biome-ignore lint/suspicious/noExplicitAny: template JSON, asserted on by shape
type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function only(template: Template, type: string): [string, Resource] {
  const found = Object.entries(template.findResources(type)) as [string, Resource][];
  expect(found, type).toHaveLength(1);
  return found[0]!;
}

/** Every statement of the policies attached to the role with logical id `role`, actions sorted. */
function statementsOf(template: Template, role: string): Statement[] {
  return (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[])
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${role}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
    .map((s) => ({ ...s, Action: typeof s.Action === 'string' ? s.Action : [...s.Action].sort() }));
}

/** The generated part of an export name of the data stack (ExportsOutputFnGetAtt…). */
const EXPORT_ID = /(?<=ExportsOutput)[A-Za-z0-9]+/;

/** `{Fn::ImportValue: "Keel-test-Data:ExportsOutput…<logical id>…"}` of an attribute of the data stack. */
function imported(logicalId: string): unknown {
  return {
    'Fn::ImportValue': expect.stringMatching(new RegExp(`^Keel-test-Data:ExportsOutput.*${logicalId}`)),
  };
}

const dataIds = (data: DataStack) => ({
  models: data.resolve(data.buckets.models.bucketName).Ref as string,
  registry: data.resolve(data.tables.modelRegistry.tableName).Ref as string,
  online: data.resolve(data.tables.onlineFeatures.tableName).Ref as string,
  outputs: data.resolve(data.buckets.outputs.bucketName).Ref as string,
});

/**
 * The statements serving needs (grantPredictAccess), for the role of the Lambda function or the task:
 * no write (captures leave as lines on stdout, test/infra/capture-stream.test.ts).
 */
function servingStatements(data: DataStack): Statement[] {
  const ids = dataIds(data);
  return [
    {
      Effect: 'Allow',
      Action: 's3:GetObject',
      Resource: { 'Fn::Join': ['', [imported(ids.models), '/models/churn/*']] },
    },
    { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:Query'], Resource: imported(ids.registry) },
    {
      Effect: 'Allow',
      Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
      Resource: imported(ids.online),
    },
  ];
}

function sizeOf(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + lstatSync(join(entry.parentPath, entry.name)).size, 0);
}

function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** The directory of a file asset in the cloud assembly, from the S3 key the template deploys it under. */
function assetDir(outdir: string, s3Key: string): string {
  return join(outdir, `asset.${s3Key.replace(/\.zip$/, '')}`);
}

describe('InferenceStack on Lambda (the default)', () => {
  const { app, data, stack } = inferenceApp();
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  let fnId: string;
  let fn: Resource;
  let roleId: string;

  beforeAll(() => {
    const started = performance.now();
    findings = synthFindings(app);
    console.info(`synthesized the Lambda app with bundling in ${Math.round(performance.now() - started)} ms`);
    template = Template.fromStack(stack);
    [fnId, fn] = only(template, 'AWS::Lambda::Function');
    roleId = fn.Properties.Role['Fn::GetAtt'][0];
  });

  it('leaves no cdk-nag finding unacknowledged (AwsSolutions and Serverless)', () => {
    expect(findings).toEqual([]);
  });

  it('acknowledges each finding on its own construct, one rule at a time, with a reason', () => {
    const acknowledged = acknowledgementsIn(app).filter((a) => a.path.startsWith('Keel-test-Inference/'));
    expect(acknowledged.map(({ path, id }) => `${path} ${id}`.replace(EXPORT_ID, '…')).sort()).toEqual(
      [
        'Keel-test-Inference/Api/Api/CloudWatchRole AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'Keel-test-Inference/Api/Api/Default/health/GET AwsSolutions-COG4',
        'Keel-test-Inference/Api/Api/Default/openapi.json/GET AwsSolutions-COG4',
        'Keel-test-Inference/Api/Api/Default/predict/POST AwsSolutions-COG4',
        'Keel-test-Inference/Api/Api/Default/predict/batch/POST AwsSolutions-COG4',
        'Keel-test-Inference/Lambda/Predict/Function AwsSolutions-L1',
        'Keel-test-Inference/Lambda/Predict/Function Serverless-LambdaAsyncFailureDestination',
        'Keel-test-Inference/Lambda/Predict/Function Serverless-LambdaDLQ',
        'Keel-test-Inference/Lambda/Predict/Function Serverless-LambdaLatestVersion',
        'Keel-test-Inference/Lambda/Predict/Role AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/models/churn/*]',
        'Keel-test-Inference/Lambda/Capture/DeliveryRole AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/captures/model=churn/*]',
        'Keel-test-Inference/Lambda/Predict/Role AwsSolutions-IAM5[Resource::*]',
      ].sort(),
    );
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(40);
  });

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
    const document = openApiDocument() as { components: { schemas: Record<string, object> } };
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

  it('puts a regional WAF web ACL (rate limit, core and known-bad-inputs rules) on the stage', () => {
    const [aclId] = only(template, 'AWS::WAFv2::WebACL');
    const [stageId] = only(template, 'AWS::ApiGateway::Stage');
    const [apiId] = only(template, 'AWS::ApiGateway::RestApi');
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Name: 'RateLimitPerIp',
          Priority: 0,
          Action: { Block: {} },
          Statement: {
            RateBasedStatement: { Limit: 3000, AggregateKeyType: 'IP', EvaluationWindowSec: 300 },
          },
        }),
        Match.objectLike({
          Priority: 1,
          OverrideAction: { None: {} },
          Statement: {
            ManagedRuleGroupStatement: {
              VendorName: 'AWS',
              Name: 'AWSManagedRulesCommonRuleSet',
              RuleActionOverrides: [{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }],
            },
          },
        }),
        Match.objectLike({
          Priority: 2,
          Statement: {
            ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesKnownBadInputsRuleSet' },
          },
        }),
      ],
    });
    const [, association] = only(template, 'AWS::WAFv2::WebACLAssociation');
    expect(association.Properties.WebACLArn).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    const arn = JSON.stringify(association.Properties.ResourceArn);
    expect(arn).toContain(':apigateway:');
    expect(arn).toContain(`{"Ref":"${apiId}"}`);
    expect(arn).toContain(`/stages/",{"Ref":"${stageId}"}`);
  });

  it('runs the function on x86_64 Node.js 22 with active tracing, its own log group and the layer', () => {
    const [layerId] = only(template, 'AWS::Lambda::LayerVersion');
    const logGroup = fn.Properties.LoggingConfig.LogGroup.Ref;
    expect(fn.Properties).toMatchObject({
      Architectures: ['x86_64'],
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
      MemorySize: 1024,
      Timeout: 15,
      Layers: [{ Ref: layerId }],
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
    });
    expect(template.toJSON().Resources[logGroup]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { RetentionInDays: 30 },
    });
    template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleArchitectures: ['x86_64'],
      CompatibleRuntimes: ['nodejs22.x'],
      LicenseInfo: 'MIT',
    });
  });

  it('configures the handler through the variables readPredictConfig reads', () => {
    const ids = dataIds(data);
    expect(fn.Properties.Environment.Variables).toEqual({
      [RESOURCE_ENV.models]: imported(ids.models),
      [RESOURCE_ENV.modelRegistry]: imported(ids.registry),
      [RESOURCE_ENV.onlineFeatures]: imported(ids.online),
      [RESOURCE_ENV.outputs]: imported(ids.outputs),
      KEEL_MODEL_NAME: 'churn',
      KEEL_MODEL_BACKEND: 'onnx',
      KEEL_CAPTURE_SAMPLE_RATE: '1',
      POWERTOOLS_SERVICE_NAME: 'keel',
      POWERTOOLS_METRICS_NAMESPACE: 'Keel',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
      POWERTOOLS_TRACER_CAPTURE_ERROR: 'false',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it('grants the function exactly what serving needs: its logs, X-Ray, the model’s objects, registry and store reads', () => {
    const logGroup = fn.Properties.LoggingConfig.LogGroup.Ref;
    expect(statementsOf(template, roleId)).toEqual(
      expect.arrayContaining([
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] },
        },
        {
          Effect: 'Allow',
          Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
          Resource: '*',
        },
        ...servingStatements(data),
      ]),
    );
    expect(statementsOf(template, roleId)).toHaveLength(5);
    const role = template.toJSON().Resources[roleId] as Resource;
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    // The S3 prefix is the registry's own layout.
    expect(modelKeys('churn', 'v1').model.startsWith('models/churn/')).toBe(true);
  });

  it('uses no "*" resource except for X-Ray, whose actions have no resource-level permissions', () => {
    const wildcards = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[])
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => s.Resource === '*');
    expect(wildcards.map((s) => [...s.Action].sort())).toEqual([
      ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
    ]);
  });

  it('lets API Gateway invoke the function itself, per method, without provisioned concurrency', () => {
    template.resourceCountIs('AWS::Lambda::Alias', 0);
    template.resourceCountIs('AWS::Lambda::Version', 0);
    const [stageId] = only(template, 'AWS::ApiGateway::Stage');
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')) as Resource[];
    expect(
      permissions.map((p) => JSON.stringify(p.Properties.SourceArn).split(`{"Ref":"${stageId}"}`)[1]).sort(),
    ).toEqual(PREDICT_ROUTES.map((r) => `,"/${r.method}${r.path}"]]}`).sort());
    for (const permission of permissions) {
      expect(permission.Properties.FunctionName).toEqual({ 'Fn::GetAtt': [fnId, 'Arn'] });
    }
    template.allResourcesProperties('AWS::ApiGateway::Method', {
      Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
    });
  });

  it('outputs the API URL and the function name', () => {
    template.hasOutput('ApiUrl', { Export: { Name: 'keel-test-inference-api-url' } });
    template.hasOutput('FunctionName', {
      Value: { Ref: fnId },
      Export: { Name: 'keel-test-predict-function-name' },
    });
  });

  it('keeps the function package and the layer under 60 MB unzipped, the layer holding only onnxruntime for linux x64', () => {
    const code = assetDir(app.outdir, fn.Properties.Code.S3Key);
    const [, layer] = only(template, 'AWS::Lambda::LayerVersion');
    const layerDir = assetDir(app.outdir, layer.Properties.Content.S3Key);
    const codeBytes = sizeOf(code);
    const layerBytes = sizeOf(layerDir);
    console.info(
      `function package ${(codeBytes / 1e6).toFixed(2)} MB (${filesOf(code).join(', ')}), layer ${(layerBytes / 1e6).toFixed(2)} MB`,
    );
    expect(filesOf(code)).toEqual(['index.mjs', 'index.mjs.map']);
    expect(codeBytes + layerBytes).toBeLessThan(SIZE_BUDGET_BYTES);

    const files = filesOf(layerDir);
    const binaries = files.filter((f) => f.includes('/bin/'));
    expect(binaries).toEqual([
      'nodejs/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'nodejs/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
    ]);
    expect(
      files.filter((f) => /darwin|win32|arm64|cuda|cudnn|cublas|tensorrt|nvinfer|\.dll$|\.dylib$/i.test(f)),
    ).toEqual([]);
    for (const file of files) {
      expect(file).toMatch(
        /^nodejs\/node_modules\/(onnxruntime-node\/(package\.json|dist\/[^/]+\.js|bin\/.+)|onnxruntime-common\/(package\.json|dist\/cjs\/.+\.(js|json)))$/,
      );
    }
  });

  it('is live: the deployed bundle, with only the layer beside it, serves a promoted model', async () => {
    // Lambda's layout: the bundle in /var/task, the layer's node_modules where Node resolves imports.
    const [, layer] = only(template, 'AWS::Lambda::LayerVersion');
    const live = join(TMP, 'live');
    cpSync(assetDir(app.outdir, fn.Properties.Code.S3Key), join(live, 'task'), { recursive: true });
    symlinkSync(
      join(assetDir(app.outdir, layer.Properties.Content.S3Key), 'nodejs/node_modules'),
      join(live, 'node_modules'),
    );
    const bundle = join(live, 'task/index.mjs');

    const aws = await startTestAws();
    try {
      const customers = [...generateRecords({ rows: 1500, seed: 7, asOf: new Date() })];
      const x = new Float32Array(customers.length * FEATURE_COUNT);
      const y = new Uint8Array(customers.length);
      customers.forEach((record, i) => {
        encodeInto(record, x, i * FEATURE_COUNT);
        y[i] = record.churned;
      });
      const candidate = await trainCandidate(
        { rows: customers.length, x, y, customerIds: customers.map((c) => c.customer_id), keys: [] },
        { datasetUri: 's3://test', parent: null, seed: 1, params: { nTrees: 10 } },
      );
      const registry = {
        s3: aws.clients.s3,
        dynamo: aws.clients.dynamo,
        bucket: aws.names.models,
        table: aws.names.modelRegistry,
      };
      const { version } = await registerModel(registry, { name: 'churn', ...candidate });
      await promote(registry, {
        name: 'churn',
        version,
        featureFingerprint: FEATURE_SET.fingerprint,
        reason: 'infra liveness test',
        actor: 'test',
      });
      const customer = customers[3]!;
      const { churned: _label, ...raw } = customer;
      await writeRecords({ dynamo: aws.clients.dynamo, table: aws.names.onlineFeatures }, [raw]);

      // The function's own variables, with the data stack's imports replaced by the local names.
      const local: Record<string, string> = {
        [RESOURCE_ENV.models]: aws.names.models,
        [RESOURCE_ENV.modelRegistry]: aws.names.modelRegistry,
        [RESOURCE_ENV.onlineFeatures]: aws.names.onlineFeatures,
        [RESOURCE_ENV.outputs]: aws.names.outputs,
      };
      const variables = Object.fromEntries(
        Object.entries(fn.Properties.Environment.Variables as Record<string, unknown>).map(
          ([name, value]) => [name, typeof value === 'string' ? value : local[name]!],
        ),
      );
      const script = `
        const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
        const context = { awsRequestId: 'r-1', functionName: 'predict', functionVersion: '$LATEST',
          invokedFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:predict', memoryLimitInMB: '1024',
          logGroupName: 'g', logStreamName: 's', getRemainingTimeInMillis: () => 10000 };
        const event = { httpMethod: 'POST', path: '/predict', resource: '/predict', headers: {}, isBase64Encoded: false,
          body: JSON.stringify({ customerId: ${JSON.stringify(customer.customer_id)} }),
          requestContext: { requestId: 'api-1', stage: 'v1' } };
        const result = await handler(event, context);
        console.log('RESULT ' + JSON.stringify(result));
        process.exit(0);`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        cwd: live,
        env: {
          PATH: process.env.PATH,
          ...variables,
          AWS_REGION: aws.target.region,
          KEEL_S3_ENDPOINT: aws.target.endpoints!.s3,
          KEEL_DYNAMODB_ENDPOINT: aws.target.endpoints!.dynamodb,
          // No X-Ray daemon or EMF consumer here.
          POWERTOOLS_TRACE_ENABLED: 'false',
          POWERTOOLS_METRICS_DISABLED: 'true',
        },
      });
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      const result = JSON.parse(line!.slice('RESULT '.length));
      expect(result.statusCode).toBe(200);
      const body = JSON.parse(result.body);
      expect(body).toMatchObject({ customerId: customer.customer_id, model: { name: 'churn', version } });
      const encoded = encodeFeatures(customer);
      if (!encoded.ok) throw new Error('the generated customer does not encode');
      const expected = await createJsScorer(candidate.model).scoreOne(Float32Array.from(encoded.vector));
      expect(Math.abs(body.probability - expected)).toBeLessThan(1e-6);
      // Its capture line is on stdout by the time the handler resolved: what the log subscription takes.
      const captured = stdout.split('\n').flatMap((l) => parseCaptureLine(l) ?? []);
      expect(captured).toEqual([
        expect.objectContaining({
          source: 'api',
          requestId: 'api-1',
          customerId: customer.customer_id,
          version,
        }),
      ]);
    } finally {
      await aws.close();
    }
  });
});

describe('InferenceStack with provisioned concurrency and the SageMaker backend', () => {
  const { app, stack } = inferenceApp(
    { provisionedConcurrency: 3, modelBackend: { kind: 'sagemaker', endpointName: 'Churn-XGB' } },
    NO_BUNDLING,
  );
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  beforeAll(() => {
    findings = synthFindings(app);
    template = Template.fromStack(stack);
  });

  it('leaves no cdk-nag finding unacknowledged', () => {
    expect(findings).toEqual([]);
  });

  it('keeps 3 environments initialized behind a live alias, which the API invokes', () => {
    const [aliasId] = only(template, 'AWS::Lambda::Alias');
    template.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 3 },
    });
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')) as Resource[];
    expect(permissions).toHaveLength(PREDICT_ROUTES.length);
    for (const permission of permissions)
      expect(permission.Properties.FunctionName).toEqual({ Ref: aliasId });
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    for (const method of methods)
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(`"Ref":"${aliasId}"`);
  });

  it('may invoke that one SageMaker endpoint (ARN in lower case) and is told its name', () => {
    const [, fn] = only(template, 'AWS::Lambda::Function');
    expect(fn.Properties.Environment.Variables).toMatchObject({
      KEEL_MODEL_BACKEND: 'sagemaker',
      KEEL_SAGEMAKER_ENDPOINT: 'Churn-XGB',
    });
    const invoke = statementsOf(template, fn.Properties.Role['Fn::GetAtt'][0]).filter((s) =>
      JSON.stringify(s.Action).includes('sagemaker'),
    );
    expect(invoke).toEqual([
      {
        Effect: 'Allow',
        Action: 'sagemaker:InvokeEndpoint',
        Resource: {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, `:sagemaker:${ENV.region}:${ENV.account}:endpoint/churn-xgb`],
          ],
        },
      },
    ]);
  });
});

describe('InferenceStack on ECS Fargate', () => {
  const { app, data, stack } = inferenceApp({ inference: 'ecs' }, NO_BUNDLING);
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  beforeAll(() => {
    findings = synthFindings(app);
    template = Template.fromStack(stack);
  });

  it('leaves no cdk-nag finding unacknowledged, and acknowledges each one on its construct', () => {
    expect(findings).toEqual([]);
    const acknowledged = acknowledgementsIn(app).filter(
      (a) => a.path.startsWith('Keel-test-Inference/Ecs') && /^(AwsSolutions|Serverless)-/.test(a.id),
    );
    expect(acknowledged.map(({ path, id }) => `${path} ${id}`.replace(EXPORT_ID, '…')).sort()).toEqual([
      'Keel-test-Inference/Ecs/Capture/DeliveryRole AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/captures/model=churn/*]',
      'Keel-test-Inference/Ecs/Nlb AwsSolutions-ELB2',
      'Keel-test-Inference/Ecs/Task AwsSolutions-ECS2',
      'Keel-test-Inference/Ecs/Task/ExecutionRole AwsSolutions-IAM5[Resource::*]',
      'Keel-test-Inference/Ecs/Task/TaskRole AwsSolutions-IAM5[Resource::Keel-test-Data:ExportsOutput…/models/churn/*]',
    ]);
  });

  it('runs the container on Fargate x86_64 in private subnets, with container insights and logs', () => {
    template.resourceCountIs('AWS::Lambda::Function', 0);
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 2,
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
      }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    expect(task.Properties).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      ContainerDefinitions: [
        {
          PortMappings: [{ ContainerPort: 8080 }],
          ReadonlyRootFilesystem: true,
          LogConfiguration: { LogDriver: 'awslogs' },
        },
      ],
    });
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
    // Zones from Fn::GetAZs, not a context lookup that `cdk synth` could only do with credentials.
    template.resourceCountIs('AWS::EC2::Subnet', 4);
    template.allResourcesProperties('AWS::EC2::Subnet', {
      AvailabilityZone: { 'Fn::Select': [Match.anyValue(), { 'Fn::GetAZs': '' }] },
    });
    expect(JSON.parse(readFileSync(join(app.outdir, 'manifest.json'), 'utf8')).missing).toBeUndefined();
    for (const group of Object.values(template.findResources('AWS::Logs::LogGroup')) as Resource[]) {
      expect(group.Properties.RetentionInDays).toBe(30);
    }
  });

  it('gives the container the same variables as the Lambda function, plus its port', () => {
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    const ids = dataIds(data);
    const environment = Object.fromEntries(
      (task.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[]).map((v) => [
        v.Name,
        v.Value,
      ]),
    );
    expect(environment).toEqual({
      [RESOURCE_ENV.models]: imported(ids.models),
      [RESOURCE_ENV.modelRegistry]: imported(ids.registry),
      [RESOURCE_ENV.onlineFeatures]: imported(ids.online),
      [RESOURCE_ENV.outputs]: imported(ids.outputs),
      KEEL_MODEL_NAME: 'churn',
      KEEL_MODEL_BACKEND: 'onnx',
      KEEL_CAPTURE_SAMPLE_RATE: '1',
      POWERTOOLS_SERVICE_NAME: 'keel',
      POWERTOOLS_METRICS_NAMESPACE: 'Keel',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
      POWERTOOLS_TRACER_CAPTURE_ERROR: 'false',
      PORT: '8080',
    });
  });

  it('grants the task role exactly the serving statements', () => {
    const [, task] = only(template, 'AWS::ECS::TaskDefinition');
    const taskRole = task.Properties.TaskRoleArn['Fn::GetAtt'][0];
    expect(statementsOf(template, taskRole)).toEqual(servingStatements(data));
  });

  it('reaches the service through a VPC link to an internal NLB, behind the same IAM-signed routes', () => {
    const [linkId] = only(template, 'AWS::ApiGateway::VpcLink');
    const [nlbId, nlb] = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(nlb.Properties).toMatchObject({ Type: 'network', Scheme: 'internal' });
    template.hasResourceProperties('AWS::ApiGateway::VpcLink', { TargetArns: [{ Ref: nlbId }] });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8080,
      TargetType: 'ip',
      HealthCheckPath: '/health',
      Matcher: { HttpCode: '200,503' },
    });
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    expect(methods).toHaveLength(PREDICT_ROUTES.length);
    for (const method of methods) {
      expect(method.Properties).toMatchObject({
        AuthorizationType: 'AWS_IAM',
        Integration: {
          Type: 'HTTP_PROXY',
          ConnectionType: 'VPC_LINK',
          ConnectionId: { Ref: linkId },
          IntegrationHttpMethod: method.Properties.HttpMethod,
        },
      });
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(
        `"Fn::GetAtt":["${nlbId}","DNSName"]`,
      );
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '10.0.0.0/16', FromPort: 8080, ToPort: 8080 })],
    });
    template.hasOutput('ServiceName', { Export: { Name: 'keel-test-predict-service-name' } });
  });

  it('says at synth that deploying it needs Docker, which the Lambda variant does not', () => {
    const docker = Match.stringLikeRegexp('needs Docker');
    Annotations.fromStack(stack).hasInfo('/Keel-test-Inference/Ecs', docker);
    const lambda = inferenceApp({}, NO_BUNDLING);
    lambda.app.synth();
    Annotations.fromStack(lambda.stack).hasNoInfo('*', docker);
  });

  it('stages the image context (lambdas/predict/Dockerfile) for a linux/amd64 build at deploy, without node_modules', () => {
    const manifest = JSON.parse(readFileSync(join(app.outdir, 'Keel-test-Inference.assets.json'), 'utf8'));
    const images = Object.values(manifest.dockerImages) as { source: Record<string, string> }[];
    expect(images).toHaveLength(1);
    expect(images[0]!.source).toMatchObject({
      dockerFile: 'lambdas/predict/Dockerfile',
      platform: 'linux/amd64',
    });
    const context = filesOf(join(app.outdir, images[0]!.source.directory!));
    expect(context).toContain('lambdas/predict/Dockerfile');
    expect(context).toContain('package-lock.json');
    expect(context.filter((f) => /^(node_modules|cdk\.out|\.keel|\.git|test|bench)\//.test(f))).toEqual([]);
  });
});

describe('the CDK app (bin/app.ts) with a config of ECS compute and a SageMaker model', () => {
  it('synthesizes every stack with no unacknowledged finding', async () => {
    const outdir = mkdtempSync(join(TMP, 'cdk.out-'));
    const config = join(TMP, 'ecs-sagemaker.json');
    writeFileSync(
      config,
      JSON.stringify({ inference: { compute: 'ecs', model: 'sagemaker', sagemakerEndpoint: ENDPOINT } }),
    );
    const failure = await runApp(outdir, { config });
    expect(findingsIn(outdir, failure)).toEqual([]);
    expect(failure).toBeUndefined();
    const template = Template.fromJSON(
      JSON.parse(readFileSync(join(outdir, 'Keel-dev-Inference.template.json'), 'utf8')),
    );
    template.resourceCountIs('AWS::ECS::Service', 1);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sagemaker:InvokeEndpoint', Resource: Match.anyValue() }),
        ]),
      },
    });
  });
});

describe('validation of props, at synth, saying what to fix', () => {
  function data() {
    const app = newApp(NO_BUNDLING);
    return { app, data: new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV }) };
  }
  function inference(props: Partial<InferenceStackProps>) {
    const { app, data: d } = data();
    return () =>
      new InferenceStack(app, 'I', {
        stage: STAGE,
        env: ENV,
        buckets: d.buckets,
        tables: d.tables,
        ...props,
      });
  }

  it.each([
    [{ stage: 'Prod' }, 'stage "Prod" is invalid'],
    [
      { inference: 'ecs', provisionedConcurrency: 2 },
      'provisionedConcurrency applies to inference "lambda" only',
    ],
    [
      { provisionedConcurrency: 0 },
      'provisionedConcurrency must be a whole number of at least 1, or left out for none (got 0)',
    ],
    [{ provisionedConcurrency: 1.5 }, 'provisionedConcurrency must be a whole number of at least 1'],
    [{ modelName: 'Churn_v2' }, 'modelName "Churn_v2" is invalid: use lower-case letters, digits and dashes'],
    [
      { modelBackend: { kind: 'sagemaker', endpointName: 'bad_name' } },
      'SageMaker endpointName "bad_name" is invalid: use 1-63 letters, digits or dashes',
    ],
    [{ throttle: { rateLimit: 0, burstLimit: 10 } }, 'throttle.rateLimit must be a positive number (got 0)'],
    [
      { throttle: { rateLimit: 10, burstLimit: 2.5 } },
      'throttle.burstLimit must be a positive integer (got 2.5)',
    ],
    [
      { wafRateLimitPer5Minutes: 5 },
      'rateLimitPer5Minutes must be a whole number from 10 to 2000000000 (got 5)',
    ],
  ] as [Partial<InferenceStackProps>, string][])('refuses %j', (props, message) => {
    expect(inference(props)).toThrow(message);
  });

  /** A stack beside the data stack, and predict settings over its resources. */
  function predictScope() {
    const { data: d } = data();
    const stack = new Stack(d.node.scope as App, 'S', { env: ENV });
    const settings = {
      modelsBucket: d.buckets.models,
      registryTable: d.tables.modelRegistry,
      onlineTable: d.tables.onlineFeatures,
      modelName: 'churn',
      backend: { kind: 'onnx' } as const,
    };
    return { d, stack, settings };
  }

  it('captures predictions only with an outputs bucket, at a rate from 0 to 1; rate 0 delivers nothing', () => {
    const { d, stack, settings: base } = predictScope();
    expect(() => new LambdaPredict(stack, 'A', { settings: { ...base, captureSampleRate: 0.5 } })).toThrow(
      'LambdaPredict S/A: captureSampleRate needs an outputsBucket to capture to: add one or remove the rate',
    );
    expect(
      () =>
        new LambdaPredict(stack, 'B', {
          settings: { ...base, outputsBucket: d.buckets.outputs, captureSampleRate: 1.5 },
        }),
    ).toThrow('LambdaPredict S/B: captureSampleRate must be from 0 to 1, got 1.5');
    const off = new LambdaPredict(stack, 'Off', {
      settings: { ...base, outputsBucket: d.buckets.outputs, captureSampleRate: 0 },
    });
    const template = Template.fromStack(stack);
    const fnId = stack.getLogicalId(off.function.function.node.defaultChild as CfnElement);
    const fn = template.toJSON().Resources[fnId] as Resource;
    expect(fn.Properties.Environment.Variables.KEEL_CAPTURE_SAMPLE_RATE).toBe('0');
    expect(off.capture).toBeUndefined();
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 0);
  });

  it('refuses a Lambda timeout that API Gateway would cut short', () => {
    const { stack, settings } = predictScope();
    expect(() => new LambdaPredict(stack, 'P', { settings, timeout: Duration.seconds(29) })).toThrow(
      "LambdaPredict S/P: timeout 29 seconds is not below API Gateway's 29-second integration timeout: lower it",
    );
  });

  describe('KeelFunction', () => {
    function keelFunction(props: Partial<KeelFunctionProps>) {
      const stack = new Stack(newApp(NO_BUNDLING), 'S');
      return () =>
        new KeelFunction(stack, 'F', {
          entry: 'lambdas/predict/handler.ts',
          description: 'd',
          serviceName: 's',
          ...props,
        });
    }

    it.each([
      [{ memorySize: 100 }, 'memorySize must be a whole number of MB from 128 to 10240 (got 100)'],
      [{ memorySize: 10_241 }, 'memorySize must be a whole number of MB from 128 to 10240 (got 10241)'],
      [{ memorySize: 512.5 }, '(got 512.5)'],
      [
        { timeout: Duration.millis(1500) },
        'timeout must be whole seconds from 1 second to 15 minutes (got 1 second 500 millis)',
      ],
      [
        { timeout: Duration.minutes(16) },
        'timeout must be whole seconds from 1 second to 15 minutes (got 16 minutes)',
      ],
      [{ logRetention: RetentionDays.INFINITE }, 'logRetention INFINITE keeps logs (and their cost) forever'],
      [
        { entry: 'lambdas/nope/handler.ts' },
        'KeelFunction S/F: entry "lambdas/nope/handler.ts" does not exist',
      ],
      [
        { environment: { POWERTOOLS_SERVICE_NAME: 'x', OTHER: 'y' } },
        'environment may not set POWERTOOLS_SERVICE_NAME: use the resources, serviceName, metricsNamespace or logLevel props',
      ],
    ] as [Partial<KeelFunctionProps>, string][])('refuses %j', (props, message) => {
      expect(keelFunction(props)).toThrow(message);
    });

    it('passes resources as RESOURCE_ENV variables and adds free variables', () => {
      const stack = new Stack(newApp(NO_BUNDLING), 'S');
      new KeelFunction(stack, 'F', {
        entry: 'lambdas/predict/handler.ts',
        description: 'd',
        serviceName: 'svc',
        logLevel: 'DEBUG',
        resources: { outputs: 'out-bucket' },
        environment: { EXTRA: '1' },
      });
      Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: {
            [RESOURCE_ENV.outputs]: 'out-bucket',
            EXTRA: '1',
            POWERTOOLS_SERVICE_NAME: 'svc',
            POWERTOOLS_LOG_LEVEL: 'DEBUG',
            POWERTOOLS_METRICS_NAMESPACE: 'Keel',
            NODE_OPTIONS: '--enable-source-maps',
          },
        },
        LoggingConfig: Match.objectLike({ ApplicationLogLevel: 'DEBUG' }),
        MemorySize: 512,
        Timeout: 30,
      });
    });
  });

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

describe('cdk-nag on the inference stack is live', () => {
  it('reports an unauthenticated method and a broad grant added to it, and nothing else', () => {
    const { app, stack } = inferenceApp({}, NO_BUNDLING);
    stack.api.api.root
      .addResource('open')
      .addMethod('GET', new MockIntegration(), { authorizationType: AuthorizationType.NONE });
    const lambda = stack.node.findChild('Lambda') as LambdaPredict;
    lambda.function.role.addToPolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    expect(synthFindings(app)).toEqual([
      expect.objectContaining({
        rule: 'AwsSolutions-IAM5[Resource::*]',
        paths: ['Keel-test-Inference/Lambda/Predict/Role/DefaultPolicy/Resource'],
      }),
      expect.objectContaining({
        rule: 'AwsSolutions-APIG4',
        paths: ['Keel-test-Inference/Api/Api/Default/open/GET/Resource'],
      }),
      expect.objectContaining({
        rule: 'AwsSolutions-COG4',
        paths: ['Keel-test-Inference/Api/Api/Default/open/GET/Resource'],
      }),
    ]);
  });
});
