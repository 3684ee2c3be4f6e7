import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '#lib/paths.ts';
import { buildCli, REQUIRE_NAMESPACE } from '#scripts/build-cli.ts';
import { BUILD_MANIFEST, type BuildManifest } from '#scripts/build-manifest.mjs';
import { publishRuntime, startTestAws, type TestAws } from '../support/aws.ts';

/**
 * How `keel` starts (bin/keel.mjs): from the build `npm ci` makes while no file it was built from has
 * changed, else from the TypeScript through tsx; either way a command's heavy packages (the AWS SDK,
 * aws-cdk-lib, onnxruntime, the embedded servers) load only when that command runs, so `keel --help`
 * and a command that stops early start in a fraction of a second. Measured in bench/cli-start.ts.
 */

/** The packages a start may load before a command's action runs. */
const START_PACKAGES = ['commander', 'zod'];
/** What `keel models list` needs none of: pipelines, synthesis, the model runtime, the servers, tsx. */
const NOT_FOR_MODELS_LIST = [
  'aws-local-stepfunctions',
  'aws-cdk-lib',
  'onnxruntime-node',
  'dynalite',
  's3rver',
  '@cloud-copilot/iam-simulate',
  'tsx',
];

/** The package a module specifier or file URL names, if it is one. */
function packageOf(specifier: string): string | undefined {
  const path = specifier.includes('/node_modules/') ? specifier.split('/node_modules/').at(-1)! : specifier;
  if (/^(node:|\.|\/|file:|data:)/.test(path)) return undefined;
  const parts = path.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** The packages an output of the build loads: those it imports, and those it requires (the AWS SDK). */
function packagesOf(output: Metafile['outputs'][string]): string[] {
  const required = Object.keys(output.inputs)
    .filter((input) => input.startsWith(`${REQUIRE_NAMESPACE}:`))
    .map((input) => packageOf(input.slice(REQUIRE_NAMESPACE.length + 1))!);
  const imported = output.imports.flatMap((i) => (i.external ? (packageOf(i.path) ?? []) : []));
  return [...required, ...imported];
}

/** The packages the entry loads before anything runs: its own, and those of the chunks it imports. */
function startPackages(metafile: Metafile): Set<string> {
  const outputs = metafile.outputs;
  const entry = Object.keys(outputs).find((file) => outputs[file]!.entryPoint === 'bin/keel.ts')!;
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const name of packagesOf(outputs[file]!)) packages.add(name);
    for (const imported of outputs[file]!.imports)
      if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  visit(entry);
  return packages;
}

// A copy of the entry beside a build of its own, the sources and node_modules linked: the launcher's
// choice can be tested without touching the repository's dist/ that the other tests' `keel` runs.
let root: string;
let metafile: Metafile;
let manifest: BuildManifest;
let aws: TestAws;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'keel-start-'));
  mkdirSync(join(root, 'bin'));
  for (const file of ['bin/keel.mjs', 'bin/keel.ts', 'package.json'])
    copyFileSync(join(REPO_ROOT, file), join(root, file));
  for (const dir of ['cli', 'local', 'shared', 'lib', 'lambdas', 'scripts', 'node_modules'])
    symlinkSync(join(REPO_ROOT, dir), join(root, dir));
  metafile = await buildCli(join(root, 'dist', 'cli'));
  aws = await startTestAws();
  await publishRuntime(aws);
  manifest = JSON.parse(readFileSync(join(root, 'dist', 'cli', BUILD_MANIFEST), 'utf8')) as BuildManifest;
  // Records every module the process imports (resolve hook) or requires (the require cache at exit),
  // in the file LOADED names.
  const hooks = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.LOADED, result.url + '\\n');
  return result;
}`;
  writeFileSync(
    join(root, 'record-loads.mjs'),
    `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});
const { cache } = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(process.env.LOADED, Object.keys(cache).join('\\n')));
`,
  );
});

afterAll(async () => {
  await aws?.close();
  rmSync(root, { recursive: true, force: true });
});

let runs = 0;

/** Runs the copied `keel ARGS` (in an empty KEEL_HOME by default); what it printed and the packages it loaded. */
function keel(
  args: string[],
  home = mkdtempSync(join(root, 'home-')),
): Promise<{ code: number; stdout: string; stderr: string; loaded: string[] }> {
  const log = join(root, `loaded-${++runs}.txt`);
  writeFileSync(log, '');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', join(root, 'record-loads.mjs'), join(root, 'bin', 'keel.mjs'), ...args],
      { env: { ...process.env, LOADED: log, KEEL_HOME: home } },
      (error, stdout, stderr) => {
        const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
        const loaded = [...new Set(urls.flatMap((url) => packageOf(url) ?? []))].sort();
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr, loaded });
      },
    );
  });
}

describe('keel start-up', { timeout: 120_000 }, () => {
  it("builds an entry that imports only the command line's own packages; the rest load per command", () => {
    expect([...startPackages(metafile)].sort()).toEqual(START_PACKAGES);
    // Not vacuous: the heavy packages are in the build, behind dynamic imports.
    const everything = new Set(Object.values(metafile.outputs).flatMap(packagesOf));
    for (const heavy of ['aws-cdk-lib', '@aws-sdk/client-s3', 'onnxruntime-node', 'dynalite', 's3rver'])
      expect(everything).toContain(heavy);
  });

  it('runs the current build: `keel --help` loads commander and zod, not tsx', async () => {
    const help = await keel(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: keel [options] [command]');
    expect(help.loaded).toEqual(START_PACKAGES);
  });

  it('a command that stops early loads no AWS SDK', async () => {
    const list = await keel(['--json', 'models', 'list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('nothing is running in');
    expect(list.loaded).toEqual(START_PACKAGES);
  });

  it('`keel models list` against a running platform loads the AWS SDK, not the modules of other commands', async () => {
    const list = await keel(['--json', 'models', 'list'], aws.home);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ name: 'churn', versions: [] });
    expect(list.loaded).toEqual(expect.arrayContaining([...START_PACKAGES, '@aws-sdk/client-dynamodb']));
    for (const name of NOT_FOR_MODELS_LIST) expect(list.loaded).not.toContain(name);
  });

  it('runs the TypeScript through tsx once a file the build read is newer than the build', async () => {
    const built = await keel(['models', '--help']);
    const newest = Math.max(
      ...manifest.inputs.map((input) => statSync(join(root, 'dist', 'cli', input)).mtimeMs),
    );
    const file = join(root, 'dist', 'cli', BUILD_MANIFEST);
    writeFileSync(file, JSON.stringify({ ...manifest, builtAt: newest - 1 }));
    try {
      const source = await keel(['models', '--help']);
      expect(source.code).toBe(0);
      expect(source.loaded).toContain('tsx');
      expect(source.loaded).not.toContain('@aws-sdk/client-s3');
      expect(source.stdout).toBe(built.stdout);
    } finally {
      writeFileSync(file, JSON.stringify(manifest));
    }
  });
});
