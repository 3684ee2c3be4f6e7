import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { FUNCTION_BUNDLING, ONNXRUNTIME_PACKAGE } from '#lib/bundling.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { builtNameOf, ENVIRONMENT_SOURCE, FUNCTIONS_BUILD_DIR } from '#local/lambda/function-build.ts';
import { buildEsm } from './esm-build.ts';

/**
 * Builds what the local platform runs of each function (local/lambda/function-build.ts): every module
 * of lambdas/ (the handlers, the ECS container) bundled as `cdk deploy` bundles them, for this
 * machine's Node.js, and the environment runner that imports them. `npm ci` runs it, as it builds the
 * CLI; a source edited since makes the build stale, and the platform runs the sources through tsx.
 */

/** Files that change how the sources resolve or compile without being inputs of the bundle: this one too. */
const CONFIG_FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'lib/bundling.ts',
  'scripts/build-functions.ts',
  'scripts/build-manifest.mjs',
  'scripts/esm-build.ts',
];

/** Every module of lambdas/ (relative to the repository): the handlers and the ECS container. */
export function functionSources(): string[] {
  return readdirSync(join(REPO_ROOT, 'lambdas'), { withFileTypes: true })
    .filter((dir) => dir.isDirectory())
    .flatMap((dir) =>
      readdirSync(join(REPO_ROOT, 'lambdas', dir.name)).map((file) => `lambdas/${dir.name}/${file}`),
    )
    .filter((source) => source.endsWith('.ts'));
}

/**
 * Builds `sources` (relative to the repository) and the environment runner into `outdir`, replacing
 * what was there; returns esbuild's metafile.
 */
export async function buildLocalFunctions(
  outdir = FUNCTIONS_BUILD_DIR,
  sources = functionSources(),
): Promise<Metafile> {
  return buildEsm(outdir, {
    entryPoints: Object.fromEntries(
      [ENVIRONMENT_SOURCE, ...sources].map((source) => [builtNameOf(source), join(REPO_ROOT, source)]),
    ),
    mainFields: [...FUNCTION_BUNDLING.mainFields],
    banner: { js: FUNCTION_BUNDLING.banner },
    minify: FUNCTION_BUNDLING.minify,
    keepNames: FUNCTION_BUNDLING.keepNames,
    sourcesContent: FUNCTION_BUNDLING.sourcesContent,
    external: [ONNXRUNTIME_PACKAGE],
    configFiles: CONFIG_FILES,
  });
}
