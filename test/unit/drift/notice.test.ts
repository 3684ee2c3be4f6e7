import { describe, expect, it } from 'vitest';
import { computeDrift } from '#shared/drift/compute.ts';
import { driftNotice } from '#shared/drift/notice.ts';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import { buildBaseline } from '#shared/registry/baseline.ts';
import { generatedWindow } from '../../support/drift-windows.ts';

const baselineWindow = generatedWindow(20_000, 1);
const baseline = buildBaseline(
  FEATURE_SET,
  baselineWindow.x,
  baselineWindow.rows,
  baselineWindow.scores,
  0.5,
);
const run = {
  model: { name: 'churn', version: 'v7' },
  window: { from: '2026-12-06T01:00:00.000Z', to: '2026-12-06T02:00:00.000Z' },
  report: 's3://outputs/drift-reports/model=churn/version=v7/x.json',
};

describe('driftNotice', () => {
  it('names the features that moved with their PSI, the window, the model version and the report', () => {
    const report = computeDrift(
      baseline,
      generatedWindow(20_000, 2, { drift: { income: 1.9 } }),
      driftThresholds(),
      FEATURE_SET,
    );
    const notice = driftNotice(report, run)!;
    expect(notice.message).toMatchObject({
      kind: 'drift',
      status: 'page',
      model: run.model,
      window: run.window,
      report: run.report,
    });
    const names = notice.message.features.map((f) => f.feature);
    expect(names).toContain('income');
    const psis = notice.message.features.map((f) => f.psi);
    expect(psis).toEqual([...psis].sort((a, b) => b - a));
    const income = notice.message.features.find((f) => f.feature === 'income')!;
    expect(notice.message.summary).toContain(`income PSI ${income.psi.toFixed(2)}`);
    expect(notice.message.summary).toContain('in 2026-12-06T01:00:00.000Z – 2026-12-06T02:00:00.000Z');
    expect(notice.subject).toMatch(/^Keel churn: data drift \(page\): /);
    expect(notice.subject.length).toBeLessThan(100);
    expect(notice.subject).toMatch(/^[\x20-\x7e]+$/);
  });

  it('names the model version and the size of a prediction move', () => {
    // Tenure cut to a fifth: the scores move though, at these feature thresholds, no input pages.
    const report = computeDrift(
      baseline,
      generatedWindow(20_000, 3, { drift: { tenure_months: 0.2 } }),
      driftThresholds({ drift: { featurePsiWarn: 50, featurePsiPage: 60 } }),
      FEATURE_SET,
    );
    const notice = driftNotice(report, run)!;
    expect(notice.message.features).toEqual([]);
    expect(notice.message.prediction).toEqual({
      status: 'page',
      scorePsi: report.prediction.scorePsi,
      positiveRateDeltaPoints: report.prediction.positiveRateDelta,
    });
    expect(notice.subject).toBe(
      `Keel churn: prediction drift (page) of v7: score PSI ${report.prediction.scorePsi!.toFixed(2)}, positive rate +${report.prediction.positiveRateDelta!.toFixed(1)} points`,
    );
  });

  it('sends nothing when nothing moved', () => {
    expect(
      driftNotice(computeDrift(baseline, generatedWindow(20_000, 2), driftThresholds(), FEATURE_SET), run),
    ).toBeUndefined();
  });
});
