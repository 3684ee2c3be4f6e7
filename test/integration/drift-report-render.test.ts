import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { renderQualityReport } from '#shared/quality/report-html.ts';
import { TEST_EMULATOR } from '../support/aws.ts';
import { startMonitoredPlatform } from '../support/monitoring.ts';
import { qualityReportFixture } from '../support/quality-report.ts';

/**
 * The drift report as on-call sees it: written by `keel drift check --report`, rendered by headless
 * Chromium through scripts/render-drift-report.sh, and the screenshot decoded here (node:zlib) to check
 * that a page was drawn, not a blank or an error page. The quality report, rendered from a fixture,
 * gets the same check.
 */

const SCRIPT = fileURLToPath(new URL('../../scripts/render-drift-report.sh', import.meta.url));

function findChromium(): string | undefined {
  for (const name of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (!name) continue;
    try {
      return execFileSync('sh', ['-c', `command -v "${name}"`], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // Not on PATH: try the next name.
    }
  }
  return undefined;
}

const chromium = findChromium();
// CI installs Chromium (.ci/run): there a missing browser is a failure, not a skipped check.
if (!chromium && process.env.CI === 'true') {
  throw new Error("no Chromium on PATH: .ci/run installs Debian's chromium for this test (or set CHROMIUM)");
}
if (!chromium)
  console.warn('drift report render check skipped: no Chromium on PATH (install chromium or set CHROMIUM)');

interface Png {
  readonly width: number;
  readonly height: number;
  /** RGB(A) rows, filters undone. */
  readonly pixel: (x: number, y: number) => [number, number, number];
}

/** A non-interlaced 8-bit RGB or RGBA PNG, decoded with node:zlib (what Chromium's screenshots are). */
function decodePng(bytes: Buffer): Png {
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let offset = 8;
  let header: Buffer | undefined;
  const data: Buffer[] = [];
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('ascii', offset + 4, offset + 8);
    const chunk = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') header = chunk;
    if (type === 'IDAT') data.push(chunk);
    offset += 12 + length;
  }
  const width = header!.readUInt32BE(0);
  const height = header!.readUInt32BE(4);
  const [bitDepth, colorType, , , interlace] = [...header!.subarray(8, 13)];
  expect({ bitDepth, interlace, colorType: [2, 6].includes(colorType!) }).toEqual({
    bitDepth: 8,
    interlace: 0,
    colorType: true,
  });
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * bpp;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[y * stride + i - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp]! : 0;
      const predictor = [
        0,
        a,
        b,
        (a + b) >> 1,
        (() => {
          const p = a + b - c;
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
          return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        })(),
      ][filter]!;
      out[y * stride + i] = (line[i]! + predictor) & 0xff;
    }
  }
  return {
    width,
    height,
    pixel: (x, y) => {
      const at = y * stride + x * bpp;
      return [out[at]!, out[at + 1]!, out[at + 2]!];
    },
  };
}

/** Screenshots `report` through the script and checks a full page was drawn: text, colours, charts. */
async function expectDrawn(report: string, png: string, name: string): Promise<void> {
  const { stdout } = await promisify(execFile)('bash', [SCRIPT, report, png], {
    env: { ...process.env, CHROMIUM: chromium! },
    timeout: 60_000,
  });
  expect(stdout.trim()).toBe(png);
  expect(existsSync(png)).toBe(true);
  expect(statSync(png).size).toBeGreaterThan(30_000);

  const image = decodePng(readFileSync(png));
  expect([image.width, image.height]).toEqual([1280, 2000]);
  const colours = new Set<string>();
  let inked = 0;
  let samples = 0;
  for (let y = 0; y < image.height; y += 4) {
    for (let x = 0; x < image.width; x += 4) {
      const [r, g, b] = image.pixel(x, y);
      colours.add(`${r >> 3},${g >> 3},${b >> 3}`);
      if (r + g + b < 600) inked++;
      samples++;
    }
  }
  console.info(`${name} screenshot: ${colours.size} colours, ${((100 * inked) / samples).toFixed(1)}% inked`);
  // Text in several colours and bars or lines, not a blank page or a one-colour error page.
  expect(colours.size).toBeGreaterThan(20);
  expect(inked / samples).toBeGreaterThan(0.01);
}

// `keel up` runs its own embedded servers whatever KEEL_TEST_EMULATOR says: the moto pass would repeat
// the same run, so it is left to the embedded one.
describe.skipIf(!chromium || TEST_EMULATOR === 'moto')('drift report in headless Chromium', () => {
  it('renders a report of income drift: a full page with text, colours and histograms', async () => {
    const platform = await startMonitoredPlatform('render');
    try {
      const from = new Date();
      await platform.serve(1000, 7, 'income=1.9');
      const report = join(platform.home, 'drift.html');
      await platform.driftCheck(from, 1000, ['--report', report]);
      expect(readFileSync(report, 'utf8')).toContain('income');

      await expectDrawn(report, join(platform.home, 'drift.png'), 'drift report');
    } finally {
      await platform.close();
    }
  }, 180_000);
});

// No platform needed: the page is rendered from a fixture, so the moto pass would only repeat it.
describe.skipIf(!chromium || TEST_EMULATOR === 'moto')('quality report in headless Chromium', () => {
  it('renders two versions: tables, AUC over time, reliability curves, the consistency and skew panels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-quality-report-'));
    try {
      const report = join(dir, 'quality.html');
      writeFileSync(report, renderQualityReport(qualityReportFixture()));
      await expectDrawn(report, join(dir, 'quality.png'), 'quality report');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
