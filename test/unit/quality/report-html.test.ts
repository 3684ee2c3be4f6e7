import { describe, expect, it } from 'vitest';
import { ValidationError } from '#shared/errors.ts';
import { renderQualityReport } from '#shared/quality/report-html.ts';
import {
  emptyQualityReportFixture,
  HOSTILE_NAME,
  qualityReportFixture,
} from '../../support/quality-report.ts';

/** The version's card: from its opening tag to the next card. */
function card(html: string, version: string): string {
  const start = html.indexOf(`<section class="card" data-version="${version}"`);
  expect(start, `a card for ${version}`).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf('</section>', start));
}

/** The figures table of a card, row by row: label, held-out, realized, estimated. */
function figures(cardHtml: string): string[][] {
  const table = cardHtml.slice(cardHtml.indexOf('<table class="figures">'), cardHtml.indexOf('</table>'));
  return [...table.matchAll(/<tr>(.*?)<\/tr>/g)].map((row) =>
    [...row[1]!.matchAll(/<t[dh]>(.*?)<\/t[dh]>/g)].map((cell) => cell[1]!),
  );
}

/** Each polyline of a line, as its list of points. */
const polylines = (svg: string, line: string) =>
  [...svg.matchAll(new RegExp(`<polyline data-line="${line}"[^>]* points="([^"]*)"`, 'g'))].map((m) =>
    m[1]!.split(' '),
  );

const dots = (svg: string, line: string) => svg.split(`<circle data-line="${line}"`).length - 1;

describe('the HTML quality report', () => {
  const html = renderQualityReport(qualityReportFixture());

  it('is self-contained and escapes the model name', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|src=|href=|https?:\/\/|url\(|@import/i);
    expect(html).toContain(
      '<h1>Quality: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;churn&#39;</h1>',
    );
    expect(html).toContain('<title>Quality: &lt;script&gt;');
    expect(html).not.toContain(HOSTILE_NAME);
  });

  it('heads the page with the window, the label window and the outcome intake', () => {
    expect(html).toContain('2026-11-20T00:00:00.000Z → 2026-11-27T00:00:00.000Z');
    expect(html).toContain('label window 30 days');
    expect(html).toContain('generated 2026-11-27T06:00:03.000Z');
    expect(html).toContain('outcome intake: 3 files, 12,345 rows, 17 quarantined');
  });

  it('shows the versions newest first, held-out, realized and estimated side by side', () => {
    expect(html.indexOf('data-version="v10"')).toBeLessThan(html.indexOf('data-version="v9"'));
    const v10 = card(html, 'v10');
    expect(v10).toContain('threshold 0.450');
    expect(v10).toContain('7,000 predictions · 4,200 matched with an outcome (60.0%) · estimated over 7,000');
    expect(figures(v10)).toEqual([
      ['', 'held-out', 'realized', 'estimated'],
      ['AUC', '0.882', '0.797', '0.871'],
      ['accuracy', '84.5%', '81.3%', '83.4%'],
      ['log loss', '', '0.412', ''],
      ['precision', '', '60.3%', ''],
      ['recall', '', '55.2%', ''],
      ['positive rate', '', '22.1%', ''],
      ['observed churn rate', '', '23.8%', ''],
      ['calibration error (ECE)', '', '0.031', ''],
    ]);
  });

  it('colours a shortfall above the alarm (0.05 unless told), not one below it', () => {
    expect(card(html, 'v10')).toContain('data-alarm="auc"');
    expect(card(html, 'v10')).toMatch(/<span class="shortfall alarm"[^>]*>\+0\.085<\/span>/);
    expect(card(html, 'v9')).toMatch(/<span class="shortfall"[^>]*>\+0\.030<\/span>/);
    expect(card(html, 'v9')).not.toContain('data-alarm=');

    const lenient = renderQualityReport(qualityReportFixture(), { aucDropAlarm: 0.1 });
    expect(lenient).not.toContain('data-alarm=');
    const strict = renderQualityReport(qualityReportFixture(), { aucDropAlarm: 0.02 });
    expect(card(strict, 'v9')).toContain('data-alarm="auc"');
  });

  it('refuses an alarm that is not a share, naming the option', () => {
    for (const aucDropAlarm of [-0.1, 1.5, Number.NaN]) {
      expect(() => renderQualityReport(qualityReportFixture(), { aucDropAlarm })).toThrow(ValidationError);
    }
    expect(() => renderQualityReport(qualityReportFixture(), { aucDropAlarm: -1 })).toThrow(/aucDropAlarm/);
  });

  it('draws AUC over time without drawing through buckets with no figure', () => {
    const v10 = card(html, 'v10');
    // Realized: 0.82 0.81 – – 0.79 0.78 0.80: two runs, five dots.
    expect(polylines(v10, 'realized').map((run) => run.length)).toEqual([2, 3]);
    expect(dots(v10, 'realized')).toBe(5);
    // Estimated has every bucket: one line through seven.
    expect(polylines(v10, 'estimated').map((run) => run.length)).toEqual([7]);
    // v9's realized 0.84 – 0.83 0.82 –: the lone first value is a dot, not a line.
    const v9 = card(html, 'v9');
    expect(polylines(v9, 'realized').map((run) => run.length)).toEqual([2]);
    expect(dots(v9, 'realized')).toBe(3);
    expect(polylines(v9, 'estimated').map((run) => run.length)).toEqual([2, 2]);
    // The run's points move right bucket by bucket, the gap's width apart across the gap.
    const xs = polylines(v10, 'realized').flatMap((run) => run.map((p) => Number(p.split(',')[0])));
    const step = xs[1]! - xs[0]!;
    expect(xs[2]! - xs[1]!).toBeCloseTo(3 * step, 0);

    expect(v10).toContain('<line data-line="heldOut"');
    for (const label of ['realized AUC', 'estimated AUC', 'held-out AUC', 'bucket start'])
      expect(v10).toContain(`>${label}</text>`);
    expect(v10).toContain('>2026-11-20</text>');
    expect(v10).toContain('>2026-11-26</text>');
  });

  it('draws the reliability curve over the non-empty bins only, against the diagonal', () => {
    const v10 = card(html, 'v10');
    expect(dots(v10, 'reliability')).toBe(7);
    expect(polylines(v10, 'reliability').map((run) => run.length)).toEqual([7]);
    expect(v10).toContain('<title>perfectly calibrated</title>');
    expect(v10).toContain('mean predicted 0.050, observed 0.030, 120 predictions');
    // The point area follows the count: the fullest bin has the largest point.
    const radii = [...v10.matchAll(/<circle data-line="reliability"[^>]* r="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(Math.max(...radii)).toBe(radii[0]);
    expect(Math.min(...radii)).toBe(radii.at(-1));
  });

  it('says there are no pairs, and lists the skewed features with their counts', () => {
    expect(html).toContain('no pairs: no customer was answered by both batch scoring and the API');
    expect(html).toContain('<td>differing</td><td>9 (5.0%)</td>');
    expect(html).toContain('<tr><td>support_tickets_90d</td><td>7</td><td>3.9%</td></tr>');
    expect(html).toContain('<tr><td>tenure_months</td><td>2</td><td>1.1%</td></tr>');
  });

  it('shows pairs when there are some', () => {
    const page = renderQualityReport({
      ...qualityReportFixture(),
      consistency: { pairs: 2000, identicalDecisions: 1996, share: 0.998, maxScoreDifference: 0.00031 },
    });
    expect(page).toContain('<td>identical decisions</td><td>1,996 (99.8%)</td>');
    expect(page).toContain('<td>max score difference</td><td>0.0003</td>');
  });

  it('before any outcome: clear words, no charts of nothing, and never NaN, undefined or null', () => {
    const empty = renderQualityReport(emptyQualityReportFixture());
    const v10 = card(empty, 'v10');
    expect(v10).toContain('no outcomes yet: none of the 7,000 predictions has a matched outcome');
    expect(v10).toContain('AUC shortfall – (no outcomes yet)');
    expect(v10).toContain('no AUC in any bucket yet');
    expect(v10).not.toContain('<svg');
    expect(v10).toContain('no outcomes yet: no reliability curve');
    expect(figures(v10)[1]).toEqual(['AUC', '0.882', '–', '–']);
    expect(empty).toContain('no real-time captures sampled');

    const none = renderQualityReport({ ...emptyQualityReportFixture(), versions: [] });
    expect(none).toContain('no version answered in the window');
    for (const page of [html, empty, none]) expect(page).not.toMatch(/NaN|undefined|null|Infinity/);
  });

  it('says so when outcomes arrived but too few to judge the shortfall', () => {
    const report = qualityReportFixture();
    const page = renderQualityReport({
      ...report,
      versions: [{ ...report.versions[1]!, aucShortfall: null }],
    });
    expect(page).toContain('AUC shortfall – (too few outcomes to judge)');
    expect(page).not.toContain('data-alarm=');
  });
});
