import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
  type Statistic,
} from '@aws-sdk/client-cloudwatch';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { STAGE_OUTPUTS, stackName } from '#cli/stage/stage-info.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';
import { provisionResources } from '#local/provision.ts';
import { createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { LabeledRecord } from '#shared/features/index.ts';
import type { AlarmDefinition, MetricStat } from '#shared/monitoring/alarm-catalog.ts';
import { alarmDescription, alarmName, renderExpression } from '#shared/monitoring/cloudwatch-alarms.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import { BUCKET_ROLES, type ResourceNames, resourceNames, TABLE_ROLES } from '#shared/resources.ts';
import { startMoto, type TestAws } from './aws.ts';
import { CDK_CONTEXT, NO_BUNDLING } from './cdk.ts';
import { promoteVersion, registerTrainedModel } from './model.ts';

/**
 * A "deployed" stage played by moto_server, for `keel --stage NAME`: its CloudFormation stacks carry
 * the outputs the real stacks export, and the CLI resolves bucket, table and API names from them.
 */
export const STAGE = 'it';
export const STAGE_REGION = 'us-east-1';
const ACCOUNT = '123456789012';
export const STAGE_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret' };

/** An SDK client's configuration for the stage's moto. */
export const stageClientConfig = (endpoint: string) => ({
  region: STAGE_REGION,
  endpoint,
  credentials: {
    accessKeyId: STAGE_CREDENTIALS.AWS_ACCESS_KEY_ID,
    secretAccessKey: STAGE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
  },
});

/** A stack of the stage that holds nothing but the outputs the CLI reads. */
export async function createOutputsStack(endpoint: string, name: string, outputs: Record<string, string>) {
  const cfn = new CloudFormationClient(stageClientConfig(endpoint));
  try {
    await cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: JSON.stringify({
          Resources: { Placeholder: { Type: 'AWS::SQS::Queue' } },
          Outputs: Object.fromEntries(Object.entries(outputs).map(([key, value]) => [key, { Value: value }])),
        }),
      }),
    );
  } finally {
    cfn.destroy();
  }
}

export interface TestStage {
  readonly moto: Awaited<ReturnType<typeof startMoto>>;
  /** moto's one endpoint, for every service. */
  readonly endpoint: string;
  readonly aws: TestAws;
  readonly names: ResourceNames;
  /** The customers v1 was trained on; the first 50 are in the online store. */
  readonly customers: readonly LabeledRecord[];
  /** The environment of `keel --stage it` against this moto (KEEL_HOME a fresh directory). */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * moto as the stage `it`: its data stack's buckets and tables with the stack's outputs, a trained and
 * promoted champion v1 (with its baseline), 50 customers in the online store.
 */
export async function startTestStage(): Promise<TestStage> {
  const moto = await startMoto();
  const endpoint = moto.target.endpoints!.s3;
  const names = resourceNames({ stage: STAGE, account: ACCOUNT, region: STAGE_REGION });
  const clients = createAwsClients(moto.target);
  const home = await mkdtemp(join(tmpdir(), 'keel-stage-'));
  const aws: TestAws = { emulator: 'moto', home, target: moto.target, names, clients, close: async () => {} };
  await provisionResources(clients, names);
  const customers = [...generateRecords({ rows: 2000, seed: 8, asOf: new Date() })];
  const { version } = await registerTrainedModel(aws, customers, { seed: 1, nTrees: 10 });
  await promoteVersion(aws, version);
  await writeRecords(
    { dynamo: clients.dynamo, table: names.onlineFeatures },
    customers.slice(0, 50).map(({ churned: _label, ...raw }) => raw),
  );
  await createOutputsStack(endpoint, stackName(STAGE, 'Data'), {
    ...Object.fromEntries(BUCKET_ROLES.map((role) => [STAGE_OUTPUTS.bucket(role), names[role]])),
    ...Object.fromEntries(TABLE_ROLES.map((role) => [STAGE_OUTPUTS.table(role), names[role]])),
  });
  return {
    moto,
    endpoint,
    aws,
    names,
    customers,
    env: {
      KEEL_HOME: home,
      AWS_REGION: STAGE_REGION,
      ...STAGE_CREDENTIALS,
      AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
      AWS_ENDPOINT_URL_CLOUDWATCH: endpoint,
      KEEL_S3_ENDPOINT: endpoint,
      KEEL_DYNAMODB_ENDPOINT: endpoint,
    },
    async close() {
      clients.s3.destroy();
      clients.dynamo.destroy();
      moto.process.kill('SIGTERM');
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** The stage's synthesized pipelines stack (no bundling): its state machines, as deployed. */
export function stagePipelinesTemplate(): Template {
  const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING } });
  const env = { account: ACCOUNT, region: STAGE_REGION };
  const data = new DataStack(app, stackName(STAGE, 'Data'), { stage: STAGE, env });
  const pipelines = new PipelinesStack(app, stackName(STAGE, 'Pipelines'), {
    stage: STAGE,
    env,
    buckets: data.buckets,
    tables: data.tables,
  });
  return Template.fromStack(pipelines);
}

const metricOf = (s: MetricStat) => ({
  Namespace: s.namespace,
  MetricName: s.metricName,
  Dimensions: Object.entries(s.dimensions).map(([Name, Value]) => ({ Name, Value })),
});

/** The PutMetricAlarm request CloudFormation makes for a definition (see lib/constructs/monitoring-alarms.ts). */
export function putAlarmInput(definition: AlarmDefinition): PutMetricAlarmCommandInput {
  const common = {
    AlarmName: alarmName(STAGE, definition.id),
    AlarmDescription: alarmDescription(definition),
    EvaluationPeriods: definition.evaluationPeriods,
    DatapointsToAlarm: definition.datapointsToAlarm,
    Threshold: definition.threshold,
    ComparisonOperator: definition.comparisonOperator,
    TreatMissingData: definition.treatMissingData,
  };
  const { metric, periodSeconds: Period } = definition;
  if (metric.kind === 'metric') {
    const { statistic } = metric.metric;
    return {
      ...common,
      ...metricOf(metric.metric),
      Period,
      ...(statistic.startsWith('p')
        ? { ExtendedStatistic: statistic }
        : { Statistic: statistic as Statistic }),
    };
  }
  return {
    ...common,
    Metrics: [
      { Id: 'expr', Expression: renderExpression(metric.expression), Label: metric.label, ReturnData: true },
      ...Object.entries(metric.metrics).map(([Id, s]) => ({
        Id,
        ReturnData: false,
        MetricStat: { Metric: metricOf(s), Period, Stat: s.statistic },
      })),
    ],
  };
}

/** Puts the alarms into moto's CloudWatch as the monitoring stack deploys them (moto has no composites). */
export async function putStageAlarms(endpoint: string, alarms: readonly AlarmDefinition[]): Promise<void> {
  const cloudwatch = new CloudWatchClient(stageClientConfig(endpoint));
  try {
    for (const definition of alarms)
      await cloudwatch.send(new PutMetricAlarmCommand(putAlarmInput(definition)));
  } finally {
    cloudwatch.destroy();
  }
}
