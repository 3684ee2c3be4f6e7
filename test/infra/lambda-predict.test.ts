import { execFile } from 'node:child_process';
import { cpSync, lstatSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { LambdaPredict } from '#lib/constructs/lambda-predict.ts';
import { PREDICT_ROUTES } from '#lib/constructs/predict-api.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeFeatures, encodeInto, FEATURE_COUNT } from '#shared/features/index.ts';
import { parseCaptureLine } from '#shared/inference/capture.ts';
import { createJsScorer } from '#shared/model/scorer.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { modelKeys } from '#shared/registry/metadata.ts';
import { promote, registerModel } from '#shared/registry/registry.ts';
import { RESOURCE_ENV } from '#shared/resources.ts';
import { trainCandidate } from '#shared/training/train.ts';
import { startTestAws } from '../support/aws.ts';
import { filesOf, NO_BUNDLING } from '../support/cdk.ts';
import { only, type Resource, statementsOf } from '../support/cfn-template.ts';
import {
  dataApp,
  ENV,
  inferenceApp,
  predictVariables,
  servingStatements,
  synthesizedInferenceApp,
  TMP,
} from '../support/inference-stack.ts';

/**
 * The predict handler on Lambda (LambdaPredict): the function, its package and layer, its role, how the
 * API invokes it (with and without provisioned concurrency), the SageMaker backend, capture settings.
 */

/** Lambda's limit is 250 MB unzipped; Keel's budget for the function package and its layer together. */
const SIZE_BUDGET_BYTES = 60 * 1024 * 1024;

function sizeOf(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + lstatSync(join(entry.parentPath, entry.name)).size, 0);
}

/** The directory of a file asset in the cloud assembly, from the S3 key the template deploys it under. */
function assetDir(outdir: string, s3Key: string): string {
  return join(outdir, `asset.${s3Key.replace(/\.zip$/, '')}`);
}

describe('LambdaPredict in the inference stack (the default)', () => {
  const { app, data, stack } = inferenceApp();
  let template: Template;
  let fnId: string;
  let fn: Resource;
  let roleId: string;

  beforeAll(() => {
    const started = performance.now();
    app.synth();
    console.info(`synthesized the Lambda app with bundling in ${Math.round(performance.now() - started)} ms`);
    template = Template.fromStack(stack);
    [fnId, fn] = only(template, 'AWS::Lambda::Function');
    roleId = fn.Properties.Role['Fn::GetAtt'][0];
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
    expect(fn.Properties.Environment.Variables).toEqual({
      ...predictVariables(data),
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
  const { findings, template } = synthesizedInferenceApp(
    { provisionedConcurrency: 3, modelBackend: { kind: 'sagemaker', endpointName: 'Churn-XGB' } },
    NO_BUNDLING,
  );

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

describe('validation of LambdaPredict props, at synth, saying what to fix', () => {
  /** A stack beside the data stack, and predict settings over its resources. */
  function predictScope() {
    const { data: d } = dataApp();
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
});
