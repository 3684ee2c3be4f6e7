import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '#lib/paths.ts';
import { localConfigFile } from '#shared/config/keel-config.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import type { Template } from './intrinsics.ts';

/** What synthesis depends on: the CDK code, what it imports, the stage configs and the feature flags. */
const SOURCES = ['lib', 'shared', 'config', 'cdk.json', 'package-lock.json'];

function sourceFiles(path: string): string[] {
  const full = join(REPO_ROOT, path);
  if (!existsSync(full)) return [];
  if (statSync(full).isFile()) return [path];
  return readdirSync(full, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(REPO_ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * A digest of every file synthesis reads (with a configuration file named outside `config/`): a cached
 * assembly is reused only while it is unchanged.
 */
function sourceDigest(stage: string, configFile: string | undefined): string {
  const hash = createHash('sha256').update(stage);
  for (const file of SOURCES.flatMap(sourceFiles)) {
    hash.update(file).update(readFileSync(join(REPO_ROOT, file)));
  }
  if (configFile !== undefined) {
    const path = resolve(REPO_ROOT, configFile);
    hash.update(path).update(existsSync(path) ? readFileSync(path) : '');
  }
  return hash.digest('hex').slice(0, 24);
}

/**
 * The templates of every stack of the local stage, as `cdk synth -c stage=local` would write them
 * (no function is bundled: the local platform runs the handlers' sources). Synthesis takes seconds, so
 * the result is cached under node_modules/.cache/keel, keyed by a digest of the sources it reads.
 */
export async function synthesizeLocalStage(
  stage = LOCAL_ENVIRONMENT.stage,
): Promise<Readonly<Record<string, Template>>> {
  const cacheDir = join(REPO_ROOT, 'node_modules', '.cache', 'keel');
  // The local stage's file may be another than config/local.json (KEEL_CONFIG).
  const configFile = stage === LOCAL_ENVIRONMENT.stage ? localConfigFile() : undefined;
  const cached = join(cacheDir, `stage-${stage}-${sourceDigest(stage, configFile)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as Record<string, Template>;

  const [{ App }, { addKeelStacks }, { loadKeelConfig: load }] = await Promise.all([
    import('aws-cdk-lib'),
    import('#lib/keel-app.ts'),
    import('#shared/config/keel-config.ts'),
  ]);
  const outdir = mkdtempSync(join(tmpdir(), 'keel-synth-'));
  try {
    // The feature flags of cdk.json, as `cdk synth` would apply them.
    const { context } = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    };
    const app = new App({ outdir, context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const config = load({ root: REPO_ROOT, stage, file: configFile });
    const env = { account: LOCAL_ENVIRONMENT.account, region: LOCAL_ENVIRONMENT.region };
    addKeelStacks(app, { stage, env, config });
    const assembly = app.synth();
    const templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template as Template]));
    mkdirSync(cacheDir, { recursive: true });
    for (const old of readdirSync(cacheDir).filter((f) => f.startsWith(`stage-${stage}-`))) {
      rmSync(join(cacheDir, old), { force: true });
    }
    // Written whole, then renamed: a concurrent reader never sees half a file.
    const partial = `${cached}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(templates));
    renameSync(partial, cached);
    return templates;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
