import { describe, expect, it } from 'vitest';
import { computeDrift, type DriftWindow } from '#shared/drift/compute.ts';
import { driftMetricData } from '#shared/drift/job.ts';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import { CATEGORICAL_FIELDS, FEATURE_SET } from '#shared/features/index.ts';
import { ALARM_IDS, alarmDefinitions, unseenCategoryAlarmId } from '#shared/monitoring/alarm-definitions.ts';
import { EmfKeyCollisionError, isEmfLine, parseEmf, toEmf } from '#shared/monitoring/emf.ts';
import {
  evaluateAlarm,
  evaluateComposite,
  evaluationRange,
  periodDatapoints,
} from '#shared/monitoring/evaluate.ts';
import { DRIFT_METRICS, KEEL_NAMESPACE, type MetricDatum } from '#shared/monitoring/metrics.ts';
import { buildBaseline } from '#shared/registry/baseline.ts';
import { generatedWindow } from '../../support/drift-windows.ts';

const T = 1_800_000_000_000;

describe('EMF', () => {
  const data: MetricDatum[] = [
    { metricName: 'MaxFeaturePsi', value: 0.3, unit: 'None', dimensions: { service: 'keel' } },
    {
      metricName: 'FeaturePsi',
      value: 0.3,
      unit: 'None',
      dimensions: { service: 'keel', Feature: 'income' },
    },
    { metricName: 'FeaturePsi', value: 0.01, unit: 'None', dimensions: { Feature: 'age', service: 'keel' } },
    { metricName: 'DriftWindowRows', value: 20000, unit: 'Count', dimensions: { service: 'keel' } },
  ];

  it('writes one document per dimension set and reads the same samples back', () => {
    const docs = toEmf(data, { namespace: 'Keel', timestamp: T, properties: { ModelVersion: 'v3' } });
    expect(docs).toHaveLength(3);
    expect(docs[0]).toEqual({
      ModelVersion: 'v3',
      _aws: {
        Timestamp: T,
        CloudWatchMetrics: [
          {
            Namespace: 'Keel',
            Dimensions: [['service']],
            Metrics: [
              { Name: 'MaxFeaturePsi', Unit: 'None' },
              { Name: 'DriftWindowRows', Unit: 'Count' },
            ],
          },
        ],
      },
      service: 'keel',
      MaxFeaturePsi: 0.3,
      DriftWindowRows: 20000,
    });
    const samples = docs.flatMap((doc) => parseEmf(JSON.stringify(doc)));
    expect(samples.map(({ metricName, value, dimensions }) => ({ metricName, value, dimensions }))).toEqual([
      { metricName: 'MaxFeaturePsi', value: 0.3, dimensions: { service: 'keel' } },
      { metricName: 'DriftWindowRows', value: 20000, dimensions: { service: 'keel' } },
      { metricName: 'FeaturePsi', value: 0.3, dimensions: { service: 'keel', Feature: 'income' } },
      { metricName: 'FeaturePsi', value: 0.01, dimensions: { Feature: 'age', service: 'keel' } },
    ]);
    expect(samples.every((s) => s.namespace === 'Keel' && s.timestamp === T)).toBe(true);
  });

  it('refuses a property that would overwrite a dimension or a value', () => {
    expect(() => toEmf(data, { namespace: 'Keel', timestamp: T, properties: { Feature: 'x' } })).toThrow(
      EmfKeyCollisionError,
    );
  });

  it('reads a Powertools line: every dimension set, array values, and skips what is not EMF', () => {
    const line = JSON.stringify({
      _aws: {
        Timestamp: T,
        CloudWatchMetrics: [
          {
            Namespace: 'Keel',
            Dimensions: [['service', 'ModelVersion'], ['service']],
            Metrics: [{ Name: 'Latency', Unit: 'Milliseconds' }],
          },
        ],
      },
      service: 'keel',
      ModelVersion: 'v3',
      Latency: [12, 30],
    });
    expect(parseEmf(line).map((s) => [s.dimensions, s.value])).toEqual([
      [{ service: 'keel', ModelVersion: 'v3' }, 12],
      [{ service: 'keel', ModelVersion: 'v3' }, 30],
      [{ service: 'keel' }, 12],
      [{ service: 'keel' }, 30],
    ]);
    expect(parseEmf('model loaded v3')).toEqual([]);
    expect(parseEmf('{"level":"INFO","message":"request"}')).toEqual([]);
    expect(parseEmf('[1,2]')).toEqual([]);
  });

  it('tells an EMF line from any other line, as CloudWatch Logs does, wherever _aws stands', () => {
    const emf = toEmf(
      [{ metricName: 'Latency', value: 3, unit: 'Milliseconds', dimensions: { service: 'keel' } }],
      {
        namespace: 'Keel',
        timestamp: T,
      },
    );
    for (const document of emf) expect(isEmfLine(JSON.stringify(document))).toBe(true);
    expect(
      isEmfLine(JSON.stringify({ ModelVersion: 'v3', _aws: { Timestamp: T, CloudWatchMetrics: [] } })),
    ).toBe(true);
    for (const line of [
      'model loaded v3',
      '{"level":"INFO","message":"the _aws key"}',
      '{"level":"INFO","message":"x","_aws":"not a directive"}',
      '{"_aws":{"Timestamp":1}}',
      '{"_aws": {"CloudWatchMetrics": [',
      '[{"_aws":{}}]',
    ]) {
      expect(isEmfLine(line), line).toBe(false);
    }
  });
});

describe('drift report → EMF lines → the same alarm definitions', () => {
  const reference = generatedWindow(20_000, 1);
  const baseline = buildBaseline(FEATURE_SET, reference.x, reference.rows, reference.scores, 0.5);
  const catalog = alarmDefinitions();
  const HOUR = 3_600_000;

  /** What the local evaluator will do: read the drift job's EMF lines and evaluate every drift alarm. */
  function alarmStates(window: DriftWindow) {
    const report = computeDrift(baseline, window, driftThresholds(), FEATURE_SET);
    const lines = toEmf(driftMetricData(report), { namespace: KEEL_NAMESPACE, timestamp: T - HOUR / 2 }).map(
      (doc) => JSON.stringify(doc),
    );
    const samples = lines.flatMap(parseEmf);
    const states = Object.fromEntries(
      catalog.alarms
        .filter((alarm) => alarm.source === 'emf')
        .map((alarm) => {
          const datapoints = periodDatapoints(alarm, samples, { end: T, periods: evaluationRange(alarm) });
          return [alarm.id, evaluateAlarm(alarm, datapoints)];
        }),
    );
    return { report, states, page: evaluateComposite(catalog.page, states) };
  }

  it('pages on a drifted income, as the report says', () => {
    const { report, states, page } = alarmStates(generatedWindow(20_000, 2, { drift: { income: 1.9 } }));
    expect(report.summary.status).toBe('page');
    expect(states[ALARM_IDS.dataDriftWarn]).toBe('ALARM');
    expect(states[ALARM_IDS.dataDriftPage]).toBe('ALARM');
    expect(states[ALARM_IDS.scoreDrift]).toBe('OK');
    expect(states[ALARM_IDS.positiveRateDrift]).toBe('OK');
    // No request metrics in these lines: the API alarms have nothing to say.
    expect(states[ALARM_IDS.predictLatency]).toBe('OK');
    expect(page).toBe('ALARM');
  });

  it('pages on prediction drift when the population shifts', () => {
    const { report, states } = alarmStates(generatedWindow(20_000, 2, { drift: { support_tickets_90d: 3 } }));
    expect(report.prediction.status).toBe('page');
    expect(states[ALARM_IDS.scoreDrift]).toBe('ALARM');
    expect(states[ALARM_IDS.positiveRateDrift]).toBe('ALARM');
  });

  it('stays OK without drift', () => {
    const { states, page } = alarmStates(generatedWindow(20_000, 2));
    // The ETL's and the quality job's alarms hear nothing from the drift job's lines: without a run
    // they have no state yet.
    const etl = [
      ALARM_IDS.etlSchemaChange,
      ...CATEGORICAL_FIELDS.map(unseenCategoryAlarmId),
      ALARM_IDS.qualityAucDrop,
      ALARM_IDS.predictionConsistency,
      ALARM_IDS.featureSkew,
    ];
    expect(etl.map((id) => states[id])).toEqual(etl.map(() => 'INSUFFICIENT_DATA'));
    for (const id of etl) delete states[id];
    expect(Object.values(states).every((s) => s === 'OK')).toBe(true);
    expect(page).toBe('OK');
  });

  it('publishes no PSI for an insufficient window, so the drift alarms keep their state', () => {
    const report = computeDrift(baseline, generatedWindow(10, 2), driftThresholds(), FEATURE_SET);
    const names = driftMetricData(report).map((d) => d.metricName);
    expect(names).toEqual([
      DRIFT_METRICS.warnedFeatures,
      DRIFT_METRICS.pagedFeatures,
      DRIFT_METRICS.windowRows,
      DRIFT_METRICS.nonFiniteValues,
    ]);
    const alarm = catalog.alarms.find((a) => a.id === ALARM_IDS.dataDriftPage)!;
    expect(evaluateAlarm(alarm, [null, null, null], 'ALARM')).toBe('ALARM');
  });
});
