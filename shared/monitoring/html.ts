/**
 * What Keel's self-contained HTML reports (drift, quality) share: escaping, number formatting and the
 * page shell. A report is one file an on-call engineer opens anywhere: inline CSS and SVG, no scripts,
 * no external requests.
 */

export const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** A figure to `digits` decimals; a dash when there is none (or it is not a finite number). */
export const fixed = (value: number | null, digits = 3) =>
  value !== null && Number.isFinite(value) ? value.toFixed(digits) : '–';

/** A share as a percentage; a dash when there is none. */
export const percent = (share: number | null, digits = 1) =>
  share !== null && Number.isFinite(share) ? `${(share * 100).toFixed(digits)}%` : '–';

/** A count with thousands separators, the same on every machine; a dash when it is not a number. */
export const count = (value: number) => (Number.isFinite(value) ? value.toLocaleString('en-US') : '–');

export const badge = (text: string, color: string) =>
  `<span class="badge" style="background:${color}">${escapeHtml(text)}</span>`;

/** The page around a report's body; `css` adds the report's own rules to the common ones. */
export function htmlPage(page: {
  readonly title: string;
  readonly css: string;
  readonly body: string;
}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#202124}
h1{margin:0 0 4px}h2{margin:24px 0 8px}h3{margin:0 0 4px;font-size:15px}
.badge{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;vertical-align:middle}
${page.css}
</style></head><body>
${page.body}
</body></html>
`;
}
