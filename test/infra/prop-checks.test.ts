import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnParameter, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiWebAcl } from '#lib/constructs/api-web-acl.ts';
import { ApprovalsTopic } from '#lib/constructs/approvals-topic.ts';
import { CaptureStream } from '#lib/constructs/capture-stream.ts';
import { KeelFunction } from '#lib/constructs/keel-function.ts';
import { KeelTable } from '#lib/constructs/keel-table.ts';
import { LambdaPredict } from '#lib/constructs/lambda-predict.ts';
import { OnCallTopic } from '#lib/constructs/oncall-topic.ts';
import { checkLogRetention, checkSageMakerEndpointName, isKnown } from '#lib/prop-checks.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';
import { lambdaOnlyKeysSet, lambdaOnlyProblem, logRetentionProblem } from '#shared/config/rules.ts';
import { CDK_CONTEXT } from '../support/cdk.ts';

/**
 * The rules the stage configuration and the constructs share (shared/config/rules.ts), and the
 * constructs' `validateProps`, which check what is known at synth and let deploy-time values through.
 */
const TMP = mkdtempSync(join(tmpdir(), 'keel-prop-checks-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** A stack in an app that skips asset bundling (no test here reads an asset). */
function newStack(): Stack {
  const app = new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] },
    outdir: mkdtempSync(join(TMP, 'cdk.out-')),
  });
  return new Stack(app, 'S', { env: { account: '111122223333', region: 'eu-west-1' } });
}

const STAGE_ARN = 'arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/v1';

describe('rules shared by the stage configuration and the constructs', () => {
  it('log retention: every CloudWatch Logs period passes; forever and other numbers are refused', () => {
    for (const days of Object.values(RetentionDays).filter((d): d is number => typeof d === 'number')) {
      expect(logRetentionProblem(days), String(days)).toBe(
        days === RetentionDays.INFINITE
          ? 'keeps logs (and their cost) forever: choose a number of days'
          : undefined,
      );
    }
    expect(logRetentionProblem(31)).toMatch(
      /^must be one of 1, 3, 5, .* \(the CloudWatch Logs retention periods\)$/,
    );
    expect(() => parseKeelConfig({ retention: { logDays: 9999 } }, 'c.json')).toThrow(
      'c.json: retention.logDays: keeps logs (and their cost) forever: choose a number of days (got 9999)',
    );
    expect(() => checkLogRetention('F', RetentionDays.INFINITE)).toThrow(
      'F: logRetention INFINITE keeps logs (and their cost) forever: choose a number of days',
    );
    expect(() => checkLogRetention('F', 31 as RetentionDays)).toThrow(
      /^F: logRetention 31 must be one of 1, 3, 5, /,
    );
  });

  it('SageMaker endpoint names: the same rule, in the config and as a prop', () => {
    expect(() =>
      parseKeelConfig({ inference: { model: 'sagemaker', sagemakerEndpoint: 'bad_name' } }, 'c.json'),
    ).toThrow(
      'c.json: inference.sagemakerEndpoint: must be 1-63 letters, digits or dashes, starting and ending with a letter or digit (got "bad_name")',
    );
    expect(() => checkSageMakerEndpointName('P', 'bad_name')).toThrow(
      'P: SageMaker endpointName "bad_name" is invalid: use 1-63 letters, digits or dashes, starting and ending with a letter or digit',
    );
    expect(() => checkSageMakerEndpointName('P', `a${'-b'.repeat(31)}`)).not.toThrow();
    expect(() => checkSageMakerEndpointName('P', `a${'b'.repeat(63)}`)).toThrow('is invalid');
  });

  it('Lambda-only settings: refused with any other compute, whatever they are called', () => {
    expect(lambdaOnlyKeysSet('lambda', { provisionedConcurrency: 2, memoryMb: 2048 })).toEqual([]);
    expect(lambdaOnlyKeysSet('ecs', { provisionedConcurrency: 2, memorySize: undefined })).toEqual([
      'provisionedConcurrency',
    ]);
    expect(lambdaOnlyProblem('inference')).toBe(
      'applies to inference "lambda" only: remove it, or use lambda',
    );
  });
});

describe('validateProps lets values known only at deploy time through', () => {
  it('recognises tokens of every kind', () => {
    const stack = newStack();
    const parameter = new CfnParameter(stack, 'P', { type: 'Number' });
    expect(isKnown(undefined)).toBe(false);
    expect(isKnown(3)).toBe(true);
    expect(isKnown(parameter.valueAsNumber)).toBe(false);
    expect(isKnown(parameter.valueAsString)).toBe(false);
    expect(isKnown(Duration.seconds(3))).toBe(true);
    expect(isKnown(Duration.seconds(parameter.valueAsNumber))).toBe(false);
  });

  it('numbers: a WAF rate limit, a function memory size and log retention', () => {
    const stack = newStack();
    const number = (id: string) => new CfnParameter(stack, id, { type: 'Number' }).valueAsNumber;
    new ApiWebAcl(stack, 'Waf', { name: 'w', stageArn: STAGE_ARN, rateLimitPer5Minutes: number('Rate') });
    new KeelFunction(stack, 'Fn', {
      entry: 'lambdas/drift/handler.ts',
      description: 'd',
      serviceName: 's',
      memorySize: number('Memory'),
      logRetention: number('Retention'),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: [{ Statement: { RateBasedStatement: { Limit: { Ref: 'Rate' } } } }, {}, {}],
    });
    template.hasResourceProperties('AWS::Lambda::Function', { MemorySize: { Ref: 'Memory' } });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: { Ref: 'Retention' } });
  });

  it('strings: a table name, a model name, an endpoint name, email addresses and webhooks', () => {
    const stack = newStack();
    const text = (id: string) => new CfnParameter(stack, id, { type: 'String' }).valueAsString;
    new KeelTable(stack, 'Table', { role: 'modelRegistry', tableName: text('TableName') });
    new CaptureStream(stack, 'Capture', {
      logGroup: new LogGroup(stack, 'Logs'),
      bucket: new Bucket(stack, 'Outputs'),
      modelName: text('Model'),
    });
    const table = (id: string) =>
      new Table(stack, id, { partitionKey: { name: 'pk', type: AttributeType.STRING } });
    new LambdaPredict(stack, 'Predict', {
      settings: {
        modelsBucket: new Bucket(stack, 'Models'),
        registryTable: table('Registry'),
        onlineTable: table('Online'),
        modelName: 'churn',
        backend: { kind: 'sagemaker', endpointName: text('Endpoint') },
      },
    });
    new ApprovalsTopic(stack, 'Approvals', {
      displayName: 'a',
      emails: [text('Approver')],
      webhookUrls: [text('Hook')],
    });
    new OnCallTopic(stack, 'OnCall', { displayName: 'o', email: text('OnCallMail') });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::DynamoDB::Table', { TableName: { Ref: 'TableName' } });
    template.hasResourceProperties('AWS::SNS::Subscription', { Endpoint: { Ref: 'Approver' } });
    template.hasResourceProperties('AWS::SNS::Subscription', { Endpoint: { Ref: 'OnCallMail' } });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { KEEL_SAGEMAKER_ENDPOINT: { Ref: 'Endpoint' } } },
    });
  });

  it('still refuses a bad value known at synth', () => {
    const stack = newStack();
    expect(
      () => new ApiWebAcl(stack, 'Waf', { name: 'w', stageArn: STAGE_ARN, rateLimitPer5Minutes: 5 }),
    ).toThrow('ApiWebAcl S/Waf: rateLimitPer5Minutes must be a whole number from 10 to 2000000000 (got 5)');
    expect(() => new OnCallTopic(stack, 'OnCall', { displayName: 'o', email: 'not-an-address' })).toThrow(
      /^OnCallTopic S\/OnCall: email "not-an-address" is not an email address/,
    );
  });
});
