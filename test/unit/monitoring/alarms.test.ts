import { describe, expect, it } from 'vitest';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import type { AlarmDefinition } from '#shared/monitoring/alarm-catalog.ts';
import { ALARM_IDS, alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import {
  MonitoringOptionsError,
  type MonitoringOptionsInput,
  resolveMonitoringOptions,
} from '#shared/monitoring/alarm-options.ts';
import {
  alarmDescription,
  alarmName,
  renderAlarmRule,
  renderExpression,
} from '#shared/monitoring/cloudwatch-alarms.ts';

const resources = {
  api: { name: 'keel-dev-api', stage: 'prod' },
  functions: [
    { id: 'predict', name: 'keel-dev-predict', severity: 'page' as const },
    { id: 'drift', name: 'keel-dev-drift' },
  ],
  stateMachines: [{ id: 'batch', arn: 'arn:aws:states:us-east-1:123456789012:stateMachine:keel-dev-batch' }],
  queues: [{ id: 'batch-dlq', name: 'keel-dev-batch-dlq' }],
};
const catalog = alarmDefinitions({}, resources);
const byId = (id: string): AlarmDefinition => {
  const alarm = catalog.alarms.find((a) => a.id === id);
  if (!alarm) throw new Error(`no alarm ${id}`);
  return alarm;
};

describe('alarm definitions', () => {
  it('declares drift alarms on the drift job metrics, with the default thresholds', () => {
    expect(byId(ALARM_IDS.dataDriftWarn)).toMatchObject({
      severity: 'warn',
      source: 'emf',
      metric: {
        kind: 'metric',
        metric: {
          namespace: 'Keel',
          metricName: 'MaxFeaturePsi',
          dimensions: { service: 'keel' },
          statistic: 'Maximum',
        },
      },
      periodSeconds: 3600,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: 0.2,
      treatMissingData: 'ignore',
    });
    expect(byId(ALARM_IDS.dataDriftPage)).toMatchObject({ severity: 'page', threshold: 0.25 });
    expect(byId(ALARM_IDS.scoreDrift)).toMatchObject({
      severity: 'page',
      threshold: 0.2,
      metric: { kind: 'metric', metric: { metricName: 'ScorePsi' } },
    });
    const rate = byId(ALARM_IDS.positiveRateDrift);
    expect(rate).toMatchObject({ severity: 'page', threshold: 10 });
    expect(rate.metric.kind === 'math' && renderExpression(rate.metric.expression)).toBe(
      'MAX([ABS(high), ABS(low)])',
    );
  });

  it('declares latency p99 from both sources: the handler EMF and API Gateway', () => {
    expect(byId(ALARM_IDS.predictLatency)).toMatchObject({
      source: 'emf',
      severity: 'page',
      metric: { kind: 'metric', metric: { namespace: 'Keel', metricName: 'Latency', statistic: 'p99' } },
      threshold: 1000,
      periodSeconds: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: 'notBreaching',
    });
    expect(byId(ALARM_IDS.apiLatency)).toMatchObject({
      source: 'aws',
      metric: {
        kind: 'metric',
        metric: {
          namespace: 'AWS/ApiGateway',
          metricName: 'Latency',
          dimensions: { ApiName: 'keel-dev-api', Stage: 'prod' },
          statistic: 'p99',
        },
      },
      threshold: 1000,
    });
    expect(alarmDefinitions().alarms.some((a) => a.id === ALARM_IDS.apiLatency)).toBe(false);
  });

  it('declares the 5xx rate as metric math over the handler response counts', () => {
    const alarm = byId(ALARM_IDS.predictServerErrors);
    expect(alarm).toMatchObject({ source: 'emf', severity: 'page', threshold: 5 });
    if (alarm.metric.kind !== 'math') throw new Error('expected math');
    expect(
      Object.fromEntries(Object.entries(alarm.metric.metrics).map(([id, m]) => [id, m.metricName])),
    ).toEqual({
      ok: 'Http2xx',
      client: 'Http4xx',
      server: 'Http5xx',
    });
    expect(renderExpression(alarm.metric.expression)).toBe(
      'IF((((FILL(ok, 0) + FILL(client, 0)) + FILL(server, 0)) >= 20), ' +
        '((100 * FILL(server, 0)) / ((FILL(ok, 0) + FILL(client, 0)) + FILL(server, 0))), 0)',
    );
  });

  it('declares Lambda, Step Functions and DLQ alarms per monitored resource', () => {
    expect(byId('lambda-errors-predict')).toMatchObject({
      source: 'aws',
      severity: 'page',
      metric: {
        kind: 'metric',
        metric: {
          namespace: 'AWS/Lambda',
          metricName: 'Errors',
          dimensions: { FunctionName: 'keel-dev-predict' },
          statistic: 'Sum',
        },
      },
      threshold: 1,
      treatMissingData: 'notBreaching',
    });
    expect(byId('lambda-throttles-drift')).toMatchObject({
      severity: 'warn',
      metric: { kind: 'metric', metric: { metricName: 'Throttles' } },
    });
    expect(byId('state-machine-failures-batch')).toMatchObject({
      metric: {
        kind: 'metric',
        metric: {
          namespace: 'AWS/States',
          metricName: 'ExecutionsFailed',
          dimensions: { StateMachineArn: resources.stateMachines[0]!.arn },
        },
      },
    });
    // Timed-out and stopped runs never reach a failure path and are not in ExecutionsFailed: each alarms.
    for (const [prefix, metricName] of [
      ['state-machine-timeouts-', 'ExecutionsTimedOut'],
      ['state-machine-aborts-', 'ExecutionsAborted'],
    ]) {
      for (const sm of resources.stateMachines) {
        expect(byId(`${prefix}${sm.id}`)).toMatchObject({
          source: 'aws',
          severity: 'warn',
          metric: {
            kind: 'metric',
            metric: {
              namespace: 'AWS/States',
              metricName,
              dimensions: { StateMachineArn: sm.arn },
              statistic: 'Sum',
            },
          },
          comparisonOperator: 'GreaterThanOrEqualToThreshold',
          threshold: 1,
          treatMissingData: 'notBreaching',
        });
      }
    }
    expect(byId('dlq-depth-batch-dlq')).toMatchObject({
      metric: {
        kind: 'metric',
        metric: {
          namespace: 'AWS/SQS',
          metricName: 'ApproximateNumberOfMessagesVisible',
          dimensions: { QueueName: 'keel-dev-batch-dlq' },
          statistic: 'Maximum',
        },
      },
    });
  });

  it('pages through one composite over exactly the paging alarms', () => {
    const paging = catalog.alarms.filter((a) => a.severity === 'page').map((a) => a.id);
    expect(catalog.page.anyOf).toEqual(paging);
    expect(paging).toEqual([
      'data-drift-page',
      'prediction-drift-score-psi',
      'prediction-drift-positive-rate',
      'predict-latency-p99',
      'api-latency-p99',
      'predict-5xx-rate',
      'quality-auc-drop',
      'lambda-errors-predict',
      'lambda-throttles-predict',
    ]);
    expect(
      renderAlarmRule({ ...catalog.page, anyOf: paging.slice(0, 2) }, (id) => alarmName('dev', id)),
    ).toBe('ALARM("keel-dev-data-drift-page") OR ALARM("keel-dev-prediction-drift-score-psi")');
  });

  it('keeps every definition within CloudWatch limits', () => {
    const ids = catalog.alarms.map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const alarm of catalog.alarms) {
      expect(alarm.datapointsToAlarm).toBeLessThanOrEqual(alarm.evaluationPeriods);
      expect(alarmDescription(alarm).length).toBeLessThanOrEqual(1024);
      if (alarm.metric.kind === 'math') {
        const metricIds = Object.keys(alarm.metric.metrics);
        expect(metricIds.length).toBeLessThanOrEqual(10);
        for (const id of metricIds) expect(id).toMatch(/^[a-z][a-zA-Z0-9_]*$/);
      }
    }
    expect(alarmName('dev', 'page')).toBe('keel-dev-page');
    expect(() => alarmName('Prod!', 'page')).toThrow(/stage "Prod!" is invalid/);
  });
});

describe('monitoring options', () => {
  const issueKeys = (input: unknown, what: 'options' | 'resources' = 'options') => {
    try {
      if (what === 'options') alarmDefinitions(input as MonitoringOptionsInput);
      else alarmDefinitions({}, input as never);
    } catch (error) {
      expect(error).toBeInstanceOf(MonitoringOptionsError);
      return (error as MonitoringOptionsError).issues.map((i) => i.key);
    }
    return [];
  };

  it('flows overrides into the definitions and the drift thresholds', () => {
    const options = {
      service: 'keel-predict',
      drift: {
        featurePsiWarn: 0.1,
        featurePsiPage: 0.3,
        positiveRateDeltaPoints: 5,
        minRows: 50,
        periodSeconds: 900,
      },
      latency: { p99Ms: 250 },
    };
    const custom = alarmDefinitions(options);
    expect(custom.alarms.find((a) => a.id === ALARM_IDS.dataDriftPage)).toMatchObject({
      threshold: 0.3,
      periodSeconds: 900,
      metric: { kind: 'metric', metric: { dimensions: { service: 'keel-predict' } } },
    });
    expect(custom.alarms.find((a) => a.id === ALARM_IDS.predictLatency)?.threshold).toBe(250);
    expect(driftThresholds(options)).toEqual({
      featurePsi: { warn: 0.1, page: 0.3 },
      scorePsi: { threshold: 0.2, severity: 'page' },
      positiveRateDeltaPoints: { threshold: 5, severity: 'page' },
      minRows: 50,
    });
  });

  it('names the key of every invalid option', () => {
    expect(issueKeys({ drift: { featurePsiPage: -1 } })).toEqual(['drift.featurePsiPage']);
    expect(issueKeys({ latency: { periodSeconds: 45 } })).toEqual(['latency.periodSeconds']);
    expect(issueKeys({ serverErrors: { ratePercent: 150, minRequests: 0.5 } })).toEqual([
      'serverErrors.ratePercent',
      'serverErrors.minRequests',
    ]);
    expect(issueKeys({ latency: { evaluationPeriods: 2, datapointsToAlarm: 3 } })).toEqual([
      'latency.datapointsToAlarm',
    ]);
    expect(issueKeys({ lambda: { periodSeconds: 3600, evaluationPeriods: 25 } })).toEqual([
      'lambda.evaluationPeriods',
    ]);
    expect(issueKeys({ drift: { featurePsiWarn: 0.3, featurePsiPage: 0.2 } })).toEqual([
      'drift.featurePsiPage',
    ]);
    expect(issueKeys({ drift: { featurePsi: 0.2 }, latencyMs: 5 })).toEqual([
      'drift.featurePsi',
      'latencyMs',
    ]);
    expect(() => resolveMonitoringOptions({ drift: { featurePsi: 0.2 } } as never)).toThrow(
      'invalid monitoring options: drift.featurePsi: unknown option',
    );
    expect(() => resolveMonitoringOptions({ drift: { scorePsi: 'high' } } as never)).toThrow(
      /drift\.scorePsi: /,
    );
  });

  it('names the key of invalid resources', () => {
    expect(issueKeys({ functions: [{ id: 'Predict', name: 'x' }] }, 'resources')).toEqual(['functions.0.id']);
    expect(issueKeys({ queues: [{ id: 'dlq', name: '' }] }, 'resources')).toEqual(['queues.0.name']);
    expect(
      issueKeys(
        {
          functions: [
            { id: 'predict', name: 'a' },
            { id: 'predict', name: 'b' },
          ],
        },
        'resources',
      ),
    ).toEqual(['functions.1.id']);
  });
});
