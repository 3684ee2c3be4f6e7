import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Metafile, Plugin } from 'esbuild';
import { REPO_ROOT } from '#lib/paths.ts';
import { buildEsm } from './esm-build.ts';

/**
 * Builds the command line (bin/keel.ts and what it imports) into one ES module and its lazily loaded
 * chunks, packages left in node_modules, so that `keel` starts without transpiling TypeScript and loads a command's heavy packages
 * (aws-cdk-lib, the AWS SDK, onnxruntime, the embedded servers) only when that command runs.
 * `npm ci` runs it (the `prepare` script); bin/keel.mjs runs the build while no source is newer.
 */

/**
 * Where bin/keel.mjs looks for the build: its entry keel.js, and the manifest of what the build read
 * (scripts/build-manifest.mjs), by which it tells whether a source changed since.
 */
export const CLI_BUILD_DIR = join(REPO_ROOT, 'dist', 'cli');

/** Files that change how the sources resolve or compile without being inputs of the bundle: this one too. */
const CONFIG_FILES = [
  'package.json',
  'tsconfig.json',
  'scripts/build-cli.ts',
  'scripts/build-manifest.mjs',
  'scripts/esm-build.ts',
];

/**
 * Each module keeps its own `import.meta.url` (the URL of its source file, relative to the chunk that
 * holds it): modules name files beside them through it (the storage process and the Lambda-like
 * environments spawn their own sources through tsx), and a bundled module must not take the bundle's
 * entry for its own main module. The chunks all sit in the output directory.
 */
function ownImportMetaUrl(outdir: string): Plugin {
  return {
    name: 'own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
        const source = await readFile(path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const url = relative(outdir, path).split('\\').join('/');
        return {
          // On the first line, so that the source map's lines stay the source's.
          contents: `const __keelModuleUrl = new URL(${JSON.stringify(url)}, __keelChunkUrl).href; ${source}`,
          loader: 'ts',
        };
      });
    },
  };
}

/**
 * The AWS SDK's packages are CommonJS, which Node loads faster with require() than through its ES module
 * loader (the clients `keel models list` loads: 330–430 ms imported, 150–210 ms required on Node 20;
 * 280–320 and 170–200 ms on Node 22): the build requires them. Each becomes a CommonJS module of the
 * bundle whose body requires the package when the chunk importing it loads.
 */
const REQUIRED_PACKAGES = /^@(aws-sdk|smithy)\//;
/** The metafile names such a module `keel-require:<package>`. */
export const REQUIRE_NAMESPACE = 'keel-require';

function requireCommonJs(): Plugin {
  return {
    name: 'require-commonjs',
    setup(build) {
      build.onResolve({ filter: REQUIRED_PACKAGES }, ({ path }) => ({ path, namespace: REQUIRE_NAMESPACE }));
      build.onLoad({ filter: /.*/, namespace: REQUIRE_NAMESPACE }, ({ path }) => ({
        contents: `module.exports = __keelRequire(${JSON.stringify(path)});`,
        loader: 'js',
      }));
    },
  };
}

/** Builds the CLI into `outdir` (replacing what was there); returns esbuild's metafile. */
export async function buildCli(outdir = CLI_BUILD_DIR): Promise<Metafile> {
  return buildEsm(outdir, {
    entryPoints: { keel: join(REPO_ROOT, 'bin', 'keel.ts') },
    // Packages (onnxruntime's native addon, aws-cdk-lib, the SDK) load from node_modules at run time;
    // dynamic imports become chunks loaded when a command runs, with the packages they import.
    packages: 'external',
    // The banner is outside the modules, where `define` does not reach.
    banner: {
      js:
        "import { createRequire as __keelCreateRequire } from 'node:module'; " +
        'const __keelChunkUrl = import.meta.url; const __keelRequire = __keelCreateRequire(__keelChunkUrl);',
    },
    define: { 'import.meta.url': '__keelModuleUrl' },
    plugins: [ownImportMetaUrl(outdir), requireCommonJs()],
    sourcesContent: false,
    configFiles: CONFIG_FILES,
    ignoredInputs: new RegExp(`^${REQUIRE_NAMESPACE}:`),
  });
}
