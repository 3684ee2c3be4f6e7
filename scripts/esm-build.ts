import { rm } from 'node:fs/promises';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { REPO_ROOT } from '#lib/paths.ts';
import { writeBuildManifest } from './build-manifest.mjs';

/**
 * An esbuild build of the repository's TypeScript into ES modules for the Node.js that runs it here
 * (20 or later) in `outdir`, replacing what was there: modules shared between entries in chunks, linked
 * source maps, and the manifest of what it read (scripts/build-manifest.mjs), by which its users tell
 * whether a source changed since. Returns esbuild's metafile.
 */
export async function buildEsm(
  outdir: string,
  options: Omit<BuildOptions, 'outdir' | 'metafile'> & {
    /** Files that change how the sources resolve or compile without being inputs of the bundle. */
    readonly configFiles: readonly string[];
    /** Inputs that are not files (a plugin's namespace). */
    readonly ignoredInputs?: RegExp;
  },
): Promise<Metafile> {
  const { configFiles, ignoredInputs, ...esbuild } = options;
  const builtAt = Date.now();
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: REPO_ROOT,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    logLevel: 'warning',
    ...esbuild,
    outdir,
    metafile: true,
  });
  writeBuildManifest(outdir, {
    root: REPO_ROOT,
    builtAt,
    metafile: result.metafile,
    configFiles,
    ignoredInputs,
  });
  return result.metafile;
}
