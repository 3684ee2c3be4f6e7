import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findFeatureArithmetic } from '../support/feature-arithmetic.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The rule of docs/architecture.md: nothing outside shared/features computes a feature. Checked over every place a
 * request, a record or a batch is handled. shared/data/generate.ts is the one exemption: it simulates
 * the customers' world (orders, spend) and its churn truth from their raw fields, which is not feature
 * code (and must not follow the code's feature definition, so that a feature change keeps the labels).
 */
const SCANNED = ['lambdas', 'local', 'cli', 'bin', 'shared'];
const EXEMPT = [/^shared\/features\//, /^shared\/data\/generate\.ts$/];

function sourceFiles(dir: string): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

describe('features are computed only in shared/features', () => {
  it('finds no feature arithmetic in lambdas/, local/, cli/, bin/ or the rest of shared/', () => {
    const files = SCANNED.flatMap(sourceFiles).filter(
      (file) => !EXEMPT.some((pattern) => pattern.test(file)),
    );
    expect(files.length).toBeGreaterThan(5);
    const findings = files.flatMap((file) =>
      findFeatureArithmetic(readFileSync(join(ROOT, file), 'utf8'), file).map(
        (finding) => `${relative(ROOT, join(ROOT, file))}:${finding.line}: ${finding.text}`,
      ),
    );
    expect(findings, 'import the feature from #shared/features instead of computing it here').toEqual([]);
  });

  it('the check catches hand-written feature code (so the test above can fail)', () => {
    const offending = `
      export function handler(record: { total_spend: number; orders: number; income: number }) {
        const ratio = record.total_spend / record.orders;
        const logIncome = Math.log1p(record['income']);
        const avgSpend = 0;
        return [ratio, logIncome, avgSpend];
      }`;
    expect(findFeatureArithmetic(offending, 'lambdas/predict/handler.ts').map((f) => f.line)).toEqual([
      3, 4, 5,
    ]);
  });

  it('does not flag ordinary code that merely passes records around', () => {
    const fine = `
      import { encodeFeatures } from '#shared/features/index.ts';
      const result = encodeFeatures(record);
      const latencyMs = performance.now() - started;
      const total = items.length + 1;
      const customer = { orders: record.orders };`;
    expect(findFeatureArithmetic(fine, 'local/x.ts')).toEqual([]);
  });
});
