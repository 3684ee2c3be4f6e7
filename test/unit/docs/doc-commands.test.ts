import { describe, expect, it } from 'vitest';
import { extractDocCommands, HARDCODED_API_PORT, localizeCommand } from '../../support/doc-commands.ts';

const doc = (...lines: string[]) => lines.join('\n');

describe('extractDocCommands', () => {
  it('splits shell blocks into whole commands: continuations, loops, expectations, comments', () => {
    const { commands, skipped } = extractDocCommands(
      'x.md',
      doc(
        'text',
        '```sh',
        '# a comment line',
        'npx keel predict c-1   # → model churn v1',
        'echo a \\',
        '  b',
        'for i in 1 2; do',
        '  echo "$i"',
        'done',
        '```',
        '```json',
        '{"not": "a command"}',
        '```',
      ),
    );
    expect(skipped).toEqual([]);
    expect(commands).toEqual([
      { file: 'x.md', line: 4, text: 'npx keel predict c-1', expect: ['model churn v1'] },
      { file: 'x.md', line: 5, text: 'echo a \\\n  b', expect: [] },
      { file: 'x.md', line: 7, text: 'for i in 1 2; do\n  echo "$i"\ndone', expect: [] },
    ]);
  });

  it('lists a marked block as not run, with its reason and commands', () => {
    const { commands, skipped } = extractDocCommands(
      'x.md',
      doc('<!-- not run locally: needs an AWS account -->', '```bash', 'npx cdk deploy', '```'),
    );
    expect(commands).toEqual([]);
    expect(skipped).toEqual([
      { file: 'x.md', line: 2, reason: 'needs an AWS account', commands: ['npx cdk deploy'] },
    ]);
  });

  it('refuses a marker without a reason, away from a block, or on a non-shell block', () => {
    expect(() => extractDocCommands('x.md', doc('<!-- not run locally: -->', '```sh', 'ls', '```'))).toThrow(
      'needs a reason',
    );
    expect(() =>
      extractDocCommands('x.md', doc('<!-- not run locally: because -->', 'prose', '```sh', 'ls', '```')),
    ).toThrow('right before a shell block');
    expect(() =>
      extractDocCommands('x.md', doc('<!-- not run locally: because -->', '```json', '{}', '```')),
    ).toThrow('json block');
    expect(() => extractDocCommands('x.md', doc('```sh', 'for i in 1; do', '```'))).toThrow('never ends');
  });

  it('localizes npx keel, and leaves the API address to KEEL_PORT', () => {
    const api = `127.0.0.1:\${KEEL_PORT:-3000}`;
    expect(
      localizeCommand(`npx keel predict c-1 && curl -s ${api}/health`, { keelBin: '/r/bin/keel.mjs' }),
    ).toBe(`node "/r/bin/keel.mjs" predict c-1 && curl -s ${api}/health`);
    expect(HARDCODED_API_PORT.test(`curl -s ${api}/health`)).toBe(false);
    expect(HARDCODED_API_PORT.test('curl -s 127.0.0.1:3000/health')).toBe(true);
    expect(HARDCODED_API_PORT.test('curl -s localhost:3000')).toBe(true);
    expect(HARDCODED_API_PORT.test('keel data generate --rows 3000')).toBe(false);
  });
});
