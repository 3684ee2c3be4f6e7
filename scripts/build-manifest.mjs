// What a build under dist/ read, and whether it is still current. Plain JavaScript: bin/keel.mjs asks
// before it can load TypeScript; the local platform asks before it starts a function from its build.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The manifest's file name in a build's folder. */
export const BUILD_MANIFEST = 'build.json';

/**
 * Writes the manifest of a build into `outdir`: when it started and every file it read (relative to
 * `outdir`), the metafile's inputs outside node_modules plus `configFiles` (relative to `root`), which
 * change how the sources resolve or compile without being inputs. Packages count through the lockfile:
 * `npm ci` rebuilds after it.
 */
export function writeBuildManifest(outdir, { root, builtAt, metafile, configFiles, ignoredInputs = /^$/ }) {
  const sources = Object.keys(metafile.inputs).filter(
    (input) => !input.includes('node_modules/') && !ignoredInputs.test(input),
  );
  const inputs = [...sources, ...configFiles].map((file) =>
    relative(outdir, join(root, file)).split('\\').join('/'),
  );
  writeFileSync(join(outdir, BUILD_MANIFEST), `${JSON.stringify({ builtAt, inputs }, null, 1)}\n`);
}

/** True while `dir` holds a build whose manifest's files all exist and none changed after the build started. */
export function buildIsCurrent(dir) {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(join(dir, BUILD_MANIFEST), 'utf8'));
    return inputs.every((input) => statSync(join(dir, input)).mtimeMs <= builtAt);
  } catch {
    return false; // no build, or a file it read is gone
  }
}
