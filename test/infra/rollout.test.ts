import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { addNagChecks } from '#lib/nag.ts';
import type { AslDefinition } from '#local/state-machines.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';
import { ROLLOUT_GUARDRAIL_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { NOTIFY_FAILURE_STATE, PIPELINES, ROLLOUT_FUNCTIONS } from '#shared/pipelines/definitions.ts';
import { resolveIntrinsics } from '../support/asl.ts';
import { CDK_CONTEXT, NO_BUNDLING, synthFindings } from '../support/cdk.ts';
import { type Resource, statementsOf } from '../support/cfn-template.ts';
import { promotionReadStatements } from '../support/promotion-grants.ts';

/**
 * The rollout decision as deployed: the pipelines stack's state machine (wait for the bake end →
 * decide → notify), the monitoring stack's two functions with exactly the permissions they use (the
 * guardrail alarms, the registry, the on-call topic and its key), and the EventBridge rule that calls
 * the guard when a guardrail alarm fires. The whole app, cdk-nag included.
 */

const ENV = { account: '111122223333', region: 'eu-west-1' };
const TMP = mkdtempSync(join(tmpdir(), 'keel-rollout-infra-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING }, outdir: mkdtempSync(join(TMP, 'out-')) });
addNagChecks(app);
const stacks = addKeelStacks(app, {
  stage: 'test',
  env: ENV,
  config: parseKeelConfig({}, 'config/test.json'),
});
let pipelines: Template;
let monitoring: Template;
let findings: ReturnType<typeof synthFindings>;

beforeAll(() => {
  findings = synthFindings(app);
  pipelines = Template.fromStack(stacks.pipelines);
  monitoring = Template.fromStack(stacks.monitoring);
});

const guardrailArn = (id: string) => ({
  'Fn::Join': [
    '',
    ['arn:', { Ref: 'AWS::Partition' }, `:cloudwatch:eu-west-1:111122223333:alarm:${alarmName('test', id)}`],
  ],
});
const logicalIdOf = (template: Template, type: string, props: Record<string, unknown>) => {
  const ids = Object.keys(template.findResources(type, { Properties: props }));
  expect(ids, JSON.stringify(props)).toHaveLength(1);
  return ids[0]!;
};
const roleOf = (template: Template, functionId: string) =>
  (template.toJSON().Resources[functionId].Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];

describe('the rollout state machine (pipelines stack)', () => {
  const definition = () => {
    const [machine] = Object.values(
      pipelines.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'keel-test-rollout' },
      }),
    ) as Resource[];
    return {
      machine: machine!,
      asl: JSON.parse(resolveIntrinsics(machine!.Properties.DefinitionString)) as AslDefinition,
    };
  };
  const s = PIPELINES.rollout.states;

  it('waits until the bake end given in its input, then invokes the monitoring stack’s decide function by name', () => {
    const { asl, machine } = definition();
    expect(asl.StartAt).toBe(s.bake);
    expect(asl.States[s.bake]).toEqual({ Type: 'Wait', TimestampPath: '$.bakeEndsAt', Next: s.decide });
    expect(asl.States[s.decide]).toMatchObject({
      Type: 'Task',
      Resource: `arn:aws:lambda:${ENV.region}:${ENV.account}:function:${ROLLOUT_FUNCTIONS.decideName('test')}`,
      Parameters: { 'name.$': '$.name', 'rolloutId.$': '$.rolloutId', 'bakeEndsAt.$': '$.bakeEndsAt' },
      ResultPath: '$.decision',
      TimeoutSeconds: ROLLOUT_FUNCTIONS.timeoutSeconds,
      Next: s.notify,
      Retry: expect.arrayContaining([
        expect.objectContaining({ ErrorEquals: ['Lambda.TooManyRequestsException', 'UnavailableError'] }),
      ]),
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: NOTIFY_FAILURE_STATE }],
    });
    expect(asl.States[s.notify]).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::sns:publish',
      Parameters: {
        'Subject.$': "States.Format('Keel test: rollout {}', $.decision.outcome)",
        Message: { pipeline: 'rollout', 'status.$': '$.decision.outcome', 'summary.$': '$.decision.summary' },
      },
      End: true,
      Catch: [
        { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: 'Notification failed' },
      ],
    });
    // Two states and a notice per rollout, however long the bake: far from the 25,000-event history.
    expect(Object.keys(asl.States).sort()).toEqual(
      [s.bake, s.decide, s.notify, NOTIFY_FAILURE_STATE, 'Failed', 'Notification failed'].sort(),
    );
    // A 30-day shadow and its decision fit in the execution.
    expect(machine.Properties.DefinitionString).toBeDefined();
    expect(asl.TimeoutSeconds).toBeGreaterThan(30 * 86_400);
  });

  it('may invoke that function (and its versions) only', () => {
    const { machine } = definition();
    const role = (machine.Properties.RoleArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
    const invoke = statementsOf(pipelines, role).filter((st) =>
      JSON.stringify(st.Action).includes('lambda:'),
    );
    const arn = `:lambda:eu-west-1:111122223333:function:${ROLLOUT_FUNCTIONS.decideName('test')}`;
    expect(invoke).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: [
          { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, arn]] },
          { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `${arn}:*`]] },
        ],
      },
    ]);
  });

  it('is an output the CLI finds the stage’s machine by', () => {
    pipelines.hasOutput('RolloutStateMachineArn', {
      Export: { Name: 'keel-test-rollout-state-machine-arn' },
    });
  });
});

describe('the rollout functions and the guard rule (monitoring stack)', () => {
  const decideId = () =>
    logicalIdOf(monitoring, 'AWS::Lambda::Function', { FunctionName: ROLLOUT_FUNCTIONS.decideName('test') });
  const guardId = () =>
    logicalIdOf(monitoring, 'AWS::Lambda::Function', {
      Handler: 'index.guard',
      Description: Match.stringLikeRegexp('^Keel rollout'),
    });
  const topic = () => ({
    Ref: logicalIdOf(monitoring, 'AWS::SNS::Topic', { DisplayName: 'Keel test on-call' }),
  });
  const rolloutQueue = () =>
    Object.keys(monitoring.findResources('AWS::SQS::Queue')).find((id) =>
      id.startsWith('RolloutsDeadLetters'),
    )!;
  const key = () => {
    const [id] = Object.keys(monitoring.findResources('AWS::KMS::Key'));
    return { 'Fn::GetAtt': [id!, 'Arn'] };
  };

  it('leave no cdk-nag finding in the app', () => {
    expect(findings).toEqual([]);
  });

  it('decide is named as the state machine invokes it, knows the stage, the model and the on-call topic', () => {
    monitoring.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'keel-test-rollout-decide',
      Handler: 'index.decide',
      Timeout: ROLLOUT_FUNCTIONS.timeoutSeconds,
      Environment: {
        Variables: Match.objectLike({
          KEEL_STAGE: 'test',
          KEEL_MODEL_NAME: 'churn',
          KEEL_ONCALL_TOPIC_ARN: topic(),
        }),
      },
    });
    monitoring.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.guard',
      Environment: { Variables: Match.objectLike({ KEEL_STAGE: 'test', KEEL_ONCALL_TOPIC_ARN: topic() }) },
    });
  });

  it('an EventBridge rule sends every guardrail alarm’s move to ALARM to the guard, undeliverable events to a queue', () => {
    const [[ruleId, rule]] = (
      Object.entries(monitoring.findResources('AWS::Events::Rule')) as [string, Resource][]
    ).filter(([id]) => id.startsWith('Rollouts')) as [[string, Resource]];
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.cloudwatch'],
      'detail-type': ['CloudWatch Alarm State Change'],
      resources: ROLLOUT_GUARDRAIL_IDS.map(guardrailArn),
      detail: { state: { value: ['ALARM'] } },
    });
    const queue = rolloutQueue();
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [guardId(), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queue, 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
      }),
    ]);
    monitoring.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [guardId(), 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    // A failed guard is not retried into silence: its event goes to the queue, whose alarm tells on-call.
    monitoring.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: guardId() },
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    monitoring.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'keel-test-dlq-depth-rollout-guard',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
    });
  });

  /** The data stack's registry table, as the monitoring stack imports it. */
  const registry = {
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    Resource: {
      'Fn::ImportValue': expect.stringMatching(/^Keel-test-Data:ExportsOutputFnGetAttModelRegistryTable/),
    },
  };
  const ownLogs = (fn: string) => ({
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::GetAtt': [expect.stringMatching(new RegExp(`^Rollouts${fn}Logs`)), 'Arn'] },
  });
  const xray = {
    Effect: 'Allow',
    Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
    Resource: '*',
  };

  it('decide may read the guardrail alarms by name, move the aliases, read what a promotion checks, publish to the on-call topic with its key: nothing else', () => {
    expect(statementsOf(monitoring, roleOf(monitoring, decideId()))).toEqual([
      ownLogs('Decide'),
      xray,
      registry,
      { Effect: 'Allow', Action: 'sns:Publish', Resource: topic() },
      // What SNS asks of a publisher on a KMS-encrypted topic: without it every page is refused.
      { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: key() },
      // Promoting the challenger reads its feature definition and the store's fields.
      ...promotionReadStatements(),
      // By name, no wildcard: the guardrails are metric alarms (only composites need "*").
      {
        Effect: 'Allow',
        Action: 'cloudwatch:DescribeAlarms',
        // CDK sorts a statement's resources.
        Resource: [...ROLLOUT_GUARDRAIL_IDS].sort().map(guardrailArn),
      },
    ]);
  });

  it('guard may move the aliases, publish to the on-call topic with its key, and send its failures to its queue', () => {
    expect(statementsOf(monitoring, roleOf(monitoring, guardId()))).toEqual([
      ownLogs('Guard'),
      xray,
      {
        Effect: 'Allow',
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: { 'Fn::GetAtt': [rolloutQueue(), 'Arn'] },
      },
      registry,
      { Effect: 'Allow', Action: 'sns:Publish', Resource: topic() },
      { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: key() },
    ]);
  });

  it('the on-call key’s policy leaves the functions to their roles’ policies (the account trusts IAM)', () => {
    const [[, keyResource]] = Object.entries(monitoring.findResources('AWS::KMS::Key')) as [
      [string, Resource],
    ];
    expect(JSON.stringify(keyResource.Properties.KeyPolicy)).not.toMatch(/Rollouts/);
  });
});
