import { ValidationError } from '#shared/errors.ts';
import type { CalibrationBin } from '#shared/model/metrics.ts';
import { count, escapeHtml, fixed, htmlPage, percent } from '#shared/monitoring/html.ts';
import type {
  ConsistencyFigures,
  QualityBucket,
  QualityReport,
  SkewFigures,
  VersionQuality,
} from './types.ts';

/**
 * The quality report `keel quality check --report` writes: one self-contained HTML page (inline CSS and
 * SVG, no scripts, no external requests). Per model version, newest first: held-out, realized and
 * estimated figures side by side, the AUC shortfall, quality over time and the reliability curve; then
 * the batch/real-time consistency and the feature skew of the window.
 */
export interface QualityReportOptions {
  /**
   * An AUC shortfall (held-out − realized) above this is shown as an alarm.
   * @default 0.05
   */
  readonly aucDropAlarm?: number;
}

const ALARM = '#b3261e';

/** The lines of the AUC chart: how each is drawn, in the chart and in its legend. */
const LINES = {
  realized: { label: 'realized AUC', color: '#1a73e8', dash: '' },
  estimated: { label: 'estimated AUC', color: '#9334e6', dash: '6 3' },
  heldOut: { label: 'held-out AUC', color: '#5f6368', dash: '1 3' },
} as const;
type Line = keyof typeof LINES;
const stroke = (line: Line) =>
  `stroke="${LINES[line].color}" stroke-width="2"${LINES[line].dash ? ` stroke-dasharray="${LINES[line].dash}"` : ''}`;

const px = (value: number) => value.toFixed(1);
const days = (n: number) => `${count(n)} day${n === 1 ? '' : 's'}`;
const signed = (value: number) => `${value > 0 ? '+' : ''}${value.toFixed(3)}`;
const figure = (caption: string, content: string) =>
  `<figure><figcaption>${caption}</figcaption>${content}</figure>`;
const isFigure = (value: number | null | undefined): value is number =>
  typeof value === 'number' && Number.isFinite(value);

interface Point {
  readonly x: number;
  readonly y: number;
  readonly title: string;
}

/** One line over the buckets: a polyline per run of buckets with a value, never across a gap. */
function series(line: Line, points: readonly (Point | null)[]): string {
  const runs: Point[][] = [[]];
  for (const point of points) {
    if (point) runs.at(-1)!.push(point);
    else if (runs.at(-1)!.length > 0) runs.push([]);
  }
  const polylines = runs
    .filter((run) => run.length > 1)
    .map(
      (run) =>
        `<polyline data-line="${line}" fill="none" ${stroke(line)} points="${run.map((p) => `${px(p.x)},${px(p.y)}`).join(' ')}"/>`,
    );
  // A dot per value, so that a value between two gaps shows too.
  const dots = runs
    .flat()
    .map(
      (p) =>
        `<circle data-line="${line}" cx="${px(p.x)}" cy="${px(p.y)}" r="2.5" fill="${LINES[line].color}"><title>${escapeHtml(p.title)}</title></circle>`,
    );
  return polylines.join('') + dots.join('');
}

/** `2026-11-20` for buckets that start at midnight UTC, `2026-11-20 13:00` for shorter ones. */
const bucketLabel = (from: string) =>
  /^\d{4}-\d{2}-\d{2}T00:00(:00(\.0+)?)?Z$/.test(from)
    ? from.slice(0, 10)
    : from.slice(0, 16).replace('T', ' ');

/** Realized AUC (solid) and estimated AUC (dashed) per bucket, the held-out AUC as the reference line. */
function qualityChart(version: VersionQuality): string {
  const { buckets } = version;
  const aucs = buckets.flatMap((b) => [b.realized?.auc, b.estimated?.auc]).filter(isFigure);
  if (aucs.length === 0) return figure('AUC over time', '<p class="note">no AUC in any bucket yet</p>');
  const [width, left, right, top, plot] = [520, 40, 10, 10, 140];
  const heldOut = isFigure(version.heldOut.auc) ? version.heldOut.auc : null;
  // AUC lives in [0, 1]; show from 0.5 (a coin toss) unless a figure falls below it. In tenths:
  const low = Math.max(0, Math.min(5, Math.floor(Math.min(...aucs, heldOut ?? 1) * 10)));
  const y = (auc: number) => top + ((1 - auc) / (1 - low / 10)) * plot;
  const slot = (width - left - right) / buckets.length;
  const x = (i: number) => left + (i + 0.5) * slot;
  const points = (line: 'realized' | 'estimated', over: (b: QualityBucket) => string) =>
    buckets.map((b, i) => {
      const auc = b[line]?.auc;
      return isFigure(auc)
        ? { x: x(i), y: y(auc), title: `${bucketLabel(b.from)}: ${line} AUC ${fixed(auc)} ${over(b)}` }
        : null;
    });

  const grid = Array.from({ length: 11 - low }, (_, k) => (low + k) / 10)
    .map(
      (auc) =>
        `<line x1="${left}" x2="${width - right}" y1="${px(y(auc))}" y2="${px(y(auc))}" stroke="#eceff1"/>` +
        `<text x="${left - 4}" y="${px(y(auc) + 3)}" text-anchor="end">${auc.toFixed(1)}</text>`,
    )
    .join('');
  // As many date labels as fit side by side.
  const fit = Math.floor((width - left - right) / (bucketLabel(buckets[0]!.from).length * 6 + 12));
  const every = Math.ceil(buckets.length / Math.max(1, fit));
  const ticks = buckets
    .map((b, i) =>
      i % every === 0
        ? `<text x="${px(x(i))}" y="${top + plot + 14}" text-anchor="middle">${escapeHtml(bucketLabel(b.from))}</text>`
        : '',
    )
    .join('');
  const reference =
    heldOut === null
      ? ''
      : `<line data-line="heldOut" x1="${left}" x2="${width - right}" y1="${px(y(heldOut))}" y2="${px(y(heldOut))}" ${stroke('heldOut')}><title>held-out AUC ${fixed(heldOut)}</title></line>`;
  const legendY = top + plot + 44;
  const legend = (Object.keys(LINES) as Line[])
    .map((line, i) => {
      const at = left + i * 140;
      return `<line x1="${at}" x2="${at + 24}" y1="${legendY - 3}" y2="${legendY - 3}" ${stroke(line)}/><text x="${at + 30}" y="${legendY}">${LINES[line].label}</text>`;
    })
    .join('');
  const axes = `<text x="${px((left + width - right) / 2)}" y="${top + plot + 28}" text-anchor="middle">bucket start</text><text x="10" y="${px(top + plot / 2)}" transform="rotate(-90 10 ${px(top + plot / 2)})" text-anchor="middle">AUC</text>`;
  return figure(
    'AUC over time',
    `<svg viewBox="0 0 ${width} ${legendY + 6}" width="${width}" height="${legendY + 6}" role="img">${grid}${reference}${series(
      'realized',
      points('realized', (b) => `over ${count(b.realized?.matched ?? 0)} outcomes`),
    )}${series(
      'estimated',
      points('estimated', (b) => `over ${count(b.estimated?.predictions ?? 0)} predictions`),
    )}${ticks}${axes}${legend}</svg>`,
  );
}

/** Mean predicted against observed rate per non-empty bin, point area by count, the diagonal as reference. */
function reliabilityChart(bins: readonly CalibrationBin[]): string {
  const filled = bins.filter(
    (bin): bin is CalibrationBin & { meanPredicted: number; observedRate: number } =>
      isFigure(bin.meanPredicted) && isFigure(bin.observedRate),
  );
  if (filled.length === 0)
    return figure('Reliability (realized)', '<p class="note">no outcomes yet: no reliability curve</p>');
  const [size, left, top] = [200, 40, 10];
  const x = (p: number) => left + p * size;
  const y = (p: number) => top + (1 - p) * size;
  const most = Math.max(...filled.map((bin) => bin.count));
  const axes = [0, 0.2, 0.4, 0.6, 0.8, 1]
    .map(
      (t) =>
        `<line x1="${x(0)}" x2="${x(1)}" y1="${px(y(t))}" y2="${px(y(t))}" stroke="#eceff1"/><line x1="${px(x(t))}" x2="${px(x(t))}" y1="${y(0)}" y2="${y(1)}" stroke="#eceff1"/>` +
        `<text x="${left - 4}" y="${px(y(t) + 3)}" text-anchor="end">${t.toFixed(1)}</text><text x="${px(x(t))}" y="${top + size + 14}" text-anchor="middle">${t.toFixed(1)}</text>`,
    )
    .join('');
  const curve = [...filled].sort((a, b) => a.meanPredicted - b.meanPredicted);
  const points = curve
    .map(
      (bin) =>
        `<circle data-line="reliability" cx="${px(x(bin.meanPredicted))}" cy="${px(y(bin.observedRate))}" r="${px(2 + 6 * Math.sqrt(bin.count / most))}" fill="${LINES.realized.color}" fill-opacity="0.7"><title>scores ${fixed(bin.lower, 1)}–${fixed(bin.upper, 1)}: mean predicted ${fixed(bin.meanPredicted)}, observed ${fixed(bin.observedRate)}, ${count(bin.count)} predictions</title></circle>`,
    )
    .join('');
  const line =
    curve.length > 1
      ? `<polyline data-line="reliability" fill="none" stroke="${LINES.realized.color}" stroke-width="1.5" points="${curve.map((bin) => `${px(x(bin.meanPredicted))},${px(y(bin.observedRate))}`).join(' ')}"/>`
      : '';
  const height = top + size + 58;
  return figure(
    'Reliability (realized)',
    `<svg viewBox="0 0 ${left + size + 10} ${height}" width="${left + size + 10}" height="${height}" role="img">${axes}<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="${LINES.heldOut.color}" stroke-dasharray="4 3"><title>perfectly calibrated</title></line>${line}${points}<text x="${x(0.5)}" y="${top + size + 28}" text-anchor="middle">mean predicted probability</text><text x="10" y="${y(0.5)}" transform="rotate(-90 10 ${y(0.5)})" text-anchor="middle">observed churn rate</text><text x="${left}" y="${height - 16}">dashed: perfectly calibrated</text><text x="${left}" y="${height - 4}">point area: predictions in the bin</text></svg>`,
  );
}

function versionCard(version: VersionQuality, aucDropAlarm: number): string {
  const { realized: r, estimated: e } = version;
  const rows: [string, string, string, string][] = [
    ['AUC', fixed(version.heldOut.auc), fixed(r?.auc ?? null), fixed(e?.auc ?? null)],
    [
      'accuracy',
      percent(version.heldOut.accuracy),
      percent(r?.accuracy ?? null),
      percent(e?.accuracy ?? null),
    ],
    ['log loss', '', fixed(r?.logloss ?? null), ''],
    ['precision', '', percent(r?.precision ?? null), ''],
    ['recall', '', percent(r?.recall ?? null), ''],
    ['positive rate', '', percent(r?.positiveRate ?? null), ''],
    ['observed churn rate', '', percent(r?.observedRate ?? null), ''],
    ['calibration error (ECE)', '', fixed(r?.expectedCalibrationError ?? null), ''],
  ];
  const table = `<table class="figures"><tr><th></th><th>held-out</th><th>realized</th><th>estimated</th></tr>${rows
    .map((cells) => `<tr>${cells.map((cell) => `<td>${cell}</td>`).join('')}</tr>`)
    .join('')}</table>`;
  const shortfall = version.aucShortfall;
  const alarmed = isFigure(shortfall) && shortfall > aucDropAlarm;
  const shortfallText = isFigure(shortfall)
    ? `<span class="shortfall${alarmed ? ' alarm' : ''}" title="held-out AUC − realized AUC; alarm above ${aucDropAlarm}">${signed(shortfall)}</span>`
    : `– (${r ? 'too few outcomes to judge' : 'no outcomes yet'})`;
  const matched = r?.matched ?? 0;
  const summary = `<p>${count(version.predictions)} predictions · ${count(matched)} matched with an outcome (${percent(version.predictions > 0 ? matched / version.predictions : null)})${e ? ` · estimated over ${count(e.predictions)}` : ''} · AUC shortfall ${shortfallText}</p>`;
  const waiting = r
    ? ''
    : `<p class="note">no outcomes yet: none of the ${count(version.predictions)} predictions has a matched outcome</p>`;
  return `<section class="card" data-version="${escapeHtml(version.version)}"${alarmed ? ' data-alarm="auc"' : ''}><h3>${escapeHtml(version.version)} <span class="meta">threshold ${fixed(version.threshold)}</span></h3>${summary}${waiting}<div class="row">${table}${qualityChart(version)}${reliabilityChart(r?.reliability ?? [])}</div></section>`;
}

function consistencyPanel(c: ConsistencyFigures): string {
  const body =
    c.pairs === 0
      ? '<p class="note">no pairs: no customer was answered by both batch scoring and the API from the same record in the window</p>'
      : `<table><tr><td>pairs</td><td>${count(c.pairs)}</td></tr><tr><td>identical decisions</td><td>${count(c.identicalDecisions)} (${percent(c.share)})</td></tr><tr><td>max score difference</td><td>${fixed(c.maxScoreDifference, 4)}</td></tr></table>`;
  return `<section class="card"><h3>Batch and real time</h3>${body}</section>`;
}

function skewPanel(s: SkewFigures): string {
  let body: string;
  if (s.sampled === 0) body = '<p class="note">no real-time captures sampled</p>';
  else if (s.compared === 0)
    body = `<p class="note">${count(s.sampled)} captures sampled; none had an offline row of the same customer and event time to compare with</p>`;
  else {
    const features =
      s.features.length === 0
        ? s.differing === 0
          ? '<p class="note">no served feature differed from its offline value</p>'
          : ''
        : `<table><tr><th>feature</th><th>vectors differing</th><th>of compared</th></tr>${s.features
            .map(
              (f) =>
                `<tr><td>${escapeHtml(f.name)}</td><td>${count(f.differing)}</td><td>${percent(f.differing / s.compared)}</td></tr>`,
            )
            .join('')}</table>`;
    body = `<table><tr><td>sampled</td><td>${count(s.sampled)}</td></tr><tr><td>compared</td><td>${count(s.compared)}</td></tr><tr><td>differing</td><td>${count(s.differing)} (${percent(s.share)})</td></tr></table>${features}`;
  }
  return `<section class="card"><h3>Served features against offline features</h3>${body}</section>`;
}

export function renderQualityReport(report: QualityReport, options: QualityReportOptions = {}): string {
  const aucDropAlarm = options.aucDropAlarm ?? 0.05;
  if (!isFigure(aucDropAlarm) || aucDropAlarm < 0 || aucDropAlarm > 1)
    throw new ValidationError(`aucDropAlarm must be a number from 0 to 1, got ${aucDropAlarm}`, [
      { path: 'aucDropAlarm', message: 'a number from 0 to 1' },
    ]);
  // Newest first, in numeric order (v10 before v9), whatever the order the job wrote them in.
  const versions = [...report.versions].sort((a, b) =>
    b.version.localeCompare(a.version, 'en', { numeric: true }),
  );
  const { outcomes } = report;
  const title = `Quality: ${report.model.name}`;
  return htmlPage({
    title,
    css: `.meta,.note{color:#5f6368}.note{margin:4px 0}.card{border:1px solid #dadce0;border-radius:8px;padding:10px;margin:0 0 12px}
.card[data-alarm]{border-color:${ALARM}}.alarm{color:${ALARM};font-weight:600}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}figure{margin:0}figcaption{font-weight:600;margin:0 0 4px}
table{border-collapse:collapse}th,td{padding:2px 10px 2px 0;text-align:right}th:first-child,td:first-child{text-align:left}
th{font-weight:600;color:#3c4043}svg text{font-size:10px;fill:#5f6368}`,
    body: `<h1>${escapeHtml(title)}</h1>
<p class="meta">predictions made ${escapeHtml(report.window.from)} → ${escapeHtml(report.window.to)} · label window ${days(report.labelWindowDays)} · generated ${escapeHtml(report.generatedAt)}</p>
<p class="meta">outcome intake: ${count(outcomes.files)} files, ${count(outcomes.rows)} rows, ${count(outcomes.quarantined)} quarantined</p>
<h2>Versions (newest first)</h2>
${versions.length === 0 ? '<p class="note">no version answered in the window</p>' : versions.map((v) => versionCard(v, aucDropAlarm)).join('\n')}
<h2>Consistency and skew</h2>
<div class="row">${consistencyPanel(report.consistency)}${skewPanel(report.skew)}</div>`,
  });
}
