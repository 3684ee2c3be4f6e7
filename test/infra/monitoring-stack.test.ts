import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNagChecks } from '#lib/nag.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack } from '#lib/stacks/inference-stack.ts';
import { MonitoringStack, type MonitoringStackProps } from '#lib/stacks/monitoring-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';
import { localAlarmCatalog } from '#local/alarms.ts';
import type { AlarmCatalog, AlarmDefinition, MetricStat } from '#shared/monitoring/alarm-catalog.ts';
import {
  ALARM_IDS,
  DEAD_LETTER_QUEUES,
  type DeadLetterQueueId,
  deadLetterQueueOutputs,
  ROLLOUT_GUARDRAIL_IDS,
} from '#shared/monitoring/alarm-definitions.ts';
import {
  alarmDescription,
  alarmName,
  renderAlarmRule,
  renderExpression,
} from '#shared/monitoring/cloudwatch-alarms.ts';
import {
  DEFAULT_SERVICE,
  DRIFT_METRICS,
  KEEL_NAMESPACE,
  PREDICT_METRICS,
} from '#shared/monitoring/metrics.ts';
import { SCHEDULES } from '#shared/pipelines/schedules.ts';
import { acknowledgementsIn, CDK_CONTEXT, synthFindings } from '../support/cdk.ts';
import type { Resource } from '../support/cfn-template.ts';

const STAGE = 'test';
const ENV = { account: '111122223333', region: 'eu-west-1' };
const TMP = mkdtempSync(join(tmpdir(), 'keel-monitoring-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** The four stacks as bin/app.ts composes them, bundling skipped (no test here reads function code). */
function monitoringApp(
  props: Partial<MonitoringStackProps> = {},
  options: { inference?: boolean; driftJob?: boolean } = {},
) {
  const app = new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] },
    outdir: mkdtempSync(join(TMP, 'cdk.out-')),
  });
  addNagChecks(app);
  const data = new DataStack(app, 'Keel-test-Data', { stage: STAGE, env: ENV });
  const pipelines = new PipelinesStack(app, 'Keel-test-Pipelines', {
    stage: STAGE,
    env: ENV,
    buckets: data.buckets,
    tables: data.tables,
  });
  const inference =
    (options.inference ?? true)
      ? new InferenceStack(app, 'Keel-test-Inference', {
          stage: STAGE,
          env: ENV,
          buckets: data.buckets,
          tables: data.tables,
        })
      : undefined;
  const stack = new MonitoringStack(app, 'Keel-test-Monitoring', {
    stage: STAGE,
    env: ENV,
    stateMachines: pipelines.stateMachines,
    schedulesDeadLetterQueue: pipelines.schedules.deadLetterQueue,
    approvalsDeadLetterQueue: pipelines.approvals.deadLetterQueue,
    pipelineNotifications: pipelines.notifications,
    predictFunction: inference?.predictFunction?.function,
    predictLogGroup: inference?.predictFunction?.logGroup,
    api: inference?.api.api,
    driftJob: (options.driftJob ?? true) ? { buckets: data.buckets, tables: data.tables } : undefined,
    qualityJob: (options.driftJob ?? true) ? { buckets: data.buckets, tables: data.tables } : undefined,
    rollouts: { buckets: data.buckets, tables: data.tables },
    ...props,
  });
  return { app, data, pipelines, inference, stack };
}

function resources(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type)) as [string, Resource][];
}

function alarmNamed(template: Template, name: string): Resource {
  const found = Object.values(
    template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: name } }),
  ) as Resource[];
  expect(found, name).toHaveLength(1);
  return found[0]!;
}

/** A `{Fn::ImportValue}` of an export of `stack` (names are resolved cross-stack references). */
const importFrom = (stack: string) => ({
  'Fn::ImportValue': expect.stringMatching(new RegExp(`^${stack}:ExportsOutput`)),
});

/** The DashboardBody as JSON: tokens joined into it are replaced by `TOKEN`. */
function dashboardBody(template: Template): {
  widgets: { type: string; properties: Record<string, unknown> }[];
} {
  const [[, dashboard]] = resources(template, 'AWS::CloudWatch::Dashboard') as [[string, Resource]];
  const body = dashboard.Properties.DashboardBody;
  const text =
    typeof body === 'string'
      ? body
      : (body['Fn::Join'][1] as unknown[])
          .map((part) => (typeof part === 'string' ? part : 'TOKEN'))
          .join('');
  return JSON.parse(text);
}

const EXPECTED_ALARM_IDS = [
  ALARM_IDS.dataDriftWarn,
  ALARM_IDS.dataDriftPage,
  ALARM_IDS.scoreDrift,
  ALARM_IDS.positiveRateDrift,
  ALARM_IDS.etlSchemaChange,
  'etl-unseen-plan',
  'etl-unseen-region',
  ALARM_IDS.predictLatency,
  ALARM_IDS.apiLatency,
  ALARM_IDS.predictServerErrors,
  ALARM_IDS.qualityAucDrop,
  ALARM_IDS.predictionConsistency,
  ALARM_IDS.featureSkew,
  ...ROLLOUT_GUARDRAIL_IDS,
  'lambda-errors-predict',
  'lambda-throttles-predict',
  'lambda-errors-drift',
  'lambda-throttles-drift',
  'lambda-errors-quality',
  'lambda-throttles-quality',
  'state-machine-failures-etl',
  'state-machine-timeouts-etl',
  'state-machine-aborts-etl',
  'state-machine-failures-retrain',
  'state-machine-timeouts-retrain',
  'state-machine-aborts-retrain',
  'state-machine-failures-batch',
  'state-machine-timeouts-batch',
  'state-machine-aborts-batch',
  'state-machine-failures-rollout',
  'state-machine-timeouts-rollout',
  'state-machine-aborts-rollout',
  'dlq-depth-schedules',
  'dlq-depth-approvals',
  'dlq-depth-drift',
  'dlq-depth-quality',
  'dlq-depth-rollout-guard',
  'dlq-depth-on-call',
];

describe('MonitoringStack over the whole app (Lambda inference)', () => {
  const { app, stack, inference, pipelines } = monitoringApp();
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  let topicId: string;

  beforeAll(() => {
    const started = performance.now();
    findings = synthFindings(app);
    console.info(`synthesized the four stacks in ${Math.round(performance.now() - started)} ms`);
    template = Template.fromStack(stack);
    topicId = resources(template, 'AWS::SNS::Topic')[0]![0];
  });

  it('leaves no cdk-nag finding unacknowledged (AwsSolutions and Serverless)', () => {
    expect(findings).toEqual([]);
  });

  it('acknowledges each finding on its own construct, one rule at a time, with a reason', () => {
    const acknowledged = acknowledgementsIn(app).filter((a) => a.path.startsWith('Keel-test-Monitoring/'));
    const listed = acknowledged.map(({ path, id }) =>
      `${path} ${id}`.replace(/ExportsOutput[A-Za-z0-9]+/, '…'),
    );
    expect(listed.sort()).toEqual([
      'Keel-test-Monitoring/DriftJob/DeadLetters AwsSolutions-SQS3',
      'Keel-test-Monitoring/DriftJob/DeadLetters Serverless-SQSRedrivePolicy',
      // KeelFunction's own: the runtime, and no DLQ beside its on-failure destination (invoked asynchronously).
      'Keel-test-Monitoring/DriftJob/Job/Function AwsSolutions-L1',
      'Keel-test-Monitoring/DriftJob/Job/Function Serverless-LambdaDLQ',
      'Keel-test-Monitoring/DriftJob/Job/Function Serverless-LambdaLatestVersion',
      'Keel-test-Monitoring/DriftJob/Job/Role AwsSolutions-IAM5[Resource::*]',
      'Keel-test-Monitoring/DriftJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/captures/model=churn/*]',
      'Keel-test-Monitoring/DriftJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/drift-reports/*]',
      'Keel-test-Monitoring/DriftJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/models/churn/*]',
      'Keel-test-Monitoring/OnCall/DeadLetters AwsSolutions-SQS3',
      'Keel-test-Monitoring/OnCall/DeadLetters Serverless-SQSRedrivePolicy',
      'Keel-test-Monitoring/QualityJob/DeadLetters AwsSolutions-SQS3',
      'Keel-test-Monitoring/QualityJob/DeadLetters Serverless-SQSRedrivePolicy',
      'Keel-test-Monitoring/QualityJob/Job/Function AwsSolutions-L1',
      'Keel-test-Monitoring/QualityJob/Job/Function Serverless-LambdaDLQ',
      'Keel-test-Monitoring/QualityJob/Job/Function Serverless-LambdaLatestVersion',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/captures/model=churn/*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/features/*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/models/churn/*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/outcomes/*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/quality-reports/*]',
      'Keel-test-Monitoring/QualityJob/Job/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/quarantine/outcomes/*]',
      'Keel-test-Monitoring/Rollouts/DeadLetters AwsSolutions-SQS3',
      'Keel-test-Monitoring/Rollouts/DeadLetters Serverless-SQSRedrivePolicy',
      // The decision runs synchronously (a Step Functions task), the guard asynchronously (EventBridge).
      'Keel-test-Monitoring/Rollouts/Decide/Function AwsSolutions-L1',
      'Keel-test-Monitoring/Rollouts/Decide/Function Serverless-LambdaAsyncFailureDestination',
      'Keel-test-Monitoring/Rollouts/Decide/Function Serverless-LambdaDLQ',
      'Keel-test-Monitoring/Rollouts/Decide/Function Serverless-LambdaLatestVersion',
      'Keel-test-Monitoring/Rollouts/Decide/Role AwsSolutions-IAM5[Resource::*]',
      // The version it promotes is known at run time only.
      'Keel-test-Monitoring/Rollouts/Decide/Role AwsSolutions-IAM5[Resource::Keel-test-Data:…/models/churn/*/metadata.json]',
      'Keel-test-Monitoring/Rollouts/Guard/Function AwsSolutions-L1',
      'Keel-test-Monitoring/Rollouts/Guard/Function Serverless-LambdaDLQ',
      'Keel-test-Monitoring/Rollouts/Guard/Function Serverless-LambdaLatestVersion',
      'Keel-test-Monitoring/Rollouts/Guard/Role AwsSolutions-IAM5[Resource::*]',
    ]);
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(40);
  });

  it('creates exactly one alarm per definition, named alarmName(stage, id)', () => {
    expect(stack.catalog.alarms.map((a) => a.id)).toEqual(EXPECTED_ALARM_IDS);
    const names = resources(template, 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties.AlarmName);
    expect(names.sort()).toEqual(EXPECTED_ALARM_IDS.map((id) => alarmName(STAGE, id)).sort());
  });

  /** What the template must say of a metric stat, cross-stack names as imports of their stack. */
  function expectedStat(stat: MetricStat) {
    // CDK writes a metric's dimensions sorted by name; CloudWatch matches them as a set.
    const dimensions = Object.entries(stat.dimensions)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([Name, value]) => ({ Name, Value: stack.resolve(value) }));
    return { namespace: stat.namespace, name: stat.metricName, dimensions, statistic: stat.statistic };
  }

  const percentile = (statistic: string) => /^p\d/.test(statistic);

  it.each(EXPECTED_ALARM_IDS)(
    'alarm %s: metric, window, comparison, threshold, description and actions as defined',
    (id) => {
      const definition = stack.catalog.alarms.find((a) => a.id === id) as AlarmDefinition;
      const alarm = alarmNamed(template, alarmName(STAGE, id)).Properties;
      expect(alarm).toMatchObject({
        AlarmDescription: alarmDescription(definition),
        Threshold: definition.threshold,
        EvaluationPeriods: definition.evaluationPeriods,
        DatapointsToAlarm: definition.datapointsToAlarm,
        ComparisonOperator: definition.comparisonOperator,
        TreatMissingData: definition.treatMissingData,
      });
      // A guardrail notifies nobody: the rollout guard pages, naming the version and the alarm.
      expect(alarm.AlarmActions).toEqual(definition.guardrail ? undefined : [{ Ref: topicId }]);
      expect(alarm.AlarmDescription).toContain(definition.runbook.slice(0, 40));
      if (definition.severity === 'page') expect(alarm.OKActions).toEqual([{ Ref: topicId }]);
      else expect(alarm.OKActions).toBeUndefined();

      if (definition.metric.kind === 'metric') {
        const want = expectedStat(definition.metric.metric);
        expect(alarm.Namespace).toBe(want.namespace);
        expect(alarm.MetricName).toBe(want.name);
        expect(alarm.Dimensions).toEqual(want.dimensions);
        expect(alarm.Period).toBe(definition.periodSeconds);
        if (percentile(want.statistic)) expect(alarm.ExtendedStatistic).toBe(want.statistic);
        else expect(alarm.Statistic).toBe(want.statistic);
        expect(alarm.Metrics).toBeUndefined();
      } else {
        expect(alarm.MetricName).toBeUndefined();
        const metrics = alarm.Metrics as Record<string, unknown>[];
        const [expression, ...inputs] = [
          metrics.find((m) => m.Expression !== undefined),
          ...metrics.filter((m) => m.Expression === undefined),
        ];
        expect(expression).toMatchObject({
          Expression: renderExpression(definition.metric.expression),
          Label: definition.metric.label,
          ReturnData: true,
        });
        const byId = Object.fromEntries(inputs.map((m) => [m!.Id, m]));
        expect(Object.keys(byId).sort()).toEqual(Object.keys(definition.metric.metrics).sort());
        for (const [inputId, stat] of Object.entries(definition.metric.metrics)) {
          const want = expectedStat(stat);
          expect(byId[inputId]).toEqual({
            Id: inputId,
            ReturnData: false,
            MetricStat: {
              Metric: { Namespace: want.namespace, MetricName: want.name, Dimensions: want.dimensions },
              Period: definition.periodSeconds,
              Stat: want.statistic,
            },
          });
        }
      }
    },
  );

  it('watches the drift job’s and the predict handler’s metrics under the one service name they emit with', () => {
    const dims = (name: string) => alarmNamed(template, alarmName(STAGE, name)).Properties;
    expect(dims(ALARM_IDS.dataDriftPage)).toMatchObject({
      Namespace: KEEL_NAMESPACE,
      MetricName: DRIFT_METRICS.maxFeaturePsi,
      Dimensions: [{ Name: 'service', Value: DEFAULT_SERVICE }],
    });
    expect(dims(ALARM_IDS.predictLatency)).toMatchObject({
      MetricName: PREDICT_METRICS.latency,
      Dimensions: [{ Name: 'service', Value: DEFAULT_SERVICE }],
    });
    // The predict function's Powertools service name is what its EMF lines carry: one name for all.
    const fn = Template.fromStack(inference!).findResources('AWS::Lambda::Function');
    expect(JSON.stringify(fn)).toContain(`"POWERTOOLS_SERVICE_NAME":"${DEFAULT_SERVICE}"`);
  });

  it('watches the other stacks’ resources through their exports', () => {
    const props = (id: string) => alarmNamed(template, alarmName(STAGE, id)).Properties;
    // Only the Lambda variant has the function: read from the inference stack's output, not imported,
    // so switching to ECS can delete it (test/infra/config-changes.test.ts).
    expect(props('lambda-errors-predict').Dimensions).toEqual([
      {
        Name: 'FunctionName',
        Value: {
          'Fn::GetStackOutput': {
            StackName: 'Keel-test-Inference',
            Region: ENV.region,
            OutputName: expect.stringMatching(/^PublishOutputRefLambdaPredictFunction/),
          },
        },
      },
    ]);
    for (const machine of ['etl', 'retrain', 'batch']) {
      expect(props(`state-machine-failures-${machine}`)).toMatchObject({
        Namespace: 'AWS/States',
        MetricName: 'ExecutionsFailed',
        Dimensions: [{ Name: 'StateMachineArn', Value: importFrom('Keel-test-Pipelines') }],
      });
    }
    expect(props('dlq-depth-schedules').Dimensions).toEqual([
      { Name: 'QueueName', Value: importFrom('Keel-test-Pipelines') },
    ]);
    expect(props(ALARM_IDS.apiLatency).Dimensions).toEqual([
      { Name: 'ApiName', Value: 'keel-test-inference' },
      // The stage's Ref is its name.
      { Name: 'Stage', Value: importFrom('Keel-test-Inference') },
    ]);
    expect(stack.resolve(pipelines.schedules.deadLetterQueue.queueName)).toEqual(
      importFrom('Keel-test-Pipelines'),
    );
  });

  it('alarms on-call on failed, timed-out and aborted executions of every state machine', () => {
    // A timed-out or stopped execution never reaches its failure path: only these alarms tell.
    for (const machine of ['etl', 'retrain', 'batch']) {
      for (const [kind, MetricName] of [
        ['failures', 'ExecutionsFailed'],
        ['timeouts', 'ExecutionsTimedOut'],
        ['aborts', 'ExecutionsAborted'],
      ]) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          AlarmName: alarmName(STAGE, `state-machine-${kind}-${machine}`),
          AlarmActions: [{ Ref: topicId }],
          Namespace: 'AWS/States',
          MetricName,
          Statistic: 'Sum',
          Period: 300,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          Threshold: 1,
          TreatMissingData: 'notBreaching',
          Dimensions: [{ Name: 'StateMachineArn', Value: Match.anyValue() }],
        });
      }
    }
  });

  it('pages through one composite alarm over every page alarm, notified on ALARM and OK', () => {
    const [[, composite]] = resources(template, 'AWS::CloudWatch::CompositeAlarm') as [[string, Resource]];
    const rule = renderAlarmRule(stack.catalog.page, (id) => alarmName(STAGE, id));
    expect(composite.Properties).toEqual({
      AlarmName: alarmName(STAGE, ALARM_IDS.page),
      AlarmDescription: alarmDescription(stack.catalog.page),
      AlarmRule: rule,
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
    const pages = stack.catalog.alarms.filter((a) => a.severity === 'page').map((a) => a.id);
    expect(pages).toEqual([
      ALARM_IDS.dataDriftPage,
      ALARM_IDS.scoreDrift,
      ALARM_IDS.positiveRateDrift,
      ALARM_IDS.predictLatency,
      ALARM_IDS.apiLatency,
      ALARM_IDS.predictServerErrors,
      ALARM_IDS.qualityAucDrop,
      // A notification on-call never received.
      'dlq-depth-on-call',
    ]);
    for (const id of pages) expect(rule).toContain(`ALARM("${alarmName(STAGE, id)}")`);
    expect(rule.split(' OR ')).toHaveLength(pages.length);
    // Created after its children, which its rule names as text.
    const alarmIds = resources(template, 'AWS::CloudWatch::Alarm')
      .filter(([, r]) => pages.some((id) => r.Properties.AlarmName === alarmName(STAGE, id)))
      .map(([logicalId]) => logicalId);
    expect([...(composite.DependsOn ?? [])].sort()).toEqual(expect.arrayContaining(alarmIds.sort()));
  });

  it('encrypts the on-call topic with a rotated key CloudWatch may use, and refuses plain HTTP', () => {
    const [[keyId, key]] = resources(template, 'AWS::KMS::Key') as [[string, Resource]];
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:SourceAccount': '111122223333' } },
    });
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      DisplayName: 'Keel test on-call',
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes the OnCallEmail and OnCallWebhookUrl parameters only when given (empty by default)', () => {
    const parameters = template.toJSON().Parameters;
    expect(parameters.OnCallEmail).toMatchObject({ Type: 'String', Default: '' });
    expect(parameters.OnCallWebhookUrl).toMatchObject({ Type: 'String', Default: '' });
    const conditions = template.toJSON().Conditions;
    expect(conditions.OnCallEmailGiven).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'OnCallEmail' }, ''] }],
    });
    const subscriptions = resources(template, 'AWS::SNS::Subscription')
      .map(([, r]) => r)
      .filter((r) => JSON.stringify(r.Properties.TopicArn) === JSON.stringify({ Ref: topicId }));
    const queueId = resources(template, 'AWS::SQS::Queue')
      .map(([id]) => id)
      .find((id) => id.startsWith('OnCallDeadLetters'))!;
    expect(subscriptions.map((s) => ({ condition: s.Condition, ...s.Properties }))).toEqual([
      {
        condition: 'OnCallEmailGiven',
        Protocol: 'email',
        Endpoint: { Ref: 'OnCallEmail' },
        TopicArn: { Ref: topicId },
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      },
      {
        condition: 'OnCallWebhookUrlGiven',
        Protocol: 'https',
        Endpoint: { Ref: 'OnCallWebhookUrl' },
        TopicArn: { Ref: topicId },
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      },
    ]);
    // SNS may put what it could not deliver into that queue, from this topic only.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sqs:SendMessage',
            Principal: { Service: 'sns.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': { Ref: topicId } } },
          }),
        ]),
      },
    });
  });

  it('delivers the pipelines’ notifications to the same on-call endpoints, undelivered ones to on-call’s queue', () => {
    const notifications = stack.resolve(pipelines.notifications.topicArn);
    expect(notifications).toEqual(importFrom('Keel-test-Pipelines'));
    const [[queueId]] = resources(template, 'AWS::SQS::Queue').filter(([id]) =>
      id.startsWith('OnCallDeadLetters'),
    ) as [[string, Resource]];
    const subscriptions = resources(template, 'AWS::SNS::Subscription')
      .map(([, r]) => r)
      .filter((r) => JSON.stringify(r.Properties.TopicArn) === JSON.stringify(notifications));
    // The endpoints on-call's own subscriptions have, on the same conditions: one parameter, one confirmation each.
    expect(subscriptions.map((s) => ({ condition: s.Condition, ...s.Properties }))).toEqual([
      {
        condition: 'OnCallEmailGiven',
        Protocol: 'email',
        Endpoint: { Ref: 'OnCallEmail' },
        TopicArn: notifications,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      },
      {
        condition: 'OnCallWebhookUrlGiven',
        Protocol: 'https',
        Endpoint: { Ref: 'OnCallWebhookUrl' },
        TopicArn: notifications,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      },
    ]);
    // SNS may dead-letter into on-call's queue from exactly these two topics, each in its own statement.
    const [[, policy]] = resources(template, 'AWS::SQS::QueuePolicy').filter(([, r]) =>
      JSON.stringify(r.Properties.Queues).includes(queueId),
    ) as [[string, Resource]];
    const fromSns = (policy.Properties.PolicyDocument.Statement as Record<string, unknown>[]).filter(
      (statement) => JSON.stringify(statement.Principal) === '{"Service":"sns.amazonaws.com"}',
    );
    expect(fromSns).toEqual([
      {
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'sns.amazonaws.com' },
        Resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': { Ref: topicId } } },
      },
      {
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'sns.amazonaws.com' },
        Resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': notifications } },
      },
    ]);
    // SSE-SQS: the queue has no KMS key that SNS would need a grant on.
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    expect(
      resources(template, 'AWS::SQS::Queue').find(([id]) => id === queueId)![1].Properties.KmsMasterKeyId,
    ).toBeUndefined();
    // SNS decrypts the topic's messages itself to deliver them to email and HTTPS: the notifications key
    // grants no service principal (its publishers, the state machines, are granted through their roles).
    const keys = Template.fromStack(pipelines).findResources('AWS::KMS::Key');
    const notificationsKey = Object.entries(keys).find(([id]) =>
      id.startsWith('NotificationsKey'),
    )![1] as Resource;
    const principals = (notificationsKey.Properties.KeyPolicy.Statement as { Principal: unknown }[]).map(
      (statement) => statement.Principal,
    );
    expect(principals).toEqual([
      { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:root']] } },
    ]);
  });

  it('draws the dashboard: model version, traffic, latency p50/p99, 4xx/5xx, drift, pipeline runs and failures', () => {
    const { widgets } = dashboardBody(template);
    const titles = widgets.map((w) => w.properties.title ?? w.type);
    expect(titles).toEqual([
      'Model version serving (predictions by ModelVersion)',
      'Traffic (predictions)',
      'Latency p50 / p99 (ms)',
      'Responses 4xx / 5xx',
      'Drift (hourly job)',
      'Pipeline executions',
      'Pipeline failures (failed, timed out, aborted)',
      'Dead-letter queues (work and notifications given up on)',
    ]);
    const byTitle = (title: string) => widgets.find((w) => w.properties.title === title)!.properties;
    const metricsOf = (title: string) =>
      (byTitle(title).metrics as unknown[][]).map((m) => m.filter((part) => typeof part === 'string'));
    expect(byTitle('Model version serving (predictions by ModelVersion)').query).toMatch(
      /^SOURCE 'TOKEN' \| filter ispresent\(ModelVersion\).*by ModelVersion/s,
    );
    expect(metricsOf('Traffic (predictions)')).toContainEqual([
      'Keel',
      'Predictions',
      'service',
      DEFAULT_SERVICE,
    ]);
    const latency = byTitle('Latency p50 / p99 (ms)').metrics as unknown[][];
    const stats = latency.map((m) => (m.at(-1) as { stat: string }).stat);
    expect(stats).toEqual(['p50', 'p99', 'p50', 'p99']);
    expect(metricsOf('Latency p50 / p99 (ms)')).toContainEqual([
      'AWS/ApiGateway',
      'Latency',
      'ApiName',
      'keel-test-inference',
      'Stage',
      'TOKEN',
    ]);
    expect(metricsOf('Responses 4xx / 5xx').map((m) => m[1])).toEqual([
      PREDICT_METRICS.http4xx,
      PREDICT_METRICS.http5xx,
      '4XXError',
      '5XXError',
    ]);
    expect(metricsOf('Drift (hourly job)')).toEqual([
      ['Keel', DRIFT_METRICS.maxFeaturePsi, 'service', DEFAULT_SERVICE],
      ['Keel', DRIFT_METRICS.scorePsi, 'service', DEFAULT_SERVICE],
      ['Keel', DRIFT_METRICS.positiveRateDelta, 'service', DEFAULT_SERVICE],
    ]);
    expect(metricsOf('Pipeline executions')).toEqual(
      ['ETL', 'Retrain', 'Batch'].map(() => ['AWS/States', 'ExecutionsStarted', 'StateMachineArn', 'TOKEN']),
    );
    const failures = (
      byTitle('Pipeline failures (failed, timed out, aborted)').metrics as unknown[][]
    ).filter((m) => typeof m[0] === 'object');
    expect(failures.map((m) => (m[0] as { expression: string }).expression)).toEqual([
      'FILL(f0, 0) + FILL(t0, 0) + FILL(a0, 0)',
      'FILL(f1, 0) + FILL(t1, 0) + FILL(a1, 0)',
      'FILL(f2, 0) + FILL(t2, 0) + FILL(a2, 0)',
    ]);
    // Where a notification that never reached on-call still shows: every dead-letter queue's alarm.
    const deadLetters = byTitle('Dead-letter queues (work and notifications given up on)');
    expect(deadLetters.alarms).toHaveLength(
      EXPECTED_ALARM_IDS.filter((id) => id.startsWith('dlq-depth-')).length,
    );
  });

  it('runs the drift job hourly on the SCHEDULES drift rule, its failures in a dead-letter queue', () => {
    const drift = SCHEDULES.find((s) => s.target === 'drift')!;
    const [[fnId, fn]] = resources(template, 'AWS::Lambda::Function') as [[string, Resource]];
    expect(fn.Properties).toMatchObject({
      Handler: 'index.handler',
      Runtime: 'nodejs22.x',
      Timeout: 300,
      Environment: {
        Variables: expect.objectContaining({
          KEEL_MODEL_NAME: 'churn',
          POWERTOOLS_SERVICE_NAME: 'keel-drift',
        }),
      },
    });
    expect(stack.driftJob!.function.node.path).toBe('Keel-test-Monitoring/DriftJob/Job');
    const queueId = resources(template, 'AWS::SQS::Queue')
      .map(([id]) => id)
      .find((id) => id.startsWith('DriftJobDeadLetters'))!;
    const [[, rule]] = resources(template, 'AWS::Events::Rule') as [[string, Resource]];
    expect(rule.Properties).toMatchObject({
      ScheduleExpression: drift.expression,
      State: 'ENABLED',
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
          Input: JSON.stringify(drift.input),
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        },
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 3600,
    });
    // Invoked asynchronously: its acknowledgement says so (not the synchronous functions' reason).
    const dlq = acknowledgementsIn(app).find(
      (a) => a.path === 'Keel-test-Monitoring/DriftJob/Job/Function' && a.id === 'Serverless-LambdaDLQ',
    )!;
    expect(dlq.reason).toMatch(/^Failed asynchronous events go to the on-failure destination/);
    // Its metrics are the drift alarms' (service keel, what driftMetricData publishes under by default).
    expect(alarmNamed(template, alarmName(STAGE, 'lambda-errors-drift')).Properties.Dimensions).toEqual([
      { Name: 'FunctionName', Value: { Ref: fnId } },
    ]);
  });

  it('grants the drift job exactly what it reads and writes', () => {
    const [[, policy]] = resources(template, 'AWS::IAM::Policy') as [[string, Resource]];
    const statements = JSON.parse(
      JSON.stringify(policy.Properties.PolicyDocument.Statement).replace(/ExportsOutput[A-Za-z0-9]+/g, '…'),
    );
    const data = { 'Fn::ImportValue': 'Keel-test-Data:…' };
    const local = { 'Fn::GetAtt': [expect.any(String), 'Arn'] };
    const under = (prefix: string) => ({ 'Fn::Join': ['', [data, prefix]] });
    expect(statements).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: local },
      { Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: '*' },
      // The on-failure destination: its dead-letter queue.
      {
        Effect: 'Allow',
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: local,
      },
      // Its notice to on-call: the topic, and what SNS asks of a publisher of the topic's key.
      { Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: expect.stringMatching(/^OnCallTopic/) } },
      { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: local },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: data,
        Condition: { StringLike: { 's3:prefix': ['captures/model=churn/*'] } },
      },
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [under('/models/churn/*'), under('/captures/model=churn/*')],
      },
      { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: data },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: under('/drift-reports/*') },
    ]);
  });

  it('runs the quality job daily on the SCHEDULES quality rule, 15 minutes and 3 GB, failures in a dead-letter queue', () => {
    const quality = SCHEDULES.find((s) => s.target === 'quality')!;
    const [fnId, fn] = resources(template, 'AWS::Lambda::Function').find(([id]) =>
      id.startsWith('QualityJob'),
    )!;
    expect(fn.Properties).toMatchObject({
      Timeout: 900,
      MemorySize: 3008,
      Environment: {
        Variables: expect.objectContaining({
          KEEL_MODEL_NAME: 'churn',
          POWERTOOLS_SERVICE_NAME: 'keel-quality',
        }),
      },
    });
    const queueId = resources(template, 'AWS::SQS::Queue')
      .map(([id]) => id)
      .find((id) => id.startsWith('QualityJobDeadLetters'))!;
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: quality.expression,
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
        }),
      ],
    });
  });

  it('grants the quality job exactly what it reads and writes', () => {
    const [, policy] = resources(template, 'AWS::IAM::Policy').find(([id]) => id.startsWith('QualityJob'))!;
    const statements = JSON.parse(
      JSON.stringify(policy.Properties.PolicyDocument.Statement).replace(/ExportsOutput[A-Za-z0-9]+/g, '…'),
    );
    const data = { 'Fn::ImportValue': 'Keel-test-Data:…' };
    const local = { 'Fn::GetAtt': [expect.any(String), 'Arn'] };
    const under = (prefix: string) => ({ 'Fn::Join': ['', [data, prefix]] });
    const list = (prefix: string) => ({
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: data,
      Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } },
    });
    expect(statements).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: local },
      { Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: '*' },
      {
        Effect: 'Allow',
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: local,
      },
      { Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: expect.stringMatching(/^OnCallTopic/) } },
      { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: local },
      list('captures/model=churn/'),
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [
          under('/features/*'),
          under('/models/churn/*'),
          under('/captures/model=churn/*'),
          under('/outcomes/*'),
        ],
      },
      { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: data },
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: [under('/quarantine/outcomes/*'), under('/quality-reports/*')],
      },
      list('outcomes/'),
      list('features/'),
    ]);
  });

  it('tells the drift job the on-call topic its notice goes to', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          KEEL_ONCALL_TOPIC_ARN: { Ref: Match.stringLikeRegexp('^OnCallTopic') },
        }),
      },
    });
  });

  it('does not start retraining on drift unless asked', () => {
    expect(stack.retrainOnDrift).toBeUndefined();
    // The rollout guard's rule on the guardrail alarms is test/infra/rollout.test.ts's.
    const patterns = resources(template, 'AWS::Events::Rule').filter(
      ([id, r]) => r.Properties.EventPattern && !id.startsWith('Rollouts'),
    );
    expect(patterns).toEqual([]);
  });
});

describe('MonitoringStack options', () => {
  it('starts the retrain state machine when the data-drift page alarm goes to ALARM, with a DLQ', () => {
    const { app, stack, pipelines } = monitoringApp({ retrainOnDrift: true });
    expect(synthFindings(app)).toEqual([]);
    const template = Template.fromStack(stack);
    const alarmId = resources(template, 'AWS::CloudWatch::Alarm').find(
      ([, r]) => r.Properties.AlarmName === alarmName(STAGE, ALARM_IDS.dataDriftPage),
    )![0];
    const [[, rule]] = resources(template, 'AWS::Events::Rule').filter(
      ([id, r]) => r.Properties.EventPattern && !id.startsWith('Rollouts'),
    ) as [[string, Resource]];
    const queueId = resources(template, 'AWS::SQS::Queue')
      .map(([id]) => id)
      .find((id) => id.startsWith('RetrainOnDrift'))!;
    // The alarm's ARN by its name (the rule is made before the alarms, which watch its queue).
    expect(alarmId).toBeDefined();
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.cloudwatch'],
      'detail-type': ['CloudWatch Alarm State Change'],
      resources: [
        {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              `:cloudwatch:${ENV.region}:${ENV.account}:alarm:${alarmName(STAGE, ALARM_IDS.dataDriftPage)}`,
            ],
          ],
        },
      ],
      detail: { state: { value: ['ALARM'] } },
    });
    const [target] = rule.Properties.Targets;
    // The rule's own role, in this stack: it imports nothing that turning retrain.onDrift off removes.
    const [[roleId]] = resources(template, 'AWS::IAM::Role').filter(([id]) =>
      id.startsWith('RetrainOnDriftStartRole'),
    ) as [[string, Resource]];
    expect(target).toMatchObject({
      Arn: importFrom('Keel-test-Pipelines'),
      RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
      Input: JSON.stringify(SCHEDULES.find((s) => s.target === 'retrain')!.input),
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 7200 },
    });
    expect(stack.resolve(pipelines.stateMachines.retrain.stateMachineArn)).toEqual(target.Arn);
    expect(
      acknowledgementsIn(app)
        .filter((a) => a.path.startsWith('Keel-test-Monitoring/RetrainOnDrift'))
        .map((a) => a.id)
        .sort(),
    ).toEqual(['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']);
    // A start EventBridge gave up on is watched like every other dead letter.
    expect(
      alarmNamed(template, alarmName(STAGE, 'dlq-depth-retrain-on-drift')).Properties.Dimensions,
    ).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }]);
  });

  it('watches every dead-letter queue of the four stacks, each with its URL and ARN as outputs of its stack', () => {
    const { app, stack, data, pipelines, inference } = monitoringApp({ retrainOnDrift: true });
    expect(synthFindings(app)).toEqual([]);
    const stacks = [data, pipelines, inference!, stack];
    const queues = stacks.flatMap((s) =>
      resources(Template.fromStack(s), 'AWS::SQS::Queue').map(([id]) => `${s.stackName}/${id}`),
    );
    // Exports of the other stacks by name: what the monitoring stack imports.
    const exported = new Map<string, unknown>();
    for (const s of stacks) {
      for (const output of Object.values(Template.fromStack(s).toJSON().Outputs ?? {}) as {
        Value: unknown;
        Export?: { Name: string };
      }[]) {
        if (output.Export) exported.set(output.Export.Name, { stack: s.stackName, value: output.Value });
      }
    }
    const template = Template.fromStack(stack);
    const watched = new Map<string, string>();
    for (const [, alarm] of resources(template, 'AWS::CloudWatch::Alarm')) {
      const { AlarmName, Dimensions } = alarm.Properties as {
        AlarmName: string;
        Dimensions?: { Name: string; Value: Record<string, unknown> }[];
      };
      const queueName = Dimensions?.find((d) => d.Name === 'QueueName')?.Value;
      if (!queueName) continue;
      const imported = queueName['Fn::ImportValue'] as string | undefined;
      const { stack: owner, value } = imported
        ? (exported.get(imported) as { stack: string; value: Record<string, unknown> })
        : { stack: stack.stackName, value: queueName };
      const [queueId, attribute] = value['Fn::GetAtt'] as [string, string];
      expect(attribute).toBe('QueueName');
      watched.set(`${owner}/${queueId}`, AlarmName);
    }
    expect([...watched.keys()].sort()).toEqual(queues.sort());
    // Every queue Keel declares is deployed and watched, at its severity.
    expect([...watched.values()].sort()).toEqual(
      Object.keys(DEAD_LETTER_QUEUES)
        .map((id) => alarmName(STAGE, `dlq-depth-${id}`))
        .sort(),
    );
    for (const [id, severity] of Object.entries(DEAD_LETTER_QUEUES)) {
      expect(stack.catalog.alarms.find((a) => a.id === `dlq-depth-${id}`)?.severity).toBe(severity);
    }
    // `keel alarms` and `keel --stage S alarms` list the same alarms, at the same severities.
    const listed = (catalog: AlarmCatalog) => catalog.alarms.map((a) => `${a.id} ${a.severity}`).sort();
    expect(listed(localAlarmCatalog({}, STAGE))).toEqual(listed(stack.catalog));

    // Each queue's URL and ARN are outputs of the stack that owns it, named by deadLetterQueueOutputs.
    const outputsOf = (s: Stack) =>
      Template.fromStack(s).toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const id of Object.keys(DEAD_LETTER_QUEUES) as DeadLetterQueueId[]) {
      const alarm = alarmName(STAGE, `dlq-depth-${id}`);
      const [queuePath] = [...watched].find(([, name]) => name === alarm)!;
      const [owner, queueId] = queuePath.split('/') as [string, string];
      const outputs = outputsOf(stacks.find((s) => s.stackName === owner)!);
      const keys = deadLetterQueueOutputs(id);
      expect(outputs[keys.url], keys.url).toMatchObject({ Value: { Ref: queueId } });
      expect(outputs[keys.arn], keys.arn).toMatchObject({ Value: { 'Fn::GetAtt': [queueId, 'Arn'] } });
    }
  });

  it('subscribes endpoints fixed at synth time directly, with no parameters', () => {
    const { stack } = monitoringApp(
      { onCallEmail: 'oncall@example.com', onCallWebhookUrl: 'https://hooks.example.com/keel?x=1' },
      { inference: false },
    );
    const template = Template.fromStack(stack);
    expect(template.toJSON().Parameters?.OnCallEmail).toBeUndefined();
    expect(template.toJSON().Parameters?.OnCallWebhookUrl).toBeUndefined();
    const subscriptions = resources(template, 'AWS::SNS::Subscription').map(([, r]) => r);
    // To the on-call topic, then to the pipelines' notifications.
    expect(subscriptions.map((s) => [s.Condition, s.Properties.Protocol, s.Properties.Endpoint])).toEqual([
      [undefined, 'email', 'oncall@example.com'],
      [undefined, 'https', 'https://hooks.example.com/keel?x=1'],
      [undefined, 'email', 'oncall@example.com'],
      [undefined, 'https', 'https://hooks.example.com/keel?x=1'],
    ]);
  });

  it.each([
    [{ onCallEmail: 'oncall.example.com' }, /email "oncall\.example\.com" is not an email address/],
    [
      { onCallWebhookUrl: 'http://hooks.example.com' },
      /webhookUrl "http:\/\/hooks\.example\.com" is not an https:\/\/ URL/,
    ],
    [{ onCallWebhookUrl: 'https://' }, /is not an https:\/\/ URL/],
  ])('refuses bad on-call endpoints %j before building the stack, saying what to give', (props, message) => {
    expect(() => monitoringApp(props, { inference: false })).toThrow(message);
    // Thrown by the stack before super(): nothing half-built is left in the app.
    expect(() => monitoringApp(props, { inference: false })).toThrow(
      /^MonitoringStack Keel-test-Monitoring: /,
    );
  });

  it('refuses bad alarm options before adding the stack, naming the key', () => {
    const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const data = new DataStack(app, 'D', { stage: STAGE, env: ENV });
    const pipelines = new PipelinesStack(app, 'P', {
      stage: STAGE,
      env: ENV,
      buckets: data.buckets,
      tables: data.tables,
    });
    const make = (alarmOptions: MonitoringStackProps['alarmOptions']) =>
      new MonitoringStack(app, 'M', {
        stage: STAGE,
        env: ENV,
        stateMachines: pipelines.stateMachines,
        schedulesDeadLetterQueue: pipelines.schedules.deadLetterQueue,
        alarmOptions,
      });
    expect(() => make({ drift: { featurePsiPage: 0.1 } })).toThrow(
      /MonitoringStack M: invalid monitoring options: drift\.featurePsiPage: must be at least drift\.featurePsiWarn.*fix the alarmOptions/,
    );
    expect(() => make({ latency: { periodSeconds: 45 } })).toThrow(
      /latency\.periodSeconds: must be 10, 30 or a multiple of 60/,
    );
    // @ts-expect-error: a typo is named as an unknown option
    expect(() => make({ latncy: {} })).toThrow(/latncy: unknown option/);
    expect(() => make({ drift: { periodSeconds: 600 } })).not.toThrow();
    expect(app.node.tryFindChild('M')).toBeDefined();
  });

  it('uses the given thresholds: a custom p99 and drift window reach the alarms', () => {
    const { stack } = monitoringApp(
      { alarmOptions: { latency: { p99Ms: 250 }, drift: { periodSeconds: 7200 } } },
      { inference: false },
    );
    const template = Template.fromStack(stack);
    expect(alarmNamed(template, alarmName(STAGE, ALARM_IDS.predictLatency)).Properties.Threshold).toBe(250);
    expect(alarmNamed(template, alarmName(STAGE, ALARM_IDS.dataDriftWarn)).Properties.Period).toBe(7200);
  });

  it('without inference, watches the handler’s metrics only: no API Gateway or function alarms', () => {
    const { app, stack } = monitoringApp({}, { inference: false });
    expect(synthFindings(app)).toEqual([]);
    expect(stack.catalog.alarms.map((a) => a.id)).toEqual(
      EXPECTED_ALARM_IDS.filter((id) => id !== ALARM_IDS.apiLatency && !id.endsWith('-predict')),
    );
    expect(stack.driftJob).toBeDefined();
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CloudWatch::Alarm', stack.catalog.alarms.length);
    const { widgets } = dashboardBody(template);
    expect(widgets[0]).toMatchObject({ type: 'text' });
  });
});
