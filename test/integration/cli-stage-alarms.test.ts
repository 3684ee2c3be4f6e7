import { CloudWatchClient, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageAlarmsSnapshot } from '#cli/stage/alarms.ts';
import { ALARM_IDS, alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import { alarmName } from '#shared/monitoring/cloudwatch-alarms.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import { startMoto } from '../support/aws.ts';
import { runKeel } from '../support/cli.ts';
import {
  putStageAlarms,
  STAGE_REGION as REGION,
  STAGE,
  STAGE_CREDENTIALS,
  stageClientConfig,
} from '../support/stage.ts';

/**
 * `keel --stage NAME alarms` against a stage's CloudWatch alarms, played by moto_server: the alarms are
 * put from the same catalog definitions the monitoring stack deploys, one is set to ALARM, and the CLI
 * reads them back in the local `keel alarms` shape. moto 5.2 implements PutMetricAlarm, DescribeAlarms
 * and SetAlarmState but not PutCompositeAlarm or DescribeAlarmHistory: the composite is left out here,
 * and the history's absence is what the CLI must survive (states shown, the reason on stderr). The
 * parsing of real history items is tested in test/unit/monitoring/stage-alarms.test.ts. The stage is
 * served by ECS: no predict Lambda's errors and throttles, no API Gateway latency alarm.
 */
const catalog = alarmDefinitions(
  {},
  {
    functions: [{ id: 'drift', name: 'keel-it-drift' }],
    stateMachines: Object.keys(PIPELINES).map((id) => ({ id, arn: `arn:aws:states:${REGION}:1:sm:${id}` })),
    queues: [{ id: 'schedules', name: 'keel-it-schedules-dlq' }],
  },
);

const REASON =
  'Threshold Crossed: 1 datapoint [0.31 (24/11/26 22:00:00)] was greater than or equal to the threshold (0.25).';

let moto: Awaited<ReturnType<typeof startMoto>>;
let env: Record<string, string>;

beforeAll(async () => {
  moto = await startMoto();
  const endpoint = moto.target.endpoints!.s3;
  await putStageAlarms(endpoint, catalog.alarms);
  const cloudwatch = new CloudWatchClient(stageClientConfig(endpoint));
  try {
    await cloudwatch.send(
      new SetAlarmStateCommand({
        AlarmName: alarmName(STAGE, ALARM_IDS.dataDriftPage),
        StateValue: 'ALARM',
        StateReason: REASON,
        StateReasonData: JSON.stringify({ version: '1.0', recentDatapoints: [0.31], threshold: 0.25 }),
      }),
    );
  } finally {
    cloudwatch.destroy();
  }
  env = {
    AWS_REGION: REGION,
    ...STAGE_CREDENTIALS,
    AWS_ENDPOINT_URL_CLOUDWATCH: endpoint,
  };
}, 60_000);

afterAll(() => {
  moto?.process.kill('SIGTERM');
});

describe('keel --stage NAME alarms', () => {
  it('lists the stage’s alarms from CloudWatch in catalog order, with states, conditions and reasons', async () => {
    const result = await runKeel(['--stage', STAGE, '--json', 'alarms', '--limit', '5'], env);
    expect(result.stderr).toMatch(/state-change history not read: CloudWatch DescribeAlarmHistory failed/);
    expect(result.code).toBe(0);
    const snapshot = JSON.parse(result.stdout) as StageAlarmsSnapshot;
    expect(snapshot).toMatchObject({ stage: STAGE, region: REGION });
    expect(snapshot.alarms.map((a) => a.id)).toEqual(catalog.alarms.map((a) => a.id));

    const byId = new Map(snapshot.alarms.map((a) => [a.id, a]));
    const drift = byId.get(ALARM_IDS.dataDriftPage)!;
    expect(drift).toMatchObject({
      name: 'keel-it-data-drift-page',
      severity: 'page',
      state: 'ALARM',
      reason: REASON,
      lastValue: 0.31,
      metric: 'Keel MaxFeaturePsi Maximum',
      condition: '>= 0.25 (1 of 1 × 3600 s)',
      history: null,
    });
    expect(drift.runbook).toMatch(/^The drift job.s notice on this topic names the features/);
    expect(Date.parse(drift.since!)).toBeGreaterThan(Date.now() - 120_000);
    for (const alarm of snapshot.alarms.filter((a) => a.id !== ALARM_IDS.dataDriftPage)) {
      expect(alarm.state, alarm.id).toBe('OK');
    }
    // Metric math and extended statistics read back as the local loop writes them.
    expect(byId.get(ALARM_IDS.positiveRateDrift)!.metric).toBe(
      '|PositiveRateDelta| (points) = MAX([ABS(high), ABS(low)])',
    );
    expect(byId.get(ALARM_IDS.predictLatency)).toMatchObject({
      metric: 'Keel Latency p99',
      condition: '>= 1000 (3 of 5 × 60 s)',
      severity: 'page',
    });
    expect(byId.get('lambda-errors-drift')!.severity).toBe('warn');
  });

  it('prints the table of the local command, the reason under an alarm in ALARM', async () => {
    const result = await runKeel(['--stage', STAGE, 'alarms'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^alarms of stage it in us-east-1 \(CloudWatch\), read \S+Z\n/);
    expect(result.stdout).toMatch(
      /\n {2}keel-it-data-drift-page +ALARM +\[page\] since \S+ {2}>= 0\.25 \(1 of 1 × 3600 s\) {2}last 0\.31\n {6}Threshold Crossed: /,
    );
    expect(result.stdout).toMatch(/\n {2}keel-it-dlq-depth-schedules +OK +\[warn\] since /);
    // After the table, where a reader sees it (the JSON run has it on stderr).
    expect(result.stdout).toMatch(
      /\nstate-change history not read: CloudWatch DescribeAlarmHistory failed: [^\n]*\n$/,
    );
  });

  it('names the stage and region when the stage has no alarms', async () => {
    const result = await runKeel(['--stage', 'nope', '--region', 'eu-west-1', 'alarms'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'keel: stage nope has no Keel alarms in eu-west-1: deploy its monitoring stack (Keel-nope-Monitoring) ' +
        'or pass the --region (and --profile) it was deployed with\n',
    );
  });

  it('refuses --evaluate: CloudWatch evaluates a stage’s alarms itself', async () => {
    const result = await runKeel(['--stage', STAGE, 'alarms', '--evaluate'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/CloudWatch evaluates a deployed stage’s alarms itself.*drop --evaluate/);
  });
});
