import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from './program.ts';

/**
 * docs/cli.md: the help page of every command and subcommand, as `keel … --help` prints it. A test
 * compares the file with this rendering, so the reference cannot fall behind the CLI. Regenerate with
 * `node_modules/.bin/tsx cli/reference.ts`.
 */
export const CLI_REFERENCE_PATH = fileURLToPath(new URL('../docs/cli.md', import.meta.url));

const WIDTH = 100;

function helpOf(command: Command): string {
  const text: string[] = [];
  command.configureOutput({ writeOut: (s) => text.push(s), getOutHelpWidth: () => WIDTH });
  command.outputHelp();
  return text.join('').trimEnd();
}

function sections(command: Command, path: string[]): string[] {
  return command.commands
    .filter((child) => child.name() !== 'help')
    .flatMap((child) => {
      const childPath = [...path, child.name()];
      return [
        `## keel ${childPath.join(' ')}\n\n${child.description()}\n\n\`\`\`text\n${helpOf(child)}\n\`\`\``,
        ...sections(child, childPath),
      ];
    });
}

export function renderCliReference(): string {
  const program = buildProgram();
  return [
    '# Command-line reference',
    '',
    '<!-- Generated from the CLI by cli/reference.ts; test/integration/cli-help.test.ts fails when it is stale. -->',
    '',
    'Run `npx keel …` from the repository root. Every command takes the global options below; `--json`',
    'prints one JSON document on stdout for scripts. Commands act on the local platform (`npm start` in',
    'another terminal, found through `KEEL_HOME`) unless `--stage NAME` names a deployed stage, whose',
    'bucket, table and API names are read from the outputs of its `Keel-NAME-*` CloudFormation stacks.',
    'Exit codes: 0 done, 1 failed (the message says what to do), 2 usage error.',
    '',
    '## keel',
    '',
    '```text',
    helpOf(program),
    '```',
    '',
    sections(program, []).join('\n\n'),
    '',
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(CLI_REFERENCE_PATH, renderCliReference());
  process.stdout.write(`wrote ${CLI_REFERENCE_PATH}\n`);
}
