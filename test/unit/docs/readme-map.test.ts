import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The rows of the README's "Where things are" table: concern, folders, entry files. */
function mapRows(readme: string): { concern: string; paths: string[] }[] {
  const section = readme.split('\n## Where things are\n')[1]?.split('\n## ')[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| concern') && !line.startsWith('|---'))
    .map((line) => {
      const [concern = '', ...cells] = line.split('|').slice(1, -1);
      return {
        concern: concern.trim(),
        paths: cells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!)),
      };
    });
}

describe("the README's map of the tree", () => {
  const rows = mapRows(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('names every room of the tree', () => {
    const named = rows.flatMap((row) => row.paths);
    for (const room of ['shared/', 'lib/', 'lambdas/', 'local/', 'cli/', 'bin/', 'test/', 'bench/']) {
      expect(
        named.some((path) => path.startsWith(room)),
        room,
      ).toBe(true);
    }
  });

  it('points at folders and files that exist', () => {
    expect(rows.length).toBeGreaterThan(10);
    const missing = rows.flatMap((row) =>
      row.paths.filter((path) => !existsSync(join(ROOT, path))).map((path) => `${row.concern}: ${path}`),
    );
    expect(missing).toEqual([]);
  });
});
