import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_COUNT, FEATURE_SET, type FeatureSet, type LabeledRecord } from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { resolveMonitoringOptions } from '#shared/monitoring/alarm-options.ts';
import { QUALITY_METRICS } from '#shared/monitoring/metrics.ts';
import { offlineDatasetHeader, offlineRow } from '#shared/offline/features-dataset.ts';
import { createConsistencyCheck } from '#shared/quality/consistency.ts';
import { qualityMetricData, qualityWindow } from '#shared/quality/job.ts';
import { qualityNotice } from '#shared/quality/notice.ts';
import { compareWithOffline, createSkewSample } from '#shared/quality/skew.ts';
import { LOGINS_SET, TICKETS_LOG_SET } from '../../support/other-definition.ts';
import { qualityReportFixture } from '../../support/quality-report.ts';

const x = Array.from({ length: FEATURE_COUNT }, (_, i) => i + 0.5);
const record = (over: Partial<CaptureRecord>): CaptureRecord => ({
  t: '2026-12-01T10:00:00.000Z',
  source: 'api',
  requestId: 'r',
  customerId: 'c-000001',
  model: 'churn',
  version: 'v1',
  probability: 0.4,
  prediction: 0,
  x,
  eventTime: '2026-11-30T00:00:00.000Z',
  ...over,
});
const options = resolveMonitoringOptions({}).quality;

describe('batch/real-time consistency', () => {
  it('pairs the API answers with the batch answer of the same version, customer and record', () => {
    const check = createConsistencyCheck();
    check.add(record({ source: 'batch', probability: 0.4, prediction: 0 }));
    check.add(record({ probability: 0.4, prediction: 0 }));
    check.add(record({ probability: 0.55, prediction: 1 }));
    // Another record of the same customer, another version, attributes (no event time), a shadow: unpaired.
    check.add(record({ eventTime: '2026-11-29T00:00:00.000Z', prediction: 1 }));
    check.add(record({ version: 'v2', prediction: 1 }));
    check.add(record({ eventTime: undefined, prediction: 1 }));
    check.add(record({ variant: 'shadow', prediction: 1 }));
    expect(check.figures()).toEqual({
      pairs: 2,
      identicalDecisions: 1,
      share: 0.5,
      maxScoreDifference: 0.55 - 0.4,
    });
  });

  it('has no share without pairs', () => {
    const check = createConsistencyCheck();
    check.add(record({}));
    expect(check.figures()).toEqual({
      pairs: 0,
      identicalDecisions: 0,
      share: null,
      maxScoreDifference: null,
    });
  });
});

describe('training/serving skew', () => {
  it('samples real-time answers from a stored record only, at most the sample size', () => {
    const sample = createSkewSample(3);
    sample.offer(record({ source: 'batch' }));
    sample.offer(record({ eventTime: undefined }));
    sample.offer(record({ variant: 'shadow' }));
    expect(sample.vectors()).toEqual([]);
    for (let i = 0; i < 100; i++) sample.offer(record({ customerId: `c-${i}` }));
    expect(sample.vectors()).toHaveLength(3);
    expect(new Set(sample.vectors().map((v) => v.customerId)).size).toBe(3);
    const recent = createSkewSample(3, Date.parse('2026-12-01T09:00:00.000Z'));
    recent.offer(record({ t: '2026-12-01T08:59:59.999Z' }));
    expect(recent.vectors()).toEqual([]);
    recent.offer(record({ t: '2026-12-01T09:00:00.000Z' }));
    expect(recent.vectors()).toEqual([
      { customerId: 'c-000001', eventTime: '2026-11-30T00:00:00.000Z', version: 'v1', x },
    ]);
  });

  it('names the features that differ from the offline record of the same record, most often first', () => {
    const customers = [...generateRecords({ rows: 5, seed: 3, asOf: new Date('2026-11-30T00:00:00Z') })];
    const columns = offlineDatasetHeader(true).split(',');
    const offline = new Map(
      customers
        .slice(0, 4)
        .map((r) => [
          `${r.customer_id}\u0000${r.event_time}`,
          { source: 's3://features/part-00000.csv', columns, cells: offlineRow(r, true).split(',') },
        ]),
    );
    const servedBy = (set: FeatureSet, r: LabeledRecord, edit: (x: Float32Array) => void = () => {}) => {
      const vector = new Float32Array(set.count);
      set.encodeInto(r, vector, 0);
      edit(vector);
      return { customerId: r.customer_id, eventTime: r.event_time, x: Array.from(vector) };
    };
    const [a, b, c, d, e] = customers as [
      LabeledRecord,
      LabeledRecord,
      LabeledRecord,
      LabeledRecord,
      LabeledRecord,
    ];
    const served = [
      { ...servedBy(FEATURE_SET, a), version: 'v1' },
      { ...servedBy(FEATURE_SET, b, (v) => (v[6] = 99)), version: 'v1' },
      {
        ...servedBy(FEATURE_SET, c, (v) => {
          v[6] = 98;
          v[0] = 1;
        }),
        version: 'v1',
      },
      // A version of another definition: recomputed with its own features (and one of them differs).
      {
        ...servedBy(TICKETS_LOG_SET, d, (v) => (v[TICKETS_LOG_SET.index('log_tickets')] = 7)),
        version: 'v2',
      },
      { ...servedBy(TICKETS_LOG_SET, a), version: 'v2' },
      // Not compared: no offline record; a version requiring a field the part lacks; an unknown version.
      { ...servedBy(FEATURE_SET, e), version: 'v1' },
      { ...servedBy(FEATURE_SET, a), x: [40, 3], version: 'v3' },
      { ...servedBy(FEATURE_SET, a), version: 'v9' },
    ];
    const sets: Record<string, FeatureSet> = { v1: FEATURE_SET, v2: TICKETS_LOG_SET, v3: LOGINS_SET };
    expect(compareWithOffline(served, offline, (version) => sets[version])).toEqual({
      sampled: 8,
      compared: 5,
      differing: 3,
      share: 3 / 5,
      features: [
        { name: FEATURE_SET.names[6], differing: 2 },
        { name: FEATURE_SET.names[0], differing: 1 },
        { name: 'log_tickets', differing: 1 },
      ],
    });
  });
});

describe('the quality window', () => {
  it('defaults to the configured days before now and refuses a bad one, naming the field', () => {
    const now = new Date('2026-12-06T05:00:00.000Z');
    expect(qualityWindow({}, now, 30)).toEqual({ from: new Date('2026-11-06T05:00:00.000Z'), to: now });
    expect(() => qualityWindow({ from: 'yesterday' }, now, 30)).toThrow(/quality window is invalid/);
    expect(() => qualityWindow({ from: now.toISOString(), to: now.toISOString() }, now, 30)).toThrow(
      expect.objectContaining({ details: [{ path: 'from', message: 'must be before to' }] }),
    );
  });
});

describe('what a quality run publishes and sends', () => {
  it('publishes per version what it has and the largest shortfall for the alarm, never a made-up value', () => {
    const report = qualityReportFixture();
    const data = qualityMetricData(report);
    const named = (name: string) => data.filter((d) => d.metricName === name);
    const shortfalls = report.versions.flatMap((v) => (v.aucShortfall === null ? [] : [v.aucShortfall]));
    expect(named(QUALITY_METRICS.aucShortfall)).toEqual([
      {
        metricName: QUALITY_METRICS.aucShortfall,
        value: Math.max(...shortfalls),
        unit: 'None',
        dimensions: { service: 'keel' },
      },
    ]);
    for (const v of report.versions) {
      const realized = named(QUALITY_METRICS.realizedAuc).filter(
        (d) => d.dimensions.ModelVersion === v.version,
      );
      expect(realized.map((d) => d.value)).toEqual(v.realized?.auc == null ? [] : [v.realized.auc]);
    }
    // No pairs: no consistency datapoint (the alarm keeps its state).
    expect(named(QUALITY_METRICS.consistency)).toEqual([]);
    expect(named(QUALITY_METRICS.skew).map((d) => d.value)).toEqual([100 * report.skew.share!]);
  });

  it('pages naming the version whose AUC fell past the alarm, and is quiet otherwise', () => {
    const report = qualityReportFixture();
    const fallen = report.versions.find((v) => (v.aucShortfall ?? 0) > options.aucDrop)!;
    const notice = qualityNotice(report, options, 's3://outputs/quality-reports/x.json')!;
    expect(notice.subject).toMatch(new RegExp(`${fallen.version} AUC `));
    expect(notice.subject.length).toBeLessThan(100);
    expect(notice.message).toMatchObject({
      kind: 'quality',
      status: 'page',
      versions: [{ version: fallen.version, shortfall: fallen.aucShortfall }],
      report: 's3://outputs/quality-reports/x.json',
    });
    const calm = {
      ...report,
      versions: report.versions.map((v) => ({ ...v, aucShortfall: 0 })),
      skew: { ...report.skew, share: 0, differing: 0, features: [] },
    };
    expect(qualityNotice(calm, options, 's3://x')).toBeUndefined();
  });
});
