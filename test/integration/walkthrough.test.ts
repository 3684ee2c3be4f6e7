import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRuntime } from '#local/running-platform.ts';
import { keelUpEnv, type RunningKeel, startKeelUp } from '../support/cli.ts';
import {
  type DocCommand,
  extractDocCommands,
  HARDCODED_API_PORT,
  localizeCommand,
} from '../support/doc-commands.ts';

/**
 * Docs that cannot rot: every shell command of the README and of the docs below runs, in order,
 * against a `keel up` started here, and must exit 0 and print what its `# → …` comment promises.
 * Blocks marked "not run locally" (deploying, operating a stage) are listed with their reasons, and
 * nothing else is left out.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = [
  'README.md',
  'docs/walkthrough.md',
  'docs/rollout.md',
  'docs/architecture.md',
  'docs/deploy.md',
  'docs/runbook.md',
  'docs/capacity-and-cost.md',
];
const documents = await Promise.all(
  DOCS.map(async (file) => extractDocCommands(file, await readFile(join(root, file), 'utf8'))),
);
const commands = documents.flatMap((d) => d.commands);
const skipped = documents.flatMap((d) => d.skipped);

const home = await mkdtemp(join(tmpdir(), 'keel-walkthrough-'));
const workDir = await mkdtemp(join(tmpdir(), 'keel-walkthrough-cwd-'));
const env = keelUpEnv(home);
let keel: RunningKeel;
/** The reader's second terminal: the KEEL_PORT the API listens on, never the default 3000. */
let commandEnv: Record<string, string>;

beforeAll(async () => {
  // The reader runs the commands from the repository root: the example files are where the docs say.
  await symlink(join(root, 'docs'), join(workDir, 'docs'));
  keel = await startKeelUp(env);
  const api = (await readRuntime(home))?.endpoints.api;
  if (!api) throw new Error(`keel up published no API endpoint:\n${keel.output()}`);
  const port = new URL(api).port;
  if (port === '3000')
    throw new Error('the API must not be on the default port: a hardcoded :3000 would pass');
  commandEnv = { ...process.env, ...env, KEEL_PORT: port } as Record<string, string>;
});

afterAll(async () => {
  if (keel) expect(await keel.stop()).toBe(0);
  await rm(home, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
});

/** Runs one documented command in bash, as a reader would in their second terminal. */
function run(command: DocCommand) {
  const text = localizeCommand(command.text, { keelBin: join(root, 'bin/keel.mjs') });
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn('bash', ['-c', text], { cwd: workDir, env: commandEnv });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command.file}:${command.line} timed out:\n${text}\n${output}`));
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('documented commands', () => {
  it('finds the walkthrough and lists what is not run locally, each with a reason', () => {
    expect(commands.filter((c) => c.file === 'docs/walkthrough.md').length).toBeGreaterThanOrEqual(20);
    for (const block of skipped) expect(block.reason.length).toBeGreaterThan(10);
    // The reader may have moved the API (KEEL_PORT=3100 npm start): commands follow it.
    for (const command of commands)
      expect(command.text, `${command.file}:${command.line}: use 127.0.0.1:\${KEEL_PORT:-3000}`).not.toMatch(
        HARDCODED_API_PORT,
      );
    console.info(
      `${commands.length} documented commands run; ${skipped.length} blocks not run locally:\n${skipped
        .map((b) => `  ${b.file}:${b.line} (${b.reason}): ${b.commands.join(' ; ')}`)
        .join('\n')}`,
    );
  });

  for (const command of commands) {
    it(`${command.file}:${command.line} ${command.text.split('\n')[0]}`, { timeout: 150_000 }, async () => {
      const { code, output } = await run(command);
      expect(code, output).toBe(0);
      for (const text of command.expect) expect(output).toContain(text);
    });
  }
});
