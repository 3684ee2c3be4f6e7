import { describe, expect, it } from 'vitest';
import { computeDrift, DriftInputError, type DriftReport, type FeatureDrift } from '#shared/drift/compute.ts';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import { FEATURE_COUNT, FEATURE_SET, featureIndex } from '#shared/features/index.ts';
import { type Baseline, buildBaseline, UNSEEN } from '#shared/registry/baseline.ts';
import { generatedWindow } from '../../support/drift-windows.ts';

const ROWS = 20_000;
const thresholds = driftThresholds();
const reference = generatedWindow(ROWS, 1);
const baseline = buildBaseline(FEATURE_SET, reference.x, reference.rows, reference.scores, 0.5);

const nameOf = (f: FeatureDrift) => (f.kind === 'numeric' ? f.feature : f.field);
const statusOf = (report: DriftReport, name: string) =>
  report.features.find((f) => nameOf(f) === name)!.status;
const UNRELATED = [
  'age',
  'tenure_months',
  'orders',
  'support_tickets_90d',
  'days_since_last_order',
  'plan',
  'region',
];

/** Every number in the report, however deep: none may be NaN or infinite. */
function numbersIn(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (value === null || typeof value !== 'object') return [];
  return Object.values(value).flatMap(numbersIn);
}

describe('computeDrift on generated customers', () => {
  it('uses the thresholds of the alarm definitions', () => {
    expect(thresholds).toEqual({
      featurePsi: { warn: 0.2, page: 0.25 },
      scorePsi: { threshold: 0.2, severity: 'page' },
      positiveRateDeltaPoints: { threshold: 10, severity: 'page' },
      minRows: 500,
    });
  });

  it('finds nothing between two samples of the same population', () => {
    const report = computeDrift(baseline, generatedWindow(ROWS, 2), thresholds, FEATURE_SET);
    expect(report.features.map(nameOf)).toEqual([
      ...baseline.numeric.map((n) => n.feature),
      'plan',
      'region',
    ]);
    expect(report.features.every((f) => f.status === 'ok')).toBe(true);
    expect(report.summary).toMatchObject({ warned: 0, paged: 0, insufficient: 0, status: 'ok' });
    expect(report.summary.maxPsi).toBeLessThan(0.01);
    expect(report.prediction.status).toBe('ok');
    expect(Math.abs(report.prediction.positiveRateDelta!)).toBeLessThan(2);
    expect(report.status).toBe('ok');
  });

  it('pages on income (and log_income) when income is multiplied by 1.9, and leaves the rest alone', () => {
    const report = computeDrift(
      baseline,
      generatedWindow(ROWS, 2, { drift: { income: 1.9 } }),
      thresholds,
      FEATURE_SET,
    );
    expect(statusOf(report, 'income')).toBe('page');
    expect(statusOf(report, 'log_income')).toBe('page');
    for (const name of UNRELATED) expect(statusOf(report, name), name).toBe('ok');
    expect(report.summary.maxPsi).toBeGreaterThan(1);
    expect(['income', 'log_income']).toContain(report.summary.maxPsiFeature);
    expect(report.summary.paged).toBeGreaterThanOrEqual(2);
    // The scorer reads tickets and tenure only: its scores do not move.
    expect(report.prediction.status).toBe('ok');
    expect(report.status).toBe('page');
  });

  it('detects prediction drift when the population shifts on what the model reads', () => {
    const tickets = computeDrift(
      baseline,
      generatedWindow(ROWS, 2, { drift: { support_tickets_90d: 3 } }),
      thresholds,
      FEATURE_SET,
    );
    expect(statusOf(tickets, 'support_tickets_90d')).toBe('page');
    expect(tickets.prediction.positiveRateDelta).toBeGreaterThanOrEqual(10);
    expect(tickets.prediction.scorePsi).toBeGreaterThanOrEqual(0.2);
    expect(tickets.prediction.status).toBe('page');

    const tenure = computeDrift(
      baseline,
      generatedWindow(ROWS, 2, { drift: { tenure_months: 0.5 } }),
      thresholds,
      FEATURE_SET,
    );
    expect(statusOf(tenure, 'tenure_months')).toBe('page');
    expect(tenure.prediction.scorePsi).toBeGreaterThanOrEqual(0.2);
    expect(tenure.prediction.status).toBe('page');
  });

  it('reports unseen categories under __unseen__ and pages on the field', () => {
    const window = generatedWindow(ROWS, 2, {
      edit: (record, row) => (row % 10 < 3 ? { ...record, region: 'atlantis' } : record),
    });
    const report = computeDrift(baseline, window, thresholds, FEATURE_SET);
    const region = report.features.find((f) => f.kind === 'categorical' && f.field === 'region')!;
    expect(region.kind === 'categorical' && region.categories.at(-1)).toBe(UNSEEN);
    expect(region.baseline.at(-1)).toBe(0);
    expect(region.current.at(-1)).toBeCloseTo(0.3, 3);
    expect(region.status).toBe('page');
    expect(region.kind === 'categorical' && region.js).toBeGreaterThan(0.05);
    expect(statusOf(report, 'plan')).toBe('ok');
  });
});

describe('computeDrift edge cases', () => {
  it('says insufficient for an empty window, with no NaN in the report', () => {
    const report = computeDrift(
      baseline,
      { x: new Float32Array(0), rows: 0, scores: new Float64Array(0) },
      thresholds,
      FEATURE_SET,
    );
    expect(report.features.every((f) => f.status === 'insufficient' && f.psi === null)).toBe(true);
    expect(report.features[0]!.insufficient).toBe('insufficient data: no rows in the window');
    expect(report.summary).toMatchObject({
      maxPsi: null,
      maxPsiFeature: null,
      // Every feature of the definition: a change of it changes the count, not this test.
      insufficient: report.features.length,
      status: 'insufficient',
    });
    expect(report.prediction).toMatchObject({
      status: 'insufficient',
      scorePsi: null,
      positiveRateDelta: null,
    });
    expect(report.status).toBe('insufficient');
    expect(numbersIn(report).every(Number.isFinite)).toBe(true);
  });

  it('is insufficient below minRows', () => {
    const report = computeDrift(baseline, generatedWindow(100, 2), thresholds, FEATURE_SET);
    expect(report.status).toBe('insufficient');
    expect(report.features[0]!.insufficient).toBe(
      'insufficient data: 100 finite values, fewer than the 500 required',
    );
    expect(
      computeDrift(baseline, generatedWindow(100, 2), { ...thresholds, minRows: 50 }, FEATURE_SET).status,
    ).toBe('ok');
  });

  it('counts NaN and Infinity apart and bins only the finite values', () => {
    const window = generatedWindow(ROWS, 2);
    const income = featureIndex('income');
    for (let r = 0; r < 100; r++)
      window.x[r * FEATURE_COUNT + income] = r % 2 ? Number.NaN : Number.NEGATIVE_INFINITY;
    window.scores[0] = Number.NaN;
    const report = computeDrift(baseline, window, thresholds, FEATURE_SET);
    const drift = report.features.find((f) => nameOf(f) === 'income')!;
    expect(drift).toMatchObject({ kind: 'numeric', valid: ROWS - 100, nan: 50, infinite: 50, status: 'ok' });
    expect(drift.current.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(report.prediction).toMatchObject({ valid: ROWS - 1, nan: 1, infinite: 0 });
  });

  it('watches an all-ties feature (edges: []) through its min and max', () => {
    const zeroTickets = (rows: number, seed: number) =>
      generatedWindow(rows, seed, { edit: (record) => ({ ...record, support_tickets_90d: 0 }) });
    const flat = zeroTickets(5000, 1);
    const flatBaseline = buildBaseline(FEATURE_SET, flat.x, flat.rows, flat.scores, 0.5);
    const tickets = flatBaseline.numeric.find((n) => n.feature === 'support_tickets_90d')!;
    expect(tickets.edges).toEqual([]);
    expect(
      statusOf(
        computeDrift(flatBaseline, zeroTickets(5000, 2), thresholds, FEATURE_SET),
        'support_tickets_90d',
      ),
    ).toBe('ok');
    const report = computeDrift(flatBaseline, generatedWindow(5000, 2), thresholds, FEATURE_SET);
    const drift = report.features.find((f) => nameOf(f) === 'support_tickets_90d')!;
    expect(drift.kind === 'numeric' && drift.edges[0]).toBe(0);
    expect(drift.baseline).toEqual([0, 1, 0]);
    expect(drift.status).toBe('page');
  });

  it('refuses inputs it cannot compare, naming the key', () => {
    const window = generatedWindow(10, 2);
    const other: Baseline = { ...baseline, featureSet: { version: '0.9.0', fingerprint: 'sha256:other' } };
    const keyOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(DriftInputError);
        return (error as DriftInputError).key;
      }
      return 'no error';
    };
    expect(keyOf(() => computeDrift(other, window, thresholds, FEATURE_SET))).toBe(
      'baseline.featureSet.fingerprint',
    );
    expect(keyOf(() => computeDrift(baseline, { ...window, rows: 11 }, thresholds, FEATURE_SET))).toBe(
      'window.x',
    );
    expect(
      keyOf(() =>
        computeDrift(baseline, { ...window, scores: new Float64Array(5) }, thresholds, FEATURE_SET),
      ),
    ).toBe('window.scores');
    expect(keyOf(() => computeDrift(baseline, { ...window, rows: -1 }, thresholds, FEATURE_SET))).toBe(
      'window.rows',
    );
    expect(
      keyOf(() =>
        computeDrift(baseline, window, { ...thresholds, featurePsi: { warn: 0.3, page: 0.2 } }, FEATURE_SET),
      ),
    ).toBe('thresholds.featurePsi');
    const renamed: Baseline = {
      ...baseline,
      categorical: [{ field: 'plan', categories: ['basic', 'gold'], frequencies: {} }],
    };
    expect(keyOf(() => computeDrift(renamed, window, thresholds, FEATURE_SET))).toBe(
      'baseline.categorical.plan.categories',
    );
  });
});
