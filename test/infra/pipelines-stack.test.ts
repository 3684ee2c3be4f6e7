import { App, Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { PipelinesStack, type PipelinesStackProps } from '#lib/stacks/pipelines-stack.ts';
import { type AslDefinition, type AslState, inlineDistributedMaps } from '#local/state-machines.ts';
import { STORE_FIELDS_KEY } from '#shared/online-store/fields.ts';
import { NOTIFY_FAILURE_STATE, PIPELINES } from '#shared/pipelines/definitions.ts';
import { isMonitoringJob, SCHEDULES } from '#shared/pipelines/schedules.ts';
import { resolveIntrinsics } from '../support/asl.ts';
import { CDK_CONTEXT } from '../support/cdk.ts';
import type { Statement } from '../support/cfn-template.ts';
import { promotionReadStatements } from '../support/promotion-grants.ts';

let template: Template;
const env = { account: '123456789012', region: 'us-east-1' };

/** A stage's pipelines stack beside its data stack. */
function pipelinesStack(stage: string, props: Partial<PipelinesStackProps> = {}): PipelinesStack {
  // Bundling is skipped: these assertions are about the templates, not the function code.
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const data = new DataStack(app, `Keel-${stage}-Data`, { stage, env });
  return new PipelinesStack(app, `Keel-${stage}-Pipelines`, {
    stage,
    env,
    buckets: data.buckets,
    tables: data.tables,
    ...props,
  });
}

beforeAll(() => {
  template = Template.fromStack(pipelinesStack('test'));
});

function definition(name: string): AslDefinition {
  const machines = template.findResources('AWS::StepFunctions::StateMachine', {
    Properties: { StateMachineName: name },
  });
  const [machine] = Object.values(machines);
  if (!machine) throw new Error(`no state machine ${name}`);
  return JSON.parse(resolveIntrinsics(machine.Properties.DefinitionString)) as AslDefinition;
}

function tasks(states: Record<string, AslState>): [string, AslState][] {
  return Object.entries(states).flatMap(([name, state]) => {
    if (state.Type === 'Task') return [[name, state] as [string, AslState]];
    if (state.Type === 'Map') return tasks((state.ItemProcessor as AslDefinition).States);
    return [];
  });
}

const logicalId = (type: string, props: Record<string, unknown>) =>
  Object.keys(template.findResources(type, { Properties: props }))[0]!;

/** The retrain state machine's role. */
const retrainRole = () => {
  const [machine] = Object.values(
    template.findResources('AWS::StepFunctions::StateMachine', {
      Properties: { StateMachineName: 'keel-test-retrain' },
    }),
  );
  return (machine!.Properties.RoleArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
};

/** Every statement of the policies attached to a role. */
const roleStatements = (role: string): Statement[] =>
  Object.values(
    template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } }),
  ).flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);

describe('pipeline state machines', () => {
  it('log everything and trace', () => {
    for (const pipeline of Object.values(PIPELINES)) {
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
        StateMachineName: `keel-test-${pipeline.name}`,
        LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: Match.anyValue() },
        TracingConfiguration: { Enabled: true },
      });
    }
  });

  it('ETL: plan → Map over chunks → finalize', () => {
    const etl = definition('keel-test-etl');
    const s = PIPELINES.etl.states;
    expect(etl.StartAt).toBe(s.plan);
    expect(etl.States[s.plan]).toMatchObject({ Type: 'Task', ResultPath: '$.plan', Next: s.chunks });
    expect(etl.States[s.chunks]).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.items',
      ItemSelector: { 'run.$': '$.plan.run', 'index.$': '$$.Map.Item.Value' },
      MaxConcurrency: 4,
      ResultPath: null,
      Next: s.finalize,
    });
    expect(etl.States[s.finalize]).toMatchObject({ Type: 'Task', End: true });
    // Each task waits as long as its function may run (Step Functions' default would cut a long chunk).
    const lambdaTasks = tasks(etl.States).filter(([name]) => !name.startsWith('Notify'));
    expect(lambdaTasks.map(([, state]) => state.TimeoutSeconds)).toEqual([300, 900, 60]);
  });

  it('retrain: train → Choice on the decision → promote → notify (or start the rollout decision → notify), or notify kept', () => {
    const retrain = definition('keel-test-retrain');
    const s = PIPELINES.retrain.states;
    expect(retrain.StartAt).toBe(s.train);
    expect(retrain.States[s.decide]).toMatchObject({
      Type: 'Choice',
      Choices: [
        { Variable: '$.candidate.promote', BooleanEquals: false, Next: 'Notify kept' },
        { Variable: '$.candidate.requireApproval', BooleanEquals: true, Next: s.prepareApproval },
      ],
      Default: s.promote,
    });
    expect(retrain.States[s.approved]).toMatchObject({
      Choices: [{ Variable: '$.approval.approved', BooleanEquals: true, Next: s.promote }],
      Default: s.notApproved,
    });
    expect(retrain.States[s.promote]).toMatchObject({
      Next: s.rolledOut,
      ResultPath: '$.deployment',
      Parameters: expect.objectContaining({ 'rollout.$': '$.candidate.rollout' }),
    });
    // retrain.rollout: a candidate handed to a rollout has its decision started, named after the rollout.
    expect(retrain.States[s.rolledOut]).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.deployment.decision', IsPresent: true, Next: s.startDecision }],
      Default: s.notify,
    });
    const rollout = logicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'keel-test-rollout' });
    expect(retrain.States[s.startDecision]).toMatchObject({
      Resource: 'arn:aws:states:::states:startExecution',
      Parameters: {
        StateMachineArn: expect.stringMatching(`:${rollout}$`),
        'Input.$': '$.deployment.decision',
        'Name.$': '$.deployment.decision.rolloutId',
      },
      ResultPath: null,
      Next: 'Notify rolled out',
    });
    expect(retrain.States[s.notify]).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::sns:publish',
      End: true,
    });
  });

  it('only the retrain may start the rollout state machine (the CLI starts it as the operator)', () => {
    const rollout = logicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'keel-test-rollout' });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: rollout } }),
        ]),
      },
    });
    const starters = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([, policy]) => JSON.stringify(policy).includes(JSON.stringify({ Ref: rollout })))
      .map(([, policy]) => policy.Properties.Roles);
    expect(starters).toEqual([[{ Ref: expect.stringMatching(/^StateMachinesretrainStateMachineRole/) }]]);
  });

  it('retrain: the approval gate asks the approvers with the commands, records the token, waits 24 h', () => {
    const retrain = definition('keel-test-retrain');
    const s = PIPELINES.retrain.states;
    const approvals = logicalId('AWS::SNS::Topic', { DisplayName: 'Keel test approvals' });
    expect(retrain.States[s.prepareApproval]).toMatchObject({
      Type: 'Pass',
      Parameters: { 'id.$': "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0)" },
      ResultPath: '$.approvalRequest',
      Next: s.requestApproval,
    });
    expect(retrain.States[s.requestApproval]).toMatchObject({
      Resource: 'arn:aws:states:::sns:publish',
      Parameters: {
        TopicArn: expect.stringMatching(`:${approvals}$`),
        Message: {
          'approvalId.$': '$.approvalRequest.id',
          'approve.$': "States.Format('keel --stage test models approve {}', $.approvalRequest.id)",
          'reject.$': "States.Format('keel --stage test models reject {}', $.approvalRequest.id)",
          pending: 'keel --stage test models approvals',
          ifNobodyAnswersWithinHours: 24,
        },
      },
      Next: s.approve,
    });
    expect(retrain.States[s.approve]).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:dynamodb:putItem.waitForTaskToken',
      TimeoutSeconds: 86_400,
      Parameters: {
        Item: {
          pk: { S: 'APPROVALS' },
          sk: { 'S.$': '$.approvalRequest.id' },
          taskToken: { 'S.$': '$$.Task.Token' },
          requestedAt: { 'S.$': '$$.State.EnteredTime' },
          timeoutSeconds: { N: '86400' },
          status: { S: 'pending' },
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
      ResultPath: '$.approval',
      Next: s.approved,
    });
    // Rejected: the approvers hear who said no, and the run succeeds (a decision, not a fault).
    expect(retrain.States[s.notApproved]).toMatchObject({
      Parameters: {
        TopicArn: expect.stringMatching(`:${approvals}$`),
        Message: { status: 'NOTAPPROVED', 'by.$': '$.approval.actor' },
      },
      End: true,
    });
    // Nobody answered: the approvers hear it, and the run fails with a name that says so.
    expect(retrain.States[s.approvalExpired]).toMatchObject({
      Parameters: {
        TopicArn: expect.stringMatching(`:${approvals}$`),
        Message: { status: 'APPROVALEXPIRED', waitedHours: 24 },
      },
      Next: 'Approval expired',
    });
    expect(retrain.States['Approval expired']).toMatchObject({ Type: 'Fail', Error: 'ApprovalExpired' });
  });

  it('retrain: the execution outlives the approval wait plus the training with its retries', () => {
    const retrain = definition('keel-test-retrain');
    const wait = retrain.States[PIPELINES.retrain.states.approve]!.TimeoutSeconds as number;
    const train = retrain.States[PIPELINES.retrain.states.train]!.TimeoutSeconds as number;
    // An execution timeout cannot be caught: were it shorter, an unanswered request would end the
    // run TIMED_OUT, with nobody told.
    expect(retrain.TimeoutSeconds).toBeGreaterThan(wait + 4 * train);
    expect(retrain.TimeoutSeconds).toBe(6 * 3600 + 86_400);
    for (const other of ['keel-test-etl', 'keel-test-batch-scoring']) {
      expect(definition(other).TimeoutSeconds).toBe(6 * 3600);
    }
  });

  it('batch scoring: a Distributed Map over store segments', () => {
    const batch = definition('keel-test-batch-scoring');
    const map = batch.States[PIPELINES.batch.states.segments]!;
    expect(map).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.items',
      ItemSelector: { 'run.$': '$.plan.run', 'index.$': '$$.Map.Item.Value' },
      ResultPath: null,
      MaxConcurrency: 16,
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
    });
  });

  it('retries SNS throttling and internal errors on every publish, and never reports a reached outcome as a failed run', () => {
    const publishes: string[] = [];
    for (const pipeline of Object.values(PIPELINES)) {
      const asl = definition(`keel-test-${pipeline.name}`);
      for (const [name, state] of tasks(asl.States)) {
        if (!String(state.Resource).startsWith('arn:aws:states:::sns:publish')) continue;
        publishes.push(name);
        const [sns, ...rest] = state.Retry as Record<string, unknown>[];
        expect(sns, name).toMatchObject({
          ErrorEquals: expect.arrayContaining([
            'SNS.ThrottledException',
            'SNS.InternalErrorException',
            'SNS.KMSThrottlingException',
          ]),
          BackoffRate: 2,
          MaxAttempts: 6,
          JitterStrategy: 'FULL',
        });
        // A callback task retries no catch-all: an approver's SendTaskFailure must not re-ask.
        const callback = String(state.Resource).endsWith('.waitForTaskToken');
        expect(rest, name).toEqual(
          callback ? [] : [expect.objectContaining({ ErrorEquals: ['States.TaskFailed'] })],
        );
      }
      expect(asl.States[NOTIFY_FAILURE_STATE]!.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: 'Failed' },
      ]);
    }
    // The failure notices and the three retrain outcomes at least.
    expect(publishes).toEqual(
      expect.arrayContaining([
        NOTIFY_FAILURE_STATE,
        PIPELINES.retrain.states.notify,
        'Notify kept',
        'Notify not approved',
      ]),
    );
    const retrain = definition('keel-test-retrain');
    for (const name of [PIPELINES.retrain.states.notify, 'Notify kept', 'Notify not approved']) {
      expect(retrain.States[name]!.Catch, name).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: 'Notification failed' },
      ]);
    }
    expect(retrain.States['Notification failed']).toMatchObject({
      Type: 'Fail',
      Error: 'NotificationFailed',
      Cause: expect.stringMatching(/outcome stands/),
    });
  });

  it('retries transient errors on every task and sends any failure to notify-then-fail', () => {
    for (const pipeline of Object.values(PIPELINES)) {
      const asl = definition(`keel-test-${pipeline.name}`);
      expect(asl.States[NOTIFY_FAILURE_STATE]).toMatchObject({
        Resource: 'arn:aws:states:::sns:publish',
        Next: 'Failed',
      });
      expect(asl.States.Failed).toEqual({
        Type: 'Fail',
        ErrorPath: '$.error.Error',
        CausePath: '$.error.Cause',
      });
      for (const [name, state] of tasks(asl.States)) {
        if (!String(state.Resource).startsWith('arn:aws:lambda')) continue;
        expect(state.Retry, name).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              ErrorEquals: ['Lambda.TooManyRequestsException', 'UnavailableError'],
              MaxAttempts: 3,
              BackoffRate: 2,
            }),
          ]),
        );
      }
      for (const [name, state] of Object.entries(asl.States)) {
        if (!['Task', 'Map'].includes(state.Type) || name.startsWith('Notify')) continue;
        if (name === PIPELINES.retrain.states.approve) {
          // Waiting for a human: no answer in time is "approval expired", anything else fails.
          expect(state.Catch).toEqual([
            {
              ErrorEquals: ['States.Timeout', 'States.HeartbeatTimeout'],
              ResultPath: '$.error',
              Next: PIPELINES.retrain.states.approvalExpired,
            },
            { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: NOTIFY_FAILURE_STATE },
          ]);
          continue;
        }
        expect(state.Catch, name).toEqual([
          { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: NOTIFY_FAILURE_STATE },
        ]);
      }
    }
  });
});

describe('permissions', () => {
  it('lets the batch state machine start, describe and stop its own Distributed Map executions', () => {
    const batch = logicalId('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'keel-test-batch-scoring',
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: batch } }),
          Match.objectLike({ Action: ['states:DescribeExecution', 'states:StopExecution'], Effect: 'Allow' }),
        ]),
      },
    });
  });

  it('lets each state machine invoke exactly its own task functions', () => {
    const invokes = (machine: string) => {
      const roleRef = template.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: machine },
      });
      const role = (Object.values(roleRef)[0]!.Properties.RoleArn as { 'Fn::GetAtt': [string] })[
        'Fn::GetAtt'
      ][0];
      const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } });
      return Object.values(policies)
        .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[])
        .filter((s) => s.Action === 'lambda:InvokeFunction')
        .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]))
        .map((r) => JSON.stringify(r).match(/Functions(\w+?)Function/)?.[1])
        .filter(Boolean);
    };
    expect(new Set(invokes('keel-test-etl'))).toEqual(new Set(['EtlPlan', 'EtlChunk', 'EtlFinalize']));
    expect(new Set(invokes('keel-test-retrain'))).toEqual(new Set(['Train', 'Promote']));
    expect(new Set(invokes('keel-test-batch-scoring'))).toEqual(
      new Set(['BatchPlan', 'BatchScore', 'BatchFinalize']),
    );
  });

  it('grants tasks exact actions only: no service-wide or wildcard actions', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const actions = Object.values(policies).flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) =>
        [s.Action].flat(),
      ),
    );
    expect(actions.filter((a) => a.startsWith('s3:') && a.includes('*'))).toEqual([]);
    expect(actions.filter((a) => a.endsWith(':*') || a === '*')).toEqual([]);
  });

  it('lets the ETL chunk task write features, quarantine and the online store, and nothing more', () => {
    const role = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith('FunctionsEtlChunkRole'),
    )!;
    const [policy] = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } }),
    );
    const statements = policy!.Properties.PolicyDocument.Statement as { Action: string | string[] }[];
    expect(new Set(statements.flatMap((s) => [s.Action].flat()))).toEqual(
      new Set([
        's3:GetObject',
        's3:PutObject',
        'dynamodb:BatchWriteItem',
        'dynamodb:PutItem',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
      ]),
    );
  });
  it('lets the ETL finalize task read the chunk results, mark the dataset and merge the one store-fields key', () => {
    const role = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith('FunctionsEtlFinalizeRole'),
    )!;
    const s3 = roleStatements(role).filter((s) => [s.Action].flat().some((a) => String(a).startsWith('s3:')));
    const features = { 'Fn::ImportValue': expect.stringMatching(/FeaturesBucket.*Arn/) };
    const objects = (key: string) => ({ 'Fn::Join': ['', [features, `/${key}`]] });
    expect(s3).toEqual([
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objects('features/*') },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: objects('etl-runs/*') },
      // Read-merge-write of online-store/fields.json with conditional writes: that key, nothing else.
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: objects(STORE_FIELDS_KEY) },
      // Listing only that key: a missing manifest is NoSuchKey, not AccessDenied.
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: features,
        Condition: { StringEquals: { 's3:prefix': STORE_FIELDS_KEY } },
      },
    ]);
  });

  it('lets the promote task move the aliases and read what a promotion checks: its versions’ metadata and the store’s fields', () => {
    const role = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith('FunctionsPromoteRole'),
    )!;
    const own = (s: Statement) => !/^(logs|xray):/.test([s.Action].flat()[0]!);
    expect(roleStatements(role).filter(own)).toEqual([
      {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        Resource: {
          'Fn::ImportValue': expect.stringMatching(/^Keel-test-Data:ExportsOutputFnGetAttModelRegistryTable/),
        },
      },
      ...promotionReadStatements(),
    ]);
  });

  it('lets the batch score task put objects under its predictions, the model’s capture prefix and batch-runs/ only', () => {
    const role = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith('FunctionsBatchScoreRole'),
    )!;
    const [policy] = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } }),
    );
    const statements = policy!.Properties.PolicyDocument.Statement as {
      Action: unknown;
      Resource: unknown;
    }[];
    const puts = statements.filter((s) => [s.Action].flat().includes('s3:PutObject'));
    // Its run's plan is read and its result written under batch-runs/ (kept out of the 256 KiB state).
    expect(puts.map((s) => s.Action)).toEqual(['s3:PutObject', ['s3:GetObject', 's3:PutObject']]);
    // Object ARNs are `<bucket arn>/<prefix>*`.
    const prefixes = (resource: unknown) =>
      [...JSON.stringify(resource).matchAll(/"\/([^"]*)"\]/g)].map((m) => m[1]).sort();
    expect(prefixes(puts[0]!.Resource)).toEqual(['captures/model=churn/*', 'predictions/*']);
    expect(prefixes(puts[1]!.Resource)).toEqual(['batch-runs/*']);
  });
});

describe('the approval gate', () => {
  it('lets the retrain publish to the encrypted approvals topic: sns:Publish and its key', () => {
    const role = retrainRole();
    const key = logicalId('AWS::KMS::Key', {
      Description: 'Keel test approvals: encrypts the approvals topic',
    });
    const topic = logicalId('AWS::SNS::Topic', { DisplayName: 'Keel test approvals' });
    template.hasResourceProperties('AWS::SNS::Topic', {
      DisplayName: 'Keel test approvals',
      KmsMasterKeyId: { 'Fn::GetAtt': [key, 'Arn'] },
    });
    const statements = roleStatements(role);
    const allows = (action: string, resource: unknown) =>
      statements.some(
        (st) =>
          st.Effect === 'Allow' &&
          [st.Action].flat().includes(action) &&
          [st.Resource].flat().some((r) => JSON.stringify(r) === JSON.stringify(resource)),
      );
    expect(allows('sns:Publish', { Ref: topic })).toBe(true);
    for (const action of ['kms:GenerateDataKey', 'kms:Decrypt']) {
      expect(allows(action, { 'Fn::GetAtt': [key, 'Arn'] }), action).toBe(true);
    }
  });

  it('lets the retrain put approval requests into their own partition of the registry table only', () => {
    const puts = roleStatements(retrainRole()).filter((s) => [s.Action].flat().includes('dynamodb:PutItem'));
    expect(puts).toEqual([
      {
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: expect.anything(),
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['APPROVALS'] } },
      },
    ]);
    expect(JSON.stringify(puts[0]!.Resource)).toContain('ModelRegistryTable');
  });

  it('subscribes the configured approvers and waits the configured time', () => {
    const stack = pipelinesStack('qa', {
      approval: {
        timeout: Duration.hours(48),
        emails: ['lead@example.com', 'owner@example.com'],
        webhookUrls: ['https://chat.example.com/hooks/keel'],
      },
    });
    const qa = Template.fromStack(stack);
    const topic = Object.keys(
      qa.findResources('AWS::SNS::Topic', { Properties: { DisplayName: 'Keel qa approvals' } }),
    )[0]!;
    for (const [Protocol, Endpoint] of [
      ['email', 'lead@example.com'],
      ['email', 'owner@example.com'],
      ['https', 'https://chat.example.com/hooks/keel'],
    ]) {
      qa.hasResourceProperties('AWS::SNS::Subscription', { TopicArn: { Ref: topic }, Protocol, Endpoint });
    }
    qa.resourceCountIs('AWS::SNS::Subscription', 3);
    // What SNS cannot deliver to an approver waits in a dead-letter queue.
    qa.allResourcesProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: topic },
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue() },
    });
    const [machine] = Object.values(
      qa.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'keel-qa-retrain' },
      }),
    );
    const asl = JSON.parse(resolveIntrinsics(machine!.Properties.DefinitionString)) as AslDefinition;
    expect(asl.States[PIPELINES.retrain.states.approve]!.TimeoutSeconds).toBe(48 * 3600);
    expect(asl.TimeoutSeconds).toBe(54 * 3600);
    // Nobody is subscribed unless configured.
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('refuses approvers SNS would refuse, and a wait Step Functions cannot hold', () => {
    const stack = (approval: PipelinesStackProps['approval']) => () => pipelinesStack('qa', { approval });
    expect(stack({ emails: ['lead'] })).toThrow('"lead" is not an email address');
    expect(stack({ webhookUrls: ['http://chat.example.com'] })).toThrow('is not an https:// URL');
    expect(stack({ timeout: Duration.days(31) })).toThrow(
      'approval.timeout must be whole seconds from 1 s to 30 days (got 2678400 s)',
    );
  });
});

describe('schedules', () => {
  it('start their state machines with the declared expression and input, with a DLQ', () => {
    const targets = { batch: 'keel-test-batch-scoring', retrain: 'keel-test-retrain' } as const;
    // The monitoring jobs' schedules are the monitoring stack's.
    for (const schedule of SCHEDULES.filter((s) => !isMonitoringJob(s.target) && s.target !== 'etl')) {
      const machine = logicalId('AWS::StepFunctions::StateMachine', {
        StateMachineName: targets[schedule.target as 'batch' | 'retrain'],
      });
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: schedule.expression,
        State: 'ENABLED',
        Targets: [
          Match.objectLike({
            Arn: { Ref: machine },
            Input: JSON.stringify(schedule.input),
            DeadLetterConfig: { Arn: Match.anyValue() },
            RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 7200 },
          }),
        ],
      });
    }
    template.resourceCountIs('AWS::Events::Rule', 2);
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  });
});

describe('the local transformation of Distributed Map', () => {
  it('turns a Distributed Map into an inline Map over the same items, and nothing else', () => {
    const batch = definition('keel-test-batch-scoring');
    const local = inlineDistributedMaps(batch);
    const map = local.States[PIPELINES.batch.states.segments]!;
    expect((map.ItemProcessor as { ProcessorConfig: unknown }).ProcessorConfig).toEqual({ Mode: 'INLINE' });
    const { ItemProcessor: _a, ...restLocal } = map;
    const { ItemProcessor: _b, ...restCloud } = batch.States[PIPELINES.batch.states.segments]!;
    expect(restLocal).toEqual(restCloud);
    const otherStates = (d: AslDefinition) =>
      Object.entries(d.States).filter(([n]) => n !== PIPELINES.batch.states.segments);
    expect(otherStates(local)).toEqual(otherStates(batch));
    expect(inlineDistributedMaps(definition('keel-test-etl'))).toEqual(definition('keel-test-etl'));
  });

  it('refuses a Distributed Map with an ItemReader, which it could not run faithfully', () => {
    const batch = definition('keel-test-batch-scoring');
    const withReader = structuredClone(batch);
    (withReader.States[PIPELINES.batch.states.segments] as Record<string, unknown>).ItemReader = {
      Resource: 'arn:aws:states:::s3:getObject',
    };
    expect(() => inlineDistributedMaps(withReader)).toThrow(/uses ItemReader/);
  });
});
