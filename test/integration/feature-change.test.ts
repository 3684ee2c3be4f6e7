import { execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRuntime } from '#local/running-platform.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import { keelUpEnv, type RunningKeel, startKeelUp } from '../support/cli.ts';
import { extractDocCommands, localizeCommand } from '../support/doc-commands.ts';

/**
 * docs/bring-your-own-model.md, "Changing the features: the procedure", performed as written: in a copy
 * of this repository, against a `keel up` started from it before the change, with requests running the
 * whole time. Its `diff` blocks are applied with `git apply`, its shell commands run in order. Every
 * answer must be 2xx and stamped with the version and feature set that produced it, and the version
 * rolled back to must answer exactly as it did before the change.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const DOC = 'docs/bring-your-own-model.md';
const SECTION = '### Changing the features: the procedure';

type Step =
  | { readonly kind: 'patch'; readonly line: number; readonly text: string }
  | {
      readonly kind: 'command';
      readonly line: number;
      readonly text: string;
      readonly expect: readonly string[];
    };

/** The section's diff blocks and shell commands, in document order. */
function procedureSteps(markdown: string): Step[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(SECTION);
  if (start < 0) throw new Error(`${DOC} has no "${SECTION}"`);
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line));
  const steps: Step[] = [];
  for (let i = start; i < (end < 0 ? lines.length : end); i++) {
    const fence = /^```(\S+)/.exec(lines[i]!);
    if (!fence) continue;
    const close = lines.findIndex((line, j) => j > i && line.startsWith('```'));
    const body = lines.slice(i + 1, close);
    if (fence[1] === 'diff') steps.push({ kind: 'patch', line: i + 1, text: `${body.join('\n')}\n` });
    if (fence[1] === 'sh') {
      const block = extractDocCommands(DOC, ['```sh', ...body, '```'].join('\n'));
      for (const command of block.commands)
        steps.push({ kind: 'command', line: i + command.line, text: command.text, expect: command.expect });
    }
    i = close;
  }
  return steps;
}

interface Answer {
  readonly at: number;
  readonly status: number;
  readonly customerId: string;
  readonly version?: string;
  readonly fingerprint?: string;
  readonly featureSetVersion?: string;
  readonly probability?: number;
  readonly error?: string;
}

const project = await mkdtemp(join(tmpdir(), 'keel-feature-change-'));
const home = join(project, '.keel');
const env = keelUpEnv(home, { KEEL_BOOTSTRAP_ROWS: '20000' });
const steps = procedureSteps(await readFile(join(root, DOC), 'utf8'));
const answers: Answer[] = [];
let keel: RunningKeel;
let api: string;
let traffic: Promise<void> | undefined;
let stopTraffic = false;

/** The reader's working copy: every file git tracks or would track, and the installed packages. */
async function copyRepository(): Promise<void> {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root })
    .toString()
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    await mkdir(dirname(join(project, file)), { recursive: true });
    await copyFile(join(root, file), join(project, file)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error; // deleted in the working tree, not yet in the index
    });
  }
  await symlink(join(root, 'node_modules'), join(project, 'node_modules'));
}

/** Two clients asking for 50 stored customers in turn until told to stop (bounded: 15 minutes). */
async function sendTraffic(): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  const client = async (offset: number) => {
    for (let i = offset; !stopTraffic && Date.now() < deadline; i += 2) {
      const customerId = `c-${String((i % 50) + 1).padStart(6, '0')}`;
      const at = Date.now();
      try {
        const response = await fetch(`${api}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ customerId }),
        });
        const body = (await response.json()) as {
          model?: { version?: string };
          probability?: number;
          featureSet?: { version: string; fingerprint: string };
        };
        answers.push({
          at,
          status: response.status,
          customerId,
          version: body.model?.version,
          probability: body.probability,
          fingerprint: body.featureSet?.fingerprint,
          featureSetVersion: body.featureSet?.version,
        });
      } catch (error) {
        answers.push({ at, status: 0, customerId, error: String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await Promise.all([client(0), client(1)]);
}

/** Waits until the API answers with `version` for a request sent after `since` (bounded). */
async function servedAfter(version: string, since: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!answers.some((a) => a.at > since && a.version === version)) {
    if (Date.now() > deadline) throw new Error(`the API did not serve ${version} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function run(text: string): Promise<{ code: number | null; output: string }> {
  const command = localizeCommand(text, { keelBin: join(project, 'bin/keel.mjs') });
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], {
      cwd: project,
      env: { ...process.env, ...env, KEEL_PORT: new URL(api).port } as Record<string, string>,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out:\n${command}\n${output}`));
    }, 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

beforeAll(async () => {
  await copyRepository();
  keel = await startKeelUp(env, undefined, 180_000, join(project, 'bin/keel.mjs'));
  const endpoint = (await readRuntime(home))?.endpoints.api;
  if (!endpoint) throw new Error(`keel up published no API endpoint:\n${keel.output()}`);
  api = endpoint;
  traffic = sendTraffic();
  // Every customer answered by v1 before anything changes: what the rollback must give back.
  const deadline = Date.now() + 30_000;
  while (new Set(answers.filter((a) => a.version === 'v1').map((a) => a.customerId)).size < 50) {
    if (Date.now() > deadline)
      throw new Error(`v1 did not answer for every customer: ${JSON.stringify(answers.slice(-3))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 240_000);

afterAll(async () => {
  stopTraffic = true;
  await traffic;
  if (keel) expect(await keel.stop()).toBe(0);
  await rm(project, { recursive: true, force: true });
});

describe('changing the features, as documented, with requests running', () => {
  it('finds the procedure: two edits, then the commands', () => {
    expect(steps.filter((s) => s.kind === 'patch')).toHaveLength(2);
    expect(steps.map((s) => s.kind === 'command' && s.text).filter(Boolean)).toEqual(
      expect.arrayContaining([expect.stringContaining('keel train --promote')]),
    );
  });

  it('runs every step, and no request fails', { timeout: 900_000 }, async () => {
    const before = Date.now();
    let rolledBackAt = Number.POSITIVE_INFINITY;
    for (const step of steps) {
      const where = `${DOC}:${step.line}`;
      if (step.kind === 'patch') {
        const patch = join(project, '.feature-change.patch');
        await writeFile(patch, step.text);
        const applied = await run(`git apply --verbose ${patch}`);
        expect(applied.code, `${where}: the documented diff does not apply\n${applied.output}`).toBe(0);
        continue;
      }
      const started = Date.now();
      const { code, output } = await run(step.text);
      expect(code, `${where}: ${step.text}\n${output}`).toBe(0);
      for (const text of step.expect) expect(output, `${where}: ${step.text}`).toContain(text);
      if (/train --promote|models promote v2/.test(step.text)) await servedAfter('v2', started);
      if (/models rollback/.test(step.text)) {
        rolledBackAt = started;
        await servedAfter('v1', started);
      }
    }
    // The last promotion is served for a while before the traffic stops.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    stopTraffic = true;
    await traffic;

    const failed = answers.filter((a) => a.status !== 200);
    expect(failed.slice(0, 5), `${failed.length} of ${answers.length} requests failed`).toEqual([]);
    expect(answers.length).toBeGreaterThan(500);

    // Every answer names the version and the feature set that produced it: v1 the code's original
    // definition, v2 the changed one.
    const stamps = (version: string) =>
      new Set(
        answers.filter((a) => a.version === version).map((a) => `${a.featureSetVersion} ${a.fingerprint}`),
      );
    expect(new Set(answers.map((a) => a.version))).toEqual(new Set(['v1', 'v2']));
    expect(stamps('v1')).toEqual(new Set([`${FEATURE_SET.version} ${FEATURE_SET.fingerprint}`]));
    const [v2Stamp, ...others] = stamps('v2');
    expect(others).toEqual([]);
    expect(v2Stamp).toMatch(/^1\.1\.0 sha256:[0-9a-f]{64}$/);
    expect(v2Stamp).not.toContain(FEATURE_SET.fingerprint);

    // v1 rolled back to answers exactly as before the change, customer by customer.
    const v1Before = new Map(
      answers.filter((a) => a.at < before && a.version === 'v1').map((a) => [a.customerId, a.probability]),
    );
    const v1After = answers.filter((a) => a.at > rolledBackAt && a.version === 'v1');
    expect(v1After.length).toBeGreaterThan(10);
    for (const answer of v1After)
      expect(answer.probability, answer.customerId).toBe(v1Before.get(answer.customerId));
  });
});
