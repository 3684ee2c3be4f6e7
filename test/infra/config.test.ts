import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { addNagChecks } from '#lib/nag.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { DataStack } from '#lib/stacks/data-stack.ts';
import { InferenceStack } from '#lib/stacks/inference-stack.ts';
import { MonitoringStack } from '#lib/stacks/monitoring-stack.ts';
import { PipelinesStack } from '#lib/stacks/pipelines-stack.ts';
import { stageConfigFromContext } from '#lib/stage-context.ts';
import {
  configuredSchedules,
  type KeelConfig,
  KeelConfigError,
  loadKeelConfig,
  parseKeelConfig,
  SCHEDULE_KEYS,
} from '#shared/config/keel-config.ts';
import { LOG_RETENTION_DAYS } from '#shared/config/rules.ts';
import { KEEL_ENV } from '#shared/env.ts';
import { ALARM_IDS } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { SCHEDULES } from '#shared/pipelines/schedules.ts';
import { CDK_CONTEXT, runApp, synthFindings } from '../support/cdk.ts';

const ENV = { account: '123456789012', region: 'us-east-1' };
const TMP = mkdtempSync(join(tmpdir(), 'keel-config-'));
const CONFIG_DIR = join(REPO_ROOT, 'config');

/** The message of what `fn` throws. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('did not throw');
}

const parse = (input: unknown) => parseKeelConfig(input, 'config/test.json');

type Templates = Record<'data' | 'inference' | 'pipelines' | 'monitoring', Template>;

/** The app's four stacks for `config`, bundling skipped (nothing here reads function code), with cdk-nag. */
function keelApp(config: KeelConfig, stage = 'test') {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  addNagChecks(app);
  const stacks = addKeelStacks(app, { stage, env: ENV, config });
  const findings = synthFindings(app);
  const templates = Object.fromEntries(
    Object.entries(stacks).map(([name, stack]) => [name, Template.fromStack(stack)]),
  ) as Templates;
  return { findings, templates };
}

describe('the schema of a stage configuration', () => {
  it('takes every default from {}: the schedules of SCHEDULES and the constructs’ own defaults', () => {
    const config = parse({});
    expect(config).toEqual({
      modelName: 'churn',
      schedules: {
        batchScoring: { expression: 'cron(0 2 * * ? *)', enabled: true },
        drift: { expression: 'rate(1 hour)', enabled: true },
        quality: { expression: 'cron(0 5 * * ? *)', enabled: true },
        retrain: { expression: 'cron(0 3 ? * SUN *)', enabled: true },
      },
      retrain: {
        promotionMargin: 0.002,
        requireApproval: false,
        approval: { timeoutHours: 24, emails: [], webhookUrls: [] },
        onDrift: false,
        rollout: { mode: 'promote' },
        engine: 'lambda',
        sagemaker: { instanceType: 'ml.m5.xlarge', instanceCount: 1, maxRuntimeHours: 4, volumeSizeGb: 50 },
        maxTrainingRows: 1_000_000,
      },
      capture: { apiSampleRate: 1, batchSampleRate: 1 },
      etl: {},
      alarms: {},
      onCall: {},
      api: {
        throttle: { rateLimit: 100, burstLimit: 200 },
        wafRateLimitPer5Minutes: 3000,
      },
      inference: { compute: 'lambda', model: 'onnx' },
      retention: { logDays: 30, accessLogDays: 365, modelVersionDays: 90, deadLetterDays: 14 },
      data: { removalPolicy: 'retain', deletionProtection: true },
    });
    expect(configuredSchedules(config)).toEqual(SCHEDULES.map((s) => ({ ...s, enabled: true })));
  });

  it('has a key for every declared schedule', () => {
    expect(Object.values(SCHEDULE_KEYS).sort()).toEqual(SCHEDULES.map((s) => s.id).sort());
  });

  it('offers exactly the log retention periods of CloudWatch Logs (RetentionDays less INFINITE)', () => {
    const cdk = Object.values(RetentionDays).filter(
      (d): d is number => typeof d === 'number' && d !== RetentionDays.INFINITE,
    );
    expect([...LOG_RETENTION_DAYS].sort((a, b) => a - b)).toEqual(cdk.sort((a, b) => a - b));
  });

  it('parses every example file in config/', () => {
    const files = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['dev.json', 'local.json', 'prod.json']);
    for (const file of files) {
      const stage = file.replace(/\.json$/, '');
      expect(() => loadKeelConfig({ root: REPO_ROOT, stage }), file).not.toThrow();
    }
    const prod = loadKeelConfig({ root: REPO_ROOT, stage: 'prod' });
    expect(prod.onCall.email).toBe('oncall@example.com');
    expect(prod.inference.provisionedConcurrency).toBeGreaterThan(0);
    expect(prod.retrain.requireApproval).toBe(true);
  });

  it('names an unknown key with its dotted path and the keys allowed there', () => {
    expect(failure(() => parse({ api: { throttle: { rate: 5 } } }))).toBe(
      'config/test.json: api.throttle.rate: unknown key (allowed here: rateLimit, burstLimit)',
    );
    expect(failure(() => parse({ inferense: {} }))).toContain(
      'inferense: unknown key (allowed here: modelName, schedules, retrain, capture, etl, alarms, onCall, api, inference, retention, data)',
    );
    expect(failure(() => parse({ schedules: { retrain: { cron: 'x' } } }))).toContain(
      'schedules.retrain.cron: unknown key (allowed here: expression, enabled)',
    );
    // The alarm options are shared/monitoring's own schema, composed: its keys are named under alarms.
    expect(failure(() => parse({ alarms: { latency: { p99: 5 } } }))).toContain(
      'alarms.latency.p99: unknown option',
    );
    expect(failure(() => parse({ alarms: { service: 'x' } }))).toContain('alarms.service: unknown key');
  });

  it('names a bad value with what was given and what is allowed', () => {
    expect(failure(() => parse({ api: { throttle: { rateLimit: 'fast' } } }))).toBe(
      'config/test.json: api.throttle.rateLimit: must be a positive number (got "fast")',
    );
    expect(failure(() => parse({ retention: { logDays: 31 } }))).toContain(
      'retention.logDays: must be one of 1, 3, 5, 7, 14, 30, 60, 90',
    );
    expect(failure(() => parse({ retention: { deadLetterDays: 30 } }))).toContain(
      'retention.deadLetterDays: must be at most 14 days (got 30)',
    );
    expect(failure(() => parse({ inference: { compute: 'fargate' } }))).toContain(
      'inference.compute: Invalid option: expected one of "lambda"|"ecs" (got "fargate")',
    );
    expect(failure(() => parse({ schedules: { drift: { expression: 'every hour' } } }))).toContain(
      'schedules.drift.expression: schedule "every hour": use rate(N minutes|hours|days) or cron(',
    );
    expect(failure(() => parse({ onCall: { webhookUrl: 'http://hooks.example.com' } }))).toContain(
      'onCall.webhookUrl: must be an https:// URL',
    );
    expect(failure(() => parse({ modelName: 'Churn' }))).toContain('modelName: ');
    expect(failure(() => parse({ retrain: { approval: { timeoutHours: 0.5 } } }))).toContain(
      'retrain.approval.timeoutHours: must be a whole number of hours (got 0.5)',
    );
    expect(failure(() => parse({ retrain: { approval: { timeoutHours: 1000 } } }))).toContain(
      'retrain.approval.timeoutHours: must be from 1 to 720 hours (got 1000)',
    );
    expect(failure(() => parse({ retrain: { approval: { emails: ['lead'] } } }))).toContain(
      'retrain.approval.emails.0: must be an email address, e.g. lead@example.com (got "lead")',
    );
    expect(
      failure(() => parse({ retrain: { approval: { webhookUrls: ['http://chat.example.com'] } } })),
    ).toContain('retrain.approval.webhookUrls.0: must be an https:// URL');
    expect(failure(() => parse({ alarms: { latency: { p99Ms: -1 } } }))).toContain('alarms.latency.p99Ms:');
    expect(failure(() => parse([]))).toContain('(root)');
  });

  it('reads retrain.rollout as a mode alone or with its percent and bake, refusing what a rollout cannot be', () => {
    const rollout = (value: unknown) => parse({ retrain: { rollout: value } }).retrain.rollout;
    expect(rollout('shadow')).toEqual({ mode: 'shadow', bakeSeconds: 3600 });
    expect(rollout('canary')).toEqual({ mode: 'canary', percent: 10, bakeSeconds: 1800 });
    expect(rollout({ mode: 'canary', percent: 20, bake: '1h30m' })).toEqual({
      mode: 'canary',
      percent: 20,
      bakeSeconds: 5400,
    });
    expect(rollout('promote')).toEqual({ mode: 'promote' });
    const refused = (value: unknown) => failure(() => parse({ retrain: { rollout: value } }));
    expect(refused('later')).toContain('retrain.rollout.mode: must be promote, shadow or canary');
    expect(refused({ mode: 'canary', percent: 60 })).toContain(
      'retrain.rollout.percent: must be from 1 to 50 (got 60)',
    );
    expect(refused({ mode: 'shadow', percent: 5 })).toContain(
      'retrain.rollout.percent: a shadow answers no customer',
    );
    expect(refused({ mode: 'shadow', bake: '2 hours' })).toContain(
      'retrain.rollout.bake: must be a duration',
    );
    expect(refused({ mode: 'shadow', bake: '31d' })).toContain(
      'retrain.rollout.bake: must be a duration from 1s to 30d',
    );
    expect(refused({ mode: 'promote', bake: '1h' })).toContain('promote has no percent or bake');
    expect(refused({ mode: 'shadow', bakes: '1h' })).toContain(
      'retrain.rollout.bakes: unknown key (allowed here: mode, percent, bake)',
    );
  });

  it('refuses api.quota, saying why it was removed and what limits traffic', () => {
    expect(failure(() => parse({ api: { quota: { limit: 100000, period: 'day' } } }))).toContain(
      'api.quota: removed: API Gateway counts a usage-plan quota per API key, and callers sign with IAM and send none',
    );
  });

  it('reads api.crossAccountCallers as account ids or IAM role and user ARNs, naming a bad one', () => {
    const callers = ['210987654321', 'arn:aws:iam::444455556666:role/scoring/batch-scorer'];
    expect(parse({ api: { crossAccountCallers: callers } }).api.crossAccountCallers).toEqual(callers);
    expect(parse({}).api.crossAccountCallers).toBeUndefined();
    const refused = (value: unknown) => failure(() => parse({ api: { crossAccountCallers: value } }));
    expect(refused(['21098765432'])).toBe(
      'config/test.json: api.crossAccountCallers.0: must be a 12-digit AWS account id or an IAM role or user ARN, e.g. arn:aws:iam::210987654321:role/scorer (got "21098765432")',
    );
    expect(refused(['210987654321', 'arn:aws:sts::444455556666:assumed-role/scorer/s'])).toContain(
      'api.crossAccountCallers.1: must be a 12-digit AWS account id or an IAM role or user ARN',
    );
    expect(refused(['arn:aws:iam::444455556666:*'])).toContain('api.crossAccountCallers.0: must be');
    expect(refused(['210987654321', '210987654321'])).toContain(
      'api.crossAccountCallers: lists 210987654321 twice',
    );
    expect(refused([])).toContain(
      'api.crossAccountCallers: must list at least one caller: remove the key for none',
    );
    expect(refused('210987654321')).toContain(
      'api.crossAccountCallers: must be a list of AWS account ids or IAM role or user ARNs',
    );
  });

  it('applies the rules across keys', () => {
    expect(failure(() => parse({ inference: { model: 'sagemaker' } }))).toBe(
      'config/test.json: inference.sagemakerEndpoint: is required when inference.model is "sagemaker": name the endpoint',
    );
    expect(failure(() => parse({ inference: { sagemakerEndpoint: 'churn-xgb' } }))).toContain(
      'inference.sagemakerEndpoint: only applies when inference.model is "sagemaker"',
    );
    expect(
      failure(() => parse({ inference: { compute: 'ecs', provisionedConcurrency: 2, memoryMb: 2048 } })),
    ).toBe(
      'config/test.json: inference.provisionedConcurrency: applies to inference.compute "lambda" only: remove it, or use lambda (got 2); ' +
        'inference.memoryMb: applies to inference.compute "lambda" only: remove it, or use lambda (got 2048)',
    );
    expect(failure(() => parse({ data: { removalPolicy: 'destroy' } }))).toContain(
      'data.removalPolicy: "destroy" cannot delete protected tables: also set data.deletionProtection to false',
    );
    // An approval gate with nobody to ask would wait for an answer that cannot come.
    expect(failure(() => parse({ retrain: { requireApproval: true } }))).toContain(
      'retrain.approval.emails: retrain.requireApproval asks approvers, but none are listed',
    );
    expect(() =>
      parse({
        retrain: { requireApproval: true, approval: { webhookUrls: ['https://chat.example.com/x'] } },
      }),
    ).not.toThrow();
    expect(failure(() => parse({ alarms: { drift: { featurePsiPage: 0.1 } } }))).toContain(
      'alarms.drift.featurePsiPage: must be at least drift.featurePsiWarn (0.2), got 0.1',
    );
  });

  it('turns the retrain settings into the retrain schedule’s execution input', () => {
    const schedules = configuredSchedules(
      parse({
        retrain: {
          promotionMargin: 0.01,
          requireApproval: true,
          approval: { emails: ['a@example.com'] },
          maxTrainingRows: 250_000,
        },
        schedules: { drift: { enabled: false } },
      }),
    );
    expect(schedules.find((s) => s.id === 'Retrain')!.input).toEqual({
      promotion: 'if-better',
      margin: 0.01,
      maxTrainingRows: 250_000,
      requireApproval: true,
    });
    for (const bad of [999, 4_000_001, 1.5, '1000']) {
      expect(failure(() => parse({ retrain: { maxTrainingRows: bad } }))).toContain(
        'retrain.maxTrainingRows: must be a whole number from 1,000 to 4,000,000',
      );
    }
    expect(schedules.find((s) => s.id === 'Drift')!.enabled).toBe(false);
  });
});

describe('where the configuration comes from', () => {
  const node = (context: Record<string, unknown>) => new App({ context, outdir: join(TMP, 'unused') }).node;

  it('reads config/<stage>.json for -c stage (default dev), or the file of -c config', () => {
    const dev = stageConfigFromContext(node({}));
    expect(dev.stage).toBe('dev');
    expect(dev.config).toEqual(loadKeelConfig({ root: REPO_ROOT, stage: 'dev' }));
    const prod = stageConfigFromContext(node({ stage: 'prod' }));
    expect(prod.config.api.throttle).toEqual({ rateLimit: 500, burstLimit: 1000 });
    const file = join(TMP, 'mine.json');
    writeFileSync(file, JSON.stringify({ modelName: 'attrition' }));
    const mine = stageConfigFromContext(node({ stage: 'qa', config: file }));
    expect(mine).toMatchObject({ stage: 'qa', config: { modelName: 'attrition' } });
  });

  it('refuses a stage without a file, a missing or broken file, and the retired -c flags', () => {
    expect(failure(() => stageConfigFromContext(node({ stage: 'prdo' })))).toBe(
      'config/prdo.json: no configuration for stage "prdo": create config/prdo.json ({} takes every default) or name a file with -c config=FILE',
    );
    expect(failure(() => stageConfigFromContext(node({ config: 'nowhere.json' })))).toBe(
      'nowhere.json: file not found',
    );
    const broken = join(TMP, 'broken.json');
    writeFileSync(broken, '{"modelName": ');
    expect(failure(() => stageConfigFromContext(node({ config: broken })))).toMatch(
      /broken\.json: not valid JSON/,
    );
    expect(failure(() => stageConfigFromContext(node({ inference: 'ecs' })))).toBe(
      'context "inference" is now the stage configuration\'s inference.compute: set it in config/<stage>.json (or the file of -c config=FILE) and drop -c inference; see docs/configuration.md',
    );
    expect(failure(() => stageConfigFromContext(node({ onCallEmail: 'a@b.c' })))).toContain('onCall.email');
  });

  it('fails `cdk synth` on a bad key, naming it, before building anything', async () => {
    const file = join(TMP, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({ api: { throttle: { rateLimit: 'fast' } }, retention: { logdays: 7 } }),
    );
    const outdir = mkdtempSync(join(TMP, 'cdk.out-'));
    const error = (await runApp(outdir, { config: file })) as { stderr: string } | undefined;
    expect(error?.stderr).toContain('api.throttle.rateLimit: must be a positive number (got "fast")');
    expect(error?.stderr).toContain('retention.logdays: unknown key (allowed here: logDays,');
    expect(error?.stderr).toContain(KeelConfigError.name);
  });
});

describe('the stacks of the default configuration ({})', () => {
  it('are exactly the stacks built without any configuration', () => {
    const { templates } = keelApp(parse({}));
    const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const stage = 'test';
    const data = new DataStack(app, `Keel-${stage}-Data`, { stage, env: ENV });
    const { buckets, tables } = data;
    const inference = new InferenceStack(app, `Keel-${stage}-Inference`, {
      stage,
      env: ENV,
      buckets,
      tables,
    });
    const pipelines = new PipelinesStack(app, `Keel-${stage}-Pipelines`, {
      stage,
      env: ENV,
      buckets,
      tables,
    });
    const monitoring = new MonitoringStack(app, `Keel-${stage}-Monitoring`, {
      stage,
      env: ENV,
      stateMachines: pipelines.stateMachines,
      schedulesDeadLetterQueue: pipelines.schedules.deadLetterQueue,
      approvalsDeadLetterQueue: pipelines.approvals.deadLetterQueue,
      pipelineNotifications: pipelines.notifications,
      predictFunction: inference.predictFunction?.function,
      predictLogGroup: inference.predictFunction?.logGroup,
      api: inference.api.api,
      driftJob: { buckets, tables },
      qualityJob: { buckets, tables },
      rollouts: { buckets, tables },
    });
    const bare = { data, inference, pipelines, monitoring };
    for (const [name, stack] of Object.entries(bare)) {
      expect(templates[name as keyof Templates].toJSON(), name).toEqual(Template.fromStack(stack).toJSON());
    }
  });
});

describe('the stacks of config/prod.json', () => {
  let t: Templates;
  let findings: unknown[];
  beforeAll(() => {
    ({ templates: t, findings } = keelApp(loadKeelConfig({ root: REPO_ROOT, stage: 'prod' }), 'prod'));
  });

  it('pass cdk-nag with nothing unacknowledged', () => {
    expect(findings).toEqual([]);
  });

  it('throttle the API stage and cap the WAF rate (api), with no usage plan to count API keys', () => {
    t.inference.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 500,
          ThrottlingBurstLimit: 1000,
        }),
      ]),
    });
    t.inference.resourceCountIs('AWS::ApiGateway::UsagePlan', 0);
    t.inference.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: Match.arrayWith([
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ Limit: 6000 }) } }),
      ]),
    });
  });

  it('serve through a provisioned `live` alias of a 2048 MB function (inference)', () => {
    t.inference.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    t.inference.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 2048,
      Environment: { Variables: Match.objectLike({ KEEL_MODEL_NAME: 'churn', KEEL_MODEL_BACKEND: 'onnx' }) },
    });
  });

  it('keep every log group 365 days (retention.logDays)', () => {
    for (const [name, template] of Object.entries(t)) {
      const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
      if (name !== 'data') expect(groups.length, name).toBeGreaterThan(0);
      for (const group of groups) expect(group.Properties.RetentionInDays, name).toBe(365);
    }
  });

  it('expire objects, versions and access logs, and keep 35 days of table backups (retention)', () => {
    t.data.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.stringLikeRegexp('^keel-prod-outputs-'),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'captures/', ExpirationInDays: 400, Status: 'Enabled' }),
          Match.objectLike({ Prefix: 'predictions/', ExpirationInDays: 365, Status: 'Enabled' }),
        ]),
      },
    });
    t.data.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.stringLikeRegexp('^keel-prod-models-'),
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 365 } })],
      },
    });
    t.data.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.absent(),
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 731 })] },
    });
    t.data.allResourcesProperties('AWS::DynamoDB::Table', {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true, RecoveryPeriodInDays: 35 },
      DeletionProtectionEnabled: true,
    });
    for (const template of [t.pipelines, t.monitoring]) {
      template.allResourcesProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 86_400 });
    }
  });

  it('run the schedules, retrain with the margin and the approval gate, the ETL with its bad-row share', () => {
    t.pipelines.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 ? * SUN *)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Input: JSON.stringify({ promotion: 'if-better', margin: 0.005, requireApproval: true }),
        }),
      ],
    });
    t.monitoring.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
    });
    t.pipelines.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Keel ETL: check the counts of a run',
      Environment: { Variables: Match.objectLike({ KEEL_ETL_MAX_BAD_ROW_SHARE: '0.005' }) },
    });
  });

  it('capture every API prediction and 1% of the batch-scored rows (capture)', () => {
    t.pipelines.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Keel batch scoring: score one segment of the store',
      Environment: { Variables: Match.objectLike({ KEEL_CAPTURE_SAMPLE_RATE: '0.01' }) },
    });
    t.inference.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ KEEL_CAPTURE_SAMPLE_RATE: '1' }) },
    });
  });

  it('tell on-call of the pipelines and ask only the approvers (onCall, retrain.approval)', () => {
    const endpointsOf = (template: Template) =>
      Object.values(template.findResources('AWS::SNS::Subscription')).map((r) => [
        JSON.stringify(r.Properties.TopicArn),
        r.Properties.Endpoint,
      ]);
    const topics = Object.keys(t.pipelines.findResources('AWS::SNS::Topic'));
    const notificationsTopic = topics.find((id) => id.startsWith('Notifications'))!;
    const approvalsTopic = topics.find((id) => id.startsWith('Approvals'))!;
    // The pipelines' notices reach on-call's email through a subscription of the monitoring stack.
    const monitoring = endpointsOf(t.monitoring).filter(([, endpoint]) => endpoint === 'oncall@example.com');
    expect(monitoring).toHaveLength(2);
    expect(monitoring.map(([topic]) => topic)).toContainEqual(expect.stringContaining(notificationsTopic));
    // The approvals topic asks the approvers, and no one else.
    expect(endpointsOf(t.pipelines)).toEqual([
      [JSON.stringify({ Ref: approvalsTopic }), 'ml-leads@example.com'],
    ]);
  });

  it('page the on-call email and alarm at the configured thresholds (onCall, alarms)', () => {
    t.monitoring.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    expect(Object.keys(t.monitoring.findParameters('OnCallEmail'))).toEqual([]);
    t.monitoring.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: alarmName('prod', ALARM_IDS.apiLatency),
      Threshold: 500,
    });
    t.monitoring.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: alarmName('prod', ALARM_IDS.dataDriftWarn),
      Threshold: 0.15,
    });
    // The drift job classifies drift at the same thresholds.
    t.monitoring.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [KEEL_ENV.alarmOptions]: JSON.stringify(loadKeelConfig({ root: REPO_ROOT, stage: 'prod' }).alarms),
        }),
      },
    });
  });
});

describe('the stacks of config/dev.json', () => {
  let t: Templates;
  let findings: unknown[];
  beforeAll(() => {
    ({ templates: t, findings } = keelApp(loadKeelConfig({ root: REPO_ROOT, stage: 'dev' }), 'dev'));
  });

  it('pass cdk-nag, throw data away with the stack and keep the retrain schedule off', () => {
    expect(findings).toEqual([]);
    for (const type of ['AWS::S3::Bucket', 'AWS::DynamoDB::Table']) {
      for (const resource of Object.values(t.data.findResources(type))) {
        expect(resource.DeletionPolicy, type).toBe('Delete');
      }
    }
    t.data.allResourcesProperties('AWS::DynamoDB::Table', {
      DeletionProtectionEnabled: false,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true, RecoveryPeriodInDays: 7 },
    });
    t.pipelines.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 ? * SUN *)',
      State: 'DISABLED',
    });
    t.pipelines.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 2 * * ? *)',
      State: 'ENABLED',
    });
    t.inference.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 }),
      ]),
    });
    for (const template of [t.inference, t.pipelines, t.monitoring]) {
      template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 14 });
    }
    for (const template of [t.pipelines, t.monitoring]) {
      template.allResourcesProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 7 * 86_400 });
    }
  });
});

describe('the stacks of other settings', () => {
  it('serve from ECS with a SageMaker model, page a webhook, retrain on drift, under another model name', () => {
    const { templates: t, findings } = keelApp(
      parse({
        modelName: 'attrition',
        inference: { compute: 'ecs', model: 'sagemaker', sagemakerEndpoint: 'attrition-xgb' },
        onCall: { webhookUrl: 'https://hooks.example.com/keel' },
        retrain: { onDrift: true },
        schedules: { drift: { expression: 'rate(30 minutes)', enabled: false } },
      }),
    );
    expect(findings).toEqual([]);
    t.inference.resourceCountIs('AWS::ECS::Service', 1);
    t.inference.resourceCountIs('AWS::Lambda::Alias', 0);
    t.inference.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 'sagemaker:InvokeEndpoint' })]),
      },
    });
    t.monitoring.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'https',
      Endpoint: 'https://hooks.example.com/keel',
    });
    t.monitoring.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(30 minutes)',
      State: 'DISABLED',
    });
    // Retrain on drift: a rule on the data-drift page alarm's state change.
    t.monitoring.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ source: ['aws.cloudwatch'] }),
    });
    t.pipelines.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ KEEL_MODEL_NAME: 'attrition' }) },
    });
  });

  it('let the principals of api.crossAccountCallers invoke the API through its resource policy', () => {
    const { templates: t, findings } = keelApp(
      parse({ api: { crossAccountCallers: ['arn:aws:iam::444455556666:role/scorer'] } }),
    );
    expect(findings).toEqual([]);
    t.inference.hasResourceProperties('AWS::ApiGateway::RestApi', {
      Policy: {
        Statement: [
          Match.objectLike({
            Effect: 'Allow',
            Principal: { AWS: 'arn:aws:iam::444455556666:role/scorer' },
            Action: 'execute-api:Invoke',
          }),
        ],
      },
    });
  });
});
