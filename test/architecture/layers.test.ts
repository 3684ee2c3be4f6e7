import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The layering the README's "Where things are" describes: `shared/` at the bottom, `lib/` (the stacks)
 * and `lambdas/` (the handlers) above it, the local platform above those, the command line on top.
 * A room may import from its own layer and the ones below, never upward.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  shared: ['shared'],
  lib: ['shared', 'lib'],
  lambdas: ['shared', 'lambdas'],
  local: ['shared', 'lib', 'lambdas', 'local'],
  cli: ['shared', 'lib', 'local', 'cli'],
  bin: ['shared', 'lib', 'local', 'cli', 'bin'],
};

/** Inside `shared/`, generic modules that the domain modules build on, and what they must not import. */
const SHARED_LOWER: Readonly<Record<string, readonly string[]>> = {
  'shared/http': ['shared/inference'],
  'shared/monitoring': ['shared/drift'],
  'shared/registry': ['shared/drift'],
};

const ALIASES: Readonly<Record<string, string>> = {
  '#shared/': 'shared/',
  '#lib/': 'lib/',
  '#lambdas/': 'lambdas/',
  '#local/': 'local/',
  '#cli/': 'cli/',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The repository files a module imports (static, dynamic and type-only), as paths from the root. */
function importsOf(file: string, source: string): string[] {
  const specifiers = [
    ...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm),
  ].map((match) => match[1]!);
  return specifiers.flatMap((specifier) => {
    const alias = Object.keys(ALIASES).find((prefix) => specifier.startsWith(prefix));
    if (alias) return [ALIASES[alias] + specifier.slice(alias.length)];
    if (specifier.startsWith('.')) return [posix.normalize(posix.join(posix.dirname(file), specifier))];
    return [];
  });
}

const room = (path: string) => path.split('/')[0]!;

const graph = new Map(
  Object.keys(MAY_IMPORT)
    .flatMap(sourceFiles)
    .map((file) => [file, importsOf(file, readFileSync(join(ROOT, file), 'utf8'))] as const),
);

describe('layers', () => {
  it('reads every room', () => {
    for (const name of Object.keys(MAY_IMPORT)) {
      expect(
        [...graph.keys()].some((file) => room(file) === name),
        name,
      ).toBe(true);
    }
  });

  it('no room imports from a room above it', () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      targets
        .filter((target) => !MAY_IMPORT[room(file)]!.includes(room(target)))
        .map((target) => `${file} imports ${target}`),
    );
    expect(upward).toEqual([]);
  });

  it("shared/'s generic modules do not import the domain modules built on them", () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      Object.entries(SHARED_LOWER)
        .filter(([lower]) => file.startsWith(`${lower}/`))
        .flatMap(([, above]) =>
          targets
            .filter((target) => above.some((dir) => target.startsWith(`${dir}/`)))
            .map((target) => `${file} imports ${target}`),
        ),
    );
    expect(upward).toEqual([]);
  });

  it('no module imports itself through a circle of imports', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(circles).toEqual([]);
  });

  it('resolves aliases and relative paths', () => {
    expect(
      importsOf(
        'cli/commands/up.ts',
        "import { a } from '#local/api.ts';\nimport type { B } from '../output.ts';\nconst c = await import('./x.ts');\nimport 'node:fs';",
      ),
    ).toEqual(['local/api.ts', 'cli/output.ts', 'cli/commands/x.ts']);
  });
});
