import { describe, expect, it } from 'vitest';
import { computeDrift } from '#shared/drift/compute.ts';
import { renderDriftReport } from '#shared/drift/report-html.ts';
import { driftThresholds } from '#shared/drift/thresholds.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import { buildBaseline } from '#shared/registry/baseline.ts';
import { generatedWindow } from '../../support/drift-windows.ts';

const reference = generatedWindow(5000, 1);
const baseline = buildBaseline(FEATURE_SET, reference.x, reference.rows, reference.scores, 0.5);
const page = (drift?: { income: number }) => {
  const window = generatedWindow(5000, 2, drift ? { drift } : {});
  return renderDriftReport({
    model: { name: 'churn', version: 'v3' },
    window: { from: '2026-11-24T10:00:00.000Z', to: '2026-11-24T11:00:00.000Z' },
    rows: window.rows,
    report: computeDrift(baseline, window, driftThresholds(), FEATURE_SET),
    generatedAt: '2026-11-24T11:00:05.000Z',
  });
};

describe('the HTML drift report', () => {
  it('puts the drifted features first, paging, with both histograms and their scores', () => {
    const html = page({ income: 1.9 });
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('Drift: churn v3');
    const cards = [...html.matchAll(/<section class="card" data-status="(\w+)"><h3>([\w_]+)/g)].map(
      (m) => `${m[2]}:${m[1]}`,
    );
    expect(cards.slice(0, 2).sort()).toEqual(['income:page', 'log_income:page']);
    expect(cards.filter((c) => c.endsWith(':page'))).toHaveLength(2);
    expect(cards).toContain('region:ok');
    // Every feature card has two bar series (baseline and current) per bin.
    const incomeCard = html.slice(
      html.indexOf('<h3>income'),
      html.indexOf('</section>', html.indexOf('<h3>income')),
    );
    expect((incomeCard.match(/<rect /g) ?? []).length).toBe(2 * (incomeCard.match(/<text /g) ?? []).length);
    expect(html).toContain('Prediction drift');
  });

  it('is self-contained: no scripts, no external resources', () => {
    const html = page({ income: 1.9 });
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//i);
  });

  it('says OK when nothing drifted', () => {
    const html = page();
    expect(html).toMatch(
      /<h1>Drift: churn v3 <span class="badge" style="background:#1b7f3b">OK<\/span><\/h1>/,
    );
    expect(html).not.toContain('data-status="page"');
  });
});
