import { describe, expect, it } from 'vitest';
import { FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import type { CaptureRecord } from '#shared/inference/capture.ts';
import { resolveMonitoringOptions } from '#shared/monitoring/alarm-options.ts';
import { QUALITY_METRICS } from '#shared/monitoring/metrics.ts';
import { createConsistencyCheck } from '#shared/quality/consistency.ts';
import { qualityMetricData, qualityWindow } from '#shared/quality/job.ts';
import { qualityNotice } from '#shared/quality/notice.ts';
import { compareWithOffline, createSkewSample } from '#shared/quality/skew.ts';
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
    sample.offer(record({ x: [1, 2] }));
    expect(sample.vectors()).toEqual([]);
    for (let i = 0; i < 100; i++) sample.offer(record({ customerId: `c-${i}` }));
    expect(sample.vectors()).toHaveLength(3);
    expect(new Set(sample.vectors().map((v) => v.customerId)).size).toBe(3);
    const recent = createSkewSample(3, Date.parse('2026-12-01T09:00:00.000Z'));
    recent.offer(record({ t: '2026-12-01T08:59:59.999Z' }));
    expect(recent.vectors()).toEqual([]);
    recent.offer(record({ t: '2026-12-01T09:00:00.000Z' }));
    expect(recent.vectors()).toHaveLength(1);
  });

  it('names the features that differ from the offline vector of the same record, most often first', () => {
    const served = [0, 1, 2, 3].map((i) => ({ customerId: `c-${i}`, eventTime: 'e', x }));
    const offline = new Map<string, Float32Array>();
    const same = Float32Array.from(x);
    offline.set('c-0\u0000e', same);
    const oneOff = Float32Array.from(x);
    oneOff[6] = 99;
    offline.set('c-1\u0000e', oneOff);
    const twoOff = Float32Array.from(x);
    twoOff[6] = 98;
    twoOff[0] = 1;
    offline.set('c-2\u0000e', twoOff);
    // c-3 has no offline row: not compared.
    expect(compareWithOffline(served, offline)).toEqual({
      sampled: 4,
      compared: 3,
      differing: 2,
      share: 2 / 3,
      features: [
        { name: FEATURE_SET.names[6], differing: 2 },
        { name: FEATURE_SET.names[0], differing: 1 },
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
