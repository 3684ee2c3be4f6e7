import { readFile } from 'node:fs/promises';
import { type Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '#cli/program.ts';
import { CLI_REFERENCE_PATH, renderCliReference } from '#cli/reference.ts';
import { runKeel } from '../support/cli.ts';

/** Every command of the CLI, as `[path, command]`, parents before children. */
function commandsOf(command: Command, path: string[] = []): [string[], Command][] {
  return command.commands.flatMap((child) => {
    const childPath = [...path, child.name()];
    return [[childPath, child] as [string[], Command], ...commandsOf(child, childPath)];
  });
}

/** Runs `keel ...args` in process and returns what it printed and how commander exited. */
async function inProcess(args: string[]): Promise<{ exitCode: number; out: string; err: string }> {
  const program = buildProgram();
  const out: string[] = [];
  const err: string[] = [];
  const capture = { writeOut: (s: string) => out.push(s), writeErr: (s: string) => err.push(s) };
  for (const command of [program, ...commandsOf(program).map(([, c]) => c)]) command.configureOutput(capture);
  let exitCode = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    exitCode = error.exitCode;
  }
  return { exitCode, out: out.join(''), err: err.join('') };
}

const ALL = commandsOf(buildProgram());
// The commands of docs/architecture.md, "Command line" (every registered command is checked below).
const DOCUMENTED = [
  'up',
  'data',
  'etl',
  'features',
  'train',
  'batch',
  'drift',
  'quality',
  'models',
  'predict',
  'alarms',
];

describe('keel --help', { timeout: 60_000 }, () => {
  it('lists every documented command with its description (real process)', async () => {
    const result = await runKeel(['--help'], {});
    expect(result.code).toBe(0);
    const top = buildProgram().commands;
    expect(top.map((c) => c.name())).toEqual(expect.arrayContaining(DOCUMENTED));
    for (const command of top) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command.name()}\\b`, 'm'));
      expect(result.stdout.replace(/\s+/g, ' ')).toContain(command.description().slice(0, 30));
    }
    expect(result.stdout).toContain('--json');
  });

  it('gives every command and subcommand a description, a help page and its options', async () => {
    expect(ALL.length).toBeGreaterThan(20);
    for (const [path, command] of ALL) {
      if (path.at(-1) === 'help') continue;
      expect(command.description().length, path.join(' ')).toBeGreaterThan(10);
      const { exitCode, out } = await inProcess([...path, '--help']);
      expect(exitCode, path.join(' ')).toBe(0);
      expect(out).toContain(`Usage: keel ${path.join(' ')}`);
      for (const option of command.options)
        expect(out, `${path.join(' ')} ${option.flags}`).toContain(option.flags);
      for (const argument of command.registeredArguments) expect(out).toContain(argument.name());
    }
  });

  it('shows examples where a command takes arguments worth an example', async () => {
    for (const path of [['predict'], ['train'], ['models'], ['models', 'register'], ['data', 'generate']]) {
      const { out } = await inProcess([...path, '--help']);
      expect(out, path.join(' ')).toMatch(new RegExp(`\\n  \\$ keel ${path.join(' ')}`));
    }
  });

  it('has docs/cli.md, the help page of every command, up to date', async () => {
    const reference = renderCliReference();
    for (const [path] of ALL.filter(([p]) => p.at(-1) !== 'help'))
      expect(reference).toContain(`## keel ${path.join(' ')}\n`);
    expect(
      await readFile(CLI_REFERENCE_PATH, 'utf8'),
      'docs/cli.md is stale: run node_modules/.bin/tsx cli/reference.ts',
    ).toBe(reference);
  });

  it('exits 2 on an unknown command, suggesting the nearest one', async () => {
    const top = await runKeel(['modles'], {});
    expect(top.code).toBe(2);
    expect(top.stderr).toContain("unknown command 'modles'");
    expect(top.stderr).toContain('Did you mean models?');
    const sub = await inProcess(['models', 'regster']);
    expect(sub.exitCode).not.toBe(0);
    expect(sub.err).toContain('Did you mean register?');
  });

  it('exits 2 on a missing required option or a bad value, naming it', async () => {
    const missing = await runKeel(['models', 'register', '--onnx', 'm.onnx'], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--metadata <file>' not specified");
    const bad = await inProcess(['data', 'generate', '--rows', 'many']);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.err).toContain('--rows must be an integer, got "many"');
  });
});
