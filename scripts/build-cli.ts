import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile, Plugin } from 'esbuild';

/**
 * Builds the command line (bin/keel.ts and what it imports) into one ES module and its lazily loaded
 * chunks, so that `keel` starts without transpiling TypeScript and loads a command's heavy packages
 * (aws-cdk-lib, the AWS SDK, onnxruntime, the embedded servers) only when that command runs.
 * `npm ci` runs it (the `prepare` script); bin/keel.mjs runs the build while no source is newer.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Where bin/keel.mjs looks for the build: its entry keel.js, and {@link CLI_MANIFEST}. */
export const CLI_BUILD_DIR = join(ROOT, 'dist', 'cli');
/** What the build read, for bin/keel.mjs to tell whether a source changed since (in {@link CLI_BUILD_DIR}). */
export const CLI_MANIFEST = 'build.json';

export interface CliManifest {
  /** When the build started (ms since the epoch): a source modified later makes the build stale. */
  readonly builtAt: number;
  /** Every file the build read, relative to the manifest's directory. */
  readonly inputs: readonly string[];
}

/** Files that change how the sources resolve or compile without being inputs of the bundle. */
const CONFIG_FILES = ['package.json', 'tsconfig.json'];

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

/** Builds the CLI into `outdir` (replacing what was there); returns esbuild's metafile. */
export async function buildCli(outdir = CLI_BUILD_DIR): Promise<Metafile> {
  const { build } = await import('esbuild');
  const builtAt = Date.now();
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { keel: join(ROOT, 'bin', 'keel.ts') },
    outdir,
    bundle: true,
    // Dynamic imports become chunks loaded when a command runs, with the packages they import.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Packages (onnxruntime's native addon, aws-cdk-lib, the SDK) load from node_modules at run time.
    packages: 'external',
    // The banner is outside the modules, where `define` does not reach.
    banner: { js: 'const __keelChunkUrl = import.meta.url;' },
    define: { 'import.meta.url': '__keelModuleUrl' },
    plugins: [ownImportMetaUrl(outdir)],
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
  });
  const inputs = [...Object.keys(result.metafile.inputs), ...CONFIG_FILES].map((file) =>
    relative(outdir, join(ROOT, file)).split('\\').join('/'),
  );
  const manifest: CliManifest = { builtAt, inputs };
  await writeFile(join(outdir, CLI_MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  return result.metafile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await import('esbuild');
  } catch {
    // `npm ci --omit=dev` leaves esbuild out: bin/keel.mjs then runs the sources through tsx.
    process.stdout.write('esbuild is not installed: keel runs its TypeScript through tsx\n');
    process.exit(0);
  }
  const started = performance.now();
  await buildCli();
  process.stdout.write(
    `built the CLI into ${relative(ROOT, CLI_BUILD_DIR)} in ${Math.round(performance.now() - started)} ms\n`,
  );
}
