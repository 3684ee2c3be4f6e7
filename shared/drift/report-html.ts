import { badge as coloured, count, escapeHtml, fixed, htmlPage, percent } from '#shared/monitoring/html.ts';
import type { DriftReport, DriftStatus, FeatureDrift } from './compute.ts';

/**
 * The drift report an on-call engineer opens first: one self-contained HTML page (inline CSS and SVG,
 * no scripts, no external requests) with the prediction-drift panel on top, then every feature sorted
 * worst first, its baseline and current histograms side by side, its score and status.
 */
export interface DriftReportPage {
  readonly model: { readonly name: string; readonly version: string };
  readonly window: { readonly from: string; readonly to: string };
  readonly rows: number;
  readonly report: DriftReport;
  readonly generatedAt: string;
}

const COLORS: Record<DriftStatus, string> = {
  ok: '#1b7f3b',
  warn: '#b26b00',
  page: '#b3261e',
  insufficient: '#666',
};
const RANK: Record<DriftStatus, number> = { page: 0, warn: 1, ok: 2, insufficient: 3 };

const badge = (status: DriftStatus) => coloured(status.toUpperCase(), COLORS[status]);

/** Two bar series (baseline grey, current coloured) over the same bins, with the bin labels below. */
function histogram(labels: string[], baseline: number[], current: number[], color: string): string {
  const width = 360;
  const height = 120;
  const slot = width / Math.max(labels.length, 1);
  const bar = Math.max(2, slot / 2 - 2);
  const max = Math.max(0.01, ...baseline, ...current);
  const y = (share: number) => height - (share / max) * height;
  const bars = labels
    .map((label, i) => {
      const x = i * slot + 1;
      const b = baseline[i] ?? 0;
      const c = current[i] ?? 0;
      return (
        `<rect x="${x.toFixed(1)}" y="${y(b).toFixed(1)}" width="${bar.toFixed(1)}" height="${(height - y(b)).toFixed(1)}" fill="#9aa0a6"><title>${escapeHtml(label)} baseline ${(b * 100).toFixed(1)}%</title></rect>` +
        `<rect x="${(x + bar + 1).toFixed(1)}" y="${y(c).toFixed(1)}" width="${bar.toFixed(1)}" height="${(height - y(c)).toFixed(1)}" fill="${color}"><title>${escapeHtml(label)} current ${(c * 100).toFixed(1)}%</title></rect>`
      );
    })
    .join('');
  const ticks = labels
    .map(
      (label, i) =>
        `<text x="${(i * slot + slot / 2).toFixed(1)}" y="${height + 12}" text-anchor="middle">${escapeHtml(label)}</text>`,
    )
    .join('');
  return `<svg viewBox="0 0 ${width} ${height + 16}" width="${width}" height="${height + 16}" role="img">${bars}${ticks}</svg>`;
}

const compact = (value: number) =>
  Math.abs(value) >= 1000
    ? `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)}k`
    : String(Math.round(value * 100) / 100);

function binLabels(edges: number[]): string[] {
  if (edges.length === 0) return ['all'];
  return [
    `<${compact(edges[0]!)}`,
    ...edges.slice(1).map((e) => `<${compact(e)}`),
    `≥${compact(edges.at(-1)!)}`,
  ];
}

function featureCard(feature: FeatureDrift): string {
  const name = feature.kind === 'numeric' ? feature.feature : feature.field;
  const labels = feature.kind === 'numeric' ? binLabels(feature.edges) : feature.categories;
  const scores =
    feature.kind === 'numeric'
      ? `PSI ${fixed(feature.psi)}`
      : `PSI ${fixed(feature.psi)} · JS ${fixed(feature.js)}`;
  const note = feature.insufficient ? `<p class="note">${escapeHtml(feature.insufficient)}</p>` : '';
  return `<section class="card" data-status="${feature.status}"><h3>${escapeHtml(name)} ${badge(feature.status)}</h3><p class="scores">${scores}</p>${histogram(labels, feature.baseline, feature.current, COLORS[feature.status])}${note}</section>`;
}

export function renderDriftReport(page: DriftReportPage): string {
  const { report } = page;
  const p = report.prediction;
  const features = [...report.features].sort(
    (a, b) => RANK[a.status] - RANK[b.status] || (b.psi ?? -1) - (a.psi ?? -1),
  );
  const title = `Drift: ${page.model.name} ${page.model.version}`;
  return htmlPage({
    title,
    css: `.meta{color:#5f6368}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.card{border:1px solid #dadce0;border-radius:8px;padding:10px}.card[data-status=page]{border-color:${COLORS.page}}
.card[data-status=warn]{border-color:${COLORS.warn}}.scores{margin:0 0 6px;color:#3c4043}.note{color:#666;margin:4px 0 0}
svg text{font-size:9px;fill:#5f6368}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
table{border-collapse:collapse}td{padding:2px 12px 2px 0}`,
    body: `<h1>${escapeHtml(title)} ${badge(report.status)}</h1>
<p class="meta">window ${escapeHtml(page.window.from)} → ${escapeHtml(page.window.to)} · ${count(page.rows)} predictions · feature set ${escapeHtml(report.featureSet.version)} · generated ${escapeHtml(page.generatedAt)}</p>
<p class="legend">bars:<span style="background:#9aa0a6"></span>baseline (training)<span style="background:#1b7f3b"></span>current window</p>
<h2>Prediction drift ${badge(p.status)}</h2>
<section class="card" data-status="${p.status}">
<table><tr><td>positive rate</td><td>${p.positiveRate.current === null ? '–' : `${percent(p.positiveRate.baseline)} → ${percent(p.positiveRate.current)}`}</td><td>${p.positiveRateDelta === null ? '' : `${p.positiveRateDelta >= 0 ? '+' : ''}${p.positiveRateDelta.toFixed(1)} points`}</td></tr>
<tr><td>score PSI</td><td>${fixed(p.scorePsi)}</td><td></td></tr></table>
${histogram(binLabels(p.edges), p.baseline, p.current, COLORS[p.status])}
${p.insufficient ? `<p class="note">${escapeHtml(p.insufficient)}</p>` : ''}
</section>
<h2>Features (${report.summary.paged} paging, ${report.summary.warned} warning, worst first)</h2>
<div class="grid">${features.map(featureCard).join('\n')}</div>
<p class="meta">thresholds: feature PSI warn ≥ ${report.thresholds.featurePsi.warn}, page ≥ ${report.thresholds.featurePsi.page}; score PSI ≥ ${report.thresholds.scorePsi.threshold}; positive rate moved ≥ ${report.thresholds.positiveRateDeltaPoints.threshold} points</p>`,
  });
}
