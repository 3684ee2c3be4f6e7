import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { addNagChecks } from '#lib/nag.ts';
import type { AslDefinition, AslState } from '#local/state-machines.ts';
import { type KeelConfigInput, parseKeelConfig } from '#shared/config/keel-config.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import { XGBOOST_HYPERPARAMETERS } from '#shared/training/sagemaker.ts';
import { CDK_CONTEXT, NO_BUNDLING, synthFindings } from '../support/cdk.ts';
import { type Resource, statementsOf } from '../support/cfn-template.ts';

/**
 * `retrain.engine: "sagemaker"` as deployed: the config's keys and errors, the retrain state machine's
 * training job task (AWS's built-in XGBoost image, network isolation, the key on output and volume, the
 * run's channels), the training role's and the state machine role's grants, exactly, and cdk-nag.
 */

const TMP = mkdtempSync(join(tmpdir(), 'keel-sagemaker-infra-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const s = PIPELINES.retrain.states;
const TRAINING_KEY = "Keel retrain on SageMaker: the training job's output and volumes";

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('did not throw');
}
const parse = (retrain: KeelConfigInput['retrain']) => parseKeelConfig({ retrain }, 'config/test.json');

function keelApp(retrain: KeelConfigInput['retrain'], region = 'eu-west-1') {
  const app = new App({
    context: { ...CDK_CONTEXT, ...NO_BUNDLING },
    outdir: mkdtempSync(join(TMP, 'out-')),
  });
  addNagChecks(app);
  const stacks = addKeelStacks(app, {
    stage: 'test',
    env: { account: '111122223333', region },
    config: parse(retrain),
  });
  return { app, stacks };
}

describe('the retrain.engine and retrain.sagemaker keys', () => {
  it('default to the Lambda trainer and one ml.m5.xlarge for 4 hours', () => {
    expect(parse({}).retrain).toMatchObject({
      engine: 'lambda',
      sagemaker: { instanceType: 'ml.m5.xlarge', instanceCount: 1, maxRuntimeHours: 4, volumeSizeGb: 50 },
    });
  });

  it('name each bad value with what is allowed', () => {
    expect(failure(() => parse({ engine: 'ec2' as never }))).toContain(
      'retrain.engine: must be lambda or sagemaker (got "ec2")',
    );
    const bad = (sagemaker: Record<string, unknown>) => failure(() => parse({ sagemaker }));
    expect(bad({ instanceType: 'm5.xlarge' })).toContain(
      'retrain.sagemaker.instanceType: must be a SageMaker instance type, e.g. ml.m5.xlarge (got "m5.xlarge")',
    );
    expect(bad({ instanceCount: 0 })).toContain(
      'retrain.sagemaker.instanceCount: must be from 1 to 20 (got 0)',
    );
    expect(bad({ maxRuntimeHours: 1000 })).toContain(
      'retrain.sagemaker.maxRuntimeHours: must be from 1 to 672 hours (got 1000)',
    );
    expect(bad({ volumeSizeGb: 2.5 })).toContain(
      'retrain.sagemaker.volumeSizeGb: must be a whole number of GB',
    );
    expect(bad({ image: 'sagemaker-xgboost:latest' })).toContain(
      'retrain.sagemaker.image: must be an ECR image URI',
    );
    expect(bad({ instances: 2 })).toContain(
      'retrain.sagemaker.instances: unknown key (allowed here: instanceType, instanceCount, maxRuntimeHours, volumeSizeGb, image)',
    );
  });

  it('refuse a region whose built-in image Keel does not know, unless the image is given', () => {
    expect(failure(() => keelApp({ engine: 'sagemaker' }, 'ap-east-1'))).toMatch(
      /^retrain\.sagemaker\.image: required in region ap-east-1, where Keel does not know the account of AWS's built-in XGBoost 3\.0-5 image/,
    );
    const image = '123456789012.dkr.ecr.ap-east-1.amazonaws.com/sagemaker-xgboost:3.0-5';
    const { stacks } = keelApp({ engine: 'sagemaker', sagemaker: { image } }, 'ap-east-1');
    expect(JSON.stringify(Template.fromStack(stacks.pipelines).toJSON())).toContain(image);
  });
});

/** A definition string's intrinsics as `<LogicalId.Attr>`, `<Ref>` and `<import>`, parsed. */
function definitionOf(resource: Resource): AslDefinition {
  const render = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const node = value as Record<string, unknown>;
    if ('Fn::Join' in node) {
      const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(separator);
    }
    if ('Fn::GetAtt' in node) return `<${(node['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Ref' in node) return `<${String(node.Ref)}>`;
    if ('Fn::ImportValue' in node) return '<import>';
    throw new Error(`unexpected intrinsic ${JSON.stringify(node)}`);
  };
  return JSON.parse(render(resource.Properties.DefinitionString)) as AslDefinition;
}

describe('the stacks with retrain.engine "sagemaker" (2 instances)', () => {
  const { app, stacks } = keelApp({ engine: 'sagemaker', sagemaker: { instanceCount: 2 } });
  let findings: ReturnType<typeof synthFindings>;
  let template: Template;
  let asl: AslDefinition;
  let machineRole: string;
  const idOf = (type: string, props: Record<string, unknown>) => {
    const ids = Object.keys(template.findResources(type, { Properties: props }));
    expect(ids, JSON.stringify(props)).toHaveLength(1);
    return ids[0]!;
  };
  beforeAll(() => {
    findings = synthFindings(app);
    template = Template.fromStack(stacks.pipelines);
    const [machine] = Object.values(
      template.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'keel-test-retrain' },
      }),
    ) as Resource[];
    asl = definitionOf(machine!);
    machineRole = machine!.Properties.RoleArn['Fn::GetAtt'][0];
  });
  const key = () => idOf('AWS::KMS::Key', { Description: TRAINING_KEY });
  const trainingRole = () =>
    idOf('AWS::IAM::Role', { Description: "Keel retrain on SageMaker: the training job's own role" });
  const features = {
    'Fn::ImportValue': 'Keel-test-Data:ExportsOutputFnGetAttFeaturesBucketD212B035Arn74FD8DA6',
  };
  const objects = (prefix: string) => ({ 'Fn::Join': ['', [features, `/${prefix}*`]] });

  it('pass cdk-nag with nothing unacknowledged, and have no Lambda trainer', () => {
    expect(findings).toEqual([]);
    expect(
      template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.train' } }),
    ).toEqual({});
  });

  it('train as prepare → a Map over the parts → the training job → import, then decide as the Lambda path does', () => {
    expect(asl.StartAt).toBe(s.prepareTraining);
    expect(asl.States[s.train]).toBeUndefined();
    expect(asl.States[s.prepareTraining]).toMatchObject({ ResultPath: '$.training', Next: s.channels });
    expect(asl.States[s.channels]).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.training.items',
      ItemSelector: { 'run.$': '$.training.run', 'index.$': '$$.Map.Item.Value' },
      ResultPath: null,
      Next: s.trainingJob,
    });
    const channel = (asl.States[s.channels]!.ItemProcessor as AslDefinition).States[s.channel] as AslState;
    expect(channel).toMatchObject({ Type: 'Task', ResultPath: null, OutputPath: '$.index' });
    expect(asl.States[s.importModel]).toMatchObject({ ResultPath: '$.candidate', Next: s.decide });
    for (const state of [s.prepareTraining, s.channels, s.trainingJob, s.importModel]) {
      expect(asl.States[state]!.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Notify failure' },
      ]);
    }
  });

  it('run AWS’s built-in XGBoost on the run’s channels, isolated, its output and volumes under the stage’s key', () => {
    const job = asl.States[s.trainingJob]!;
    const keyArn = `<${key()}.Arn>`;
    expect(job).toEqual({
      Type: 'Task',
      Resource: 'arn:<AWS::Partition>:states:::sagemaker:createTrainingJob.sync',
      Parameters: {
        'TrainingJobName.$': '$.training.run.jobName',
        EnableNetworkIsolation: true,
        RoleArn: `<${trainingRole()}.Arn>`,
        AlgorithmSpecification: {
          TrainingInputMode: 'File',
          TrainingImage: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5',
        },
        InputDataConfig: [
          {
            ChannelName: 'train',
            ContentType: 'text/csv',
            DataSource: {
              S3DataSource: {
                'S3Uri.$': '$.training.run.uris.train',
                S3DataType: 'S3Prefix',
                S3DataDistributionType: 'ShardedByS3Key',
              },
            },
          },
          {
            ChannelName: 'validation',
            ContentType: 'text/csv',
            DataSource: {
              S3DataSource: {
                'S3Uri.$': '$.training.run.uris.validation',
                S3DataType: 'S3Prefix',
                S3DataDistributionType: 'FullyReplicated',
              },
            },
          },
        ],
        OutputDataConfig: { 'S3OutputPath.$': '$.training.run.uris.output', KmsKeyId: keyArn },
        ResourceConfig: {
          InstanceCount: 2,
          InstanceType: 'ml.m5.xlarge',
          VolumeSizeInGB: 50,
          VolumeKmsKeyId: keyArn,
        },
        StoppingCondition: { MaxRuntimeInSeconds: 4 * 3600 },
        HyperParameters: XGBOOST_HYPERPARAMETERS,
      },
      ResultSelector: {
        'name.$': '$.TrainingJobName',
        'modelArtifacts.$': '$.ModelArtifacts.S3ModelArtifacts',
        'image.$': '$.AlgorithmSpecification.TrainingImage',
        'instanceType.$': '$.ResourceConfig.InstanceType',
        'instanceCount.$': '$.ResourceConfig.InstanceCount',
      },
      ResultPath: '$.trainingJob',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Notify failure' }],
      Next: s.importModel,
    });
    expect(XGBOOST_HYPERPARAMETERS).toEqual({
      objective: 'binary:logistic',
      num_round: '100',
      max_depth: '6',
      eta: '0.1',
      tree_method: 'hist',
      early_stopping_rounds: '10',
    });
    // The execution outlives the job's longest run besides its other work.
    const machine = Object.values(
      template.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'keel-test-retrain' },
      }),
    )[0] as Resource;
    expect(JSON.stringify(machine.Properties.DefinitionString)).toContain(
      `"TimeoutSeconds\\":${(6 + 24 + 4) * 3600}`,
    );
  });

  it('give the training job a role that reads the channels, writes the output, and nothing else', () => {
    const role = template.toJSON().Resources[trainingRole()] as Resource;
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'sagemaker.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': '111122223333' } },
      },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const keyArn = { 'Fn::GetAtt': [key(), 'Arn'] };
    expect(statementsOf(template, trainingRole())).toEqual([
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Resource: [objects('sagemaker/train/'), objects('sagemaker/validation/')],
      },
      {
        Action: 's3:ListBucket',
        Effect: 'Allow',
        Resource: features,
        Condition: { StringLike: { 's3:prefix': ['sagemaker/train/*', 'sagemaker/validation/*'] } },
      },
      { Action: 's3:PutObject', Effect: 'Allow', Resource: objects('sagemaker/output/') },
      { Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: keyArn },
      {
        Action: 'kms:CreateGrant',
        Effect: 'Allow',
        Resource: keyArn,
        Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      },
      {
        Action: [
          'logs:CreateLogGroup',
          'logs:CreateLogStream',
          'logs:DescribeLogStreams',
          'logs:PutLogEvents',
        ],
        Effect: 'Allow',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':logs:eu-west-1:111122223333:log-group:/aws/sagemaker/TrainingJobs:*',
            ],
          ],
        },
      },
      {
        Action: 'cloudwatch:PutMetricData',
        Effect: 'Allow',
        Resource: '*',
        Condition: { StringLike: { 'cloudwatch:namespace': '/aws/sagemaker/*' } },
      },
    ]);
  });

  it('let the state machine run, pass the role to and follow only its stage’s training jobs', () => {
    const arn = (service: string, resource: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:${service}:eu-west-1:111122223333:${resource}`]],
    });
    const statements = statementsOf(template, machineRole).filter((st) =>
      [st.Action].flat().some((a) => /^(sagemaker|iam|events):/.test(a)),
    );
    expect(statements).toEqual([
      {
        Action: [
          'sagemaker:AddTags',
          'sagemaker:CreateTrainingJob',
          'sagemaker:DescribeTrainingJob',
          'sagemaker:StopTrainingJob',
        ],
        Effect: 'Allow',
        Resource: arn('sagemaker', 'training-job/*'),
      },
      expect.objectContaining({
        Effect: 'Allow',
        Resource: '*',
        Action: expect.arrayContaining(['sagemaker:ListTags']),
      }),
      {
        Action: 'iam:PassRole',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [trainingRole(), 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
      },
      {
        Action: ['events:DescribeRule', 'events:PutRule', 'events:PutTargets'],
        Effect: 'Allow',
        Resource: arn('events', 'rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule'),
      },
      {
        Action: [
          'sagemaker:AddTags',
          'sagemaker:CreateTrainingJob',
          'sagemaker:DescribeTrainingJob',
          'sagemaker:StopTrainingJob',
        ],
        Effect: 'Deny',
        NotResource: arn('sagemaker', 'training-job/keel-test-*'),
      },
    ]);
  });

  it('give the import function the run’s held-out rows, counts and model, the registry, and decrypt with the key', () => {
    const fn = idOf('AWS::Lambda::Function', { Handler: 'index.importTrained' });
    const role = (template.toJSON().Resources[fn] as Resource).Properties.Role['Fn::GetAtt'][0];
    const data = statementsOf(template, role).filter((st) =>
      [st.Action].flat().some((a) => /^(s3|kms):/.test(a)),
    );
    expect(data).toEqual([
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Resource: [objects('sagemaker/heldout/'), objects('sagemaker/output/'), objects('sagemaker/runs/')],
      },
      {
        Action: 's3:ListBucket',
        Effect: 'Allow',
        Resource: features,
        Condition: { StringLike: { 's3:prefix': ['sagemaker/heldout/*'] } },
      },
      expect.objectContaining({ Action: ['s3:GetObject', 's3:PutObject'] }),
      { Action: 'kms:Decrypt', Effect: 'Allow', Resource: { 'Fn::GetAtt': [key(), 'Arn'] } },
    ]);
  });
});

describe('the stacks with the default engine', () => {
  it('train in the Lambda task, with no training job, role or key', () => {
    const { stacks } = keelApp({});
    const template = Template.fromStack(stacks.pipelines);
    expect(JSON.stringify(template.toJSON())).not.toMatch(
      /sagemaker:createTrainingJob|TrainingJobRole|TrainingKey/,
    );
    const [machine] = Object.values(
      template.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'keel-test-retrain' },
      }),
    ) as Resource[];
    expect(definitionOf(machine!).StartAt).toBe(s.train);
  });
});
