import { spawnSync } from 'node:child_process';

/** Fence languages whose blocks are commands: every one is either run or marked as not run locally. */
const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);

/**
 * Put on the line right before a shell block that must not run against the local platform, with the
 * reason: `<!-- not run locally: needs an AWS account -->`.
 */
const NOT_RUN_MARKER = /^<!--\s*not run locally:(.*)-->\s*$/;

/** A trailing `# → TEXT` on a command: TEXT must appear in what the command prints. */
const EXPECTATION = /\s#\s*→\s*(.+)$/;

/** One command of a document: a line, its `\` continuations, and the lines of a loop or `if` it opens. */
export interface DocCommand {
  readonly file: string;
  /** 1-based line of the command's first line. */
  readonly line: number;
  readonly text: string;
  /** Texts the output must contain. */
  readonly expect: readonly string[];
}

/** A shell block marked as not meant to run locally. */
export interface SkippedBlock {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
  readonly commands: readonly string[];
}

export interface DocCommands {
  readonly commands: DocCommand[];
  readonly skipped: SkippedBlock[];
}

/** Whether bash would need more lines to finish `text` (an open `for`, `if`, quote or `\`). */
function incomplete(text: string): boolean {
  // bash -n accepts a trailing backslash at the end of its input.
  if (text.endsWith('\\')) return true;
  const check = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
  return check.status !== 0 && /unexpected end of file|unexpected EOF/.test(check.stderr);
}

/**
 * The commands of every shell block of a Markdown document, in order. A block either runs (each of its
 * commands) or carries the not-run marker with a reason; a marker without a reason, or on anything but a
 * shell block, is an error, so nothing is skipped silently.
 */
export function extractDocCommands(file: string, markdown: string): DocCommands {
  const lines = markdown.split('\n');
  const commands: DocCommand[] = [];
  const skipped: SkippedBlock[] = [];
  let marker: { line: number; reason: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const markerMatch = NOT_RUN_MARKER.exec(line.trim());
    if (markerMatch) {
      const reason = markerMatch[1]!.trim();
      if (!reason) throw new Error(`${file}:${i + 1}: "not run locally" needs a reason after the colon`);
      marker = { line: i + 1, reason };
      continue;
    }
    const fence = /^```(\S*)/.exec(line);
    if (!fence) {
      if (marker && line.trim() !== '') {
        throw new Error(`${file}:${marker.line}: "not run locally" must come right before a shell block`);
      }
      continue;
    }
    const language = fence[1]!.toLowerCase();
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    if (end < 0) throw new Error(`${file}:${i + 1}: code block is not closed`);
    if (!SHELL_LANGUAGES.has(language)) {
      if (marker)
        throw new Error(`${file}:${marker.line}: "not run locally" is on a ${language || 'plain'} block`);
      i = end;
      continue;
    }
    const block = splitCommands(file, lines.slice(i + 1, end), i + 2);
    if (marker) {
      skipped.push({ file, line: i + 1, reason: marker.reason, commands: block.map((c) => c.text) });
    } else {
      commands.push(...block);
    }
    marker = undefined;
    i = end;
  }
  if (marker) throw new Error(`${file}:${marker.line}: "not run locally" is not followed by a shell block`);
  return { commands, skipped };
}

/** Splits a block's lines into whole commands; comment-only and blank lines are dropped. */
function splitCommands(file: string, lines: string[], firstLine: number): DocCommand[] {
  const commands: DocCommand[] = [];
  let pending: { line: number; parts: string[]; expect: string[] } | undefined;
  lines.forEach((raw, index) => {
    if (!pending && (raw.trim() === '' || raw.trim().startsWith('#'))) return;
    const expectation = EXPECTATION.exec(raw);
    const code = expectation ? raw.slice(0, expectation.index) : raw;
    pending ??= { line: firstLine + index, parts: [], expect: [] };
    pending.parts.push(code.trimEnd());
    if (expectation) pending.expect.push(expectation[1]!.trim());
    const text = pending.parts.join('\n');
    if (!incomplete(text)) {
      commands.push({ file, line: pending.line, text, expect: pending.expect });
      pending = undefined;
    }
  });
  if (pending)
    throw new Error(`${file}:${pending.line}: the command never ends: ${pending.parts.join('\n')}`);
  return commands;
}

/**
 * What the docs assume of the reader's machine, made true for a test: `npx keel` is the repository's
 * own `bin/keel.mjs`. The API's address is not rewritten: commands name it as
 * `127.0.0.1:${KEEL_PORT:-3000}`, and the test runs them with the KEEL_PORT of the API it started.
 */
export function localizeCommand(text: string, options: { keelBin: string }): string {
  return text.replaceAll(/\bnpx keel\b/g, `node ${JSON.stringify(options.keelBin)}`);
}

/** A command that names the API on port 3000 itself, instead of `${KEEL_PORT:-3000}`. */
export const HARDCODED_API_PORT = /:3000\b/;
