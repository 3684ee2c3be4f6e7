import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEEL = fileURLToPath(new URL('../../bin/keel.mjs', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `keel ARGS` to completion as a user would from another terminal. */
export function runKeel(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KEEL, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keel ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment of a test's `keel up`: state in `home`, ports the system picks, a small bootstrap,
 * schedules off (an hourly drift or daily batch run would race the test's own steps).
 */
export function keelUpEnv(home: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    KEEL_HOME: home,
    KEEL_PORT: '0',
    KEEL_S3_PORT: '0',
    KEEL_DYNAMODB_PORT: '0',
    KEEL_BOOTSTRAP_ROWS: '2000',
    KEEL_SCHEDULES: 'off',
    ...overrides,
  };
}

/** A `keel up` in the background, resolved once it prints that it is running. */
export interface RunningKeel {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  /** Sends SIGINT (Ctrl-C) and waits for the exit code. */
  stop(): Promise<number | null>;
}

export function startKeelUp(
  env: Record<string, string>,
  readyPattern = /Keel is running/,
  timeoutMs = 120_000,
  /** The `bin/keel.mjs` to run, and its directory as the working directory: another checkout's. */
  keelBin = KEEL,
) {
  return new Promise<RunningKeel>((resolve, reject) => {
    const child = spawn(process.execPath, [keelBin, 'up'], {
      env: { ...process.env, ...env },
      cwd: dirname(dirname(keelBin)),
    });
    let output = '';
    const running: RunningKeel = {
      child,
      output: () => output,
      stop: () =>
        new Promise((done) => {
          if (child.exitCode !== null) return done(child.exitCode);
          child.once('close', (code) => done(code));
          child.kill('SIGINT');
        }),
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keel up was not ready after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (readyPattern.test(output)) {
        clearTimeout(timer);
        resolve(running);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`keel up exited with ${code} before it was ready:\n${output}`));
    });
  });
}
