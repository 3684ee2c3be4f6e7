import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AuthorizationType, MockIntegration } from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LambdaPredict } from '#lib/constructs/lambda-predict.ts';
import { InferenceStack, type InferenceStackProps } from '#lib/stacks/inference-stack.ts';
import { acknowledgementsIn, findingsIn, NO_BUNDLING, runApp, synthFindings } from '../support/cdk.ts';
import { only, type Resource, type Statement } from '../support/cfn-template.ts';
import { dataApp, ENV, EXPORT_ID, inferenceApp, STAGE, TMP } from '../support/inference-stack.ts';

/**
 * The inference stack as a whole: what cdk-nag finds and what is acknowledged, its outputs, the
 * validation of its props. Its constructs have files of their own: predict-api, api-web-acl,
 * lambda-predict, fargate-predict and keel-function.test.ts.
 */
const ENDPOINT = 'churn-xgb';

describe('InferenceStack on Lambda (the default)', () => {
  // Bundled, as `cdk synth` builds it: the findings are those of the app that is deployed.
  const { app, stack } = inferenceApp();
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  let fnId: string;

  beforeAll(() => {
    findings = synthFindings(app);
    template = Template.fromStack(stack);
    [fnId] = only(template, 'AWS::Lambda::Function');
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

  it('uses no "*" resource except for X-Ray, whose actions have no resource-level permissions', () => {
    const wildcards = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[])
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => s.Resource === '*');
    expect(wildcards.map((s) => [...s.Action].sort())).toEqual([
      ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
    ]);
  });

  it('outputs the API URL and the function name', () => {
    template.hasOutput('ApiUrl', { Export: { Name: 'keel-test-inference-api-url' } });
    template.hasOutput('FunctionName', {
      Value: { Ref: fnId },
      Export: { Name: 'keel-test-predict-function-name' },
    });
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
  function inference(props: Partial<InferenceStackProps>) {
    const { app, data: d } = dataApp();
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
