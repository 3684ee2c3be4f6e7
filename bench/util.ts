/**
 * Small helpers shared by the benchmark modules: latency summaries, rounding, free ports, and a
 * process-wide cleanup list so that temp directories and child processes go away even when the run
 * fails or is interrupted.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface LatencySummary {
  calls: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
}

/** Nearest-rank quantile of a sorted array. */
export function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarize(samplesUs: Float64Array): LatencySummary {
  const sorted = Float64Array.from(samplesUs).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    calls: sorted.length,
    p50Us: round(quantile(sorted, 0.5)),
    p90Us: round(quantile(sorted, 0.9)),
    p99Us: round(quantile(sorted, 0.99)),
    meanUs: round(sum / sorted.length),
    maxUs: round(sorted[sorted.length - 1] ?? 0),
  };
}

let gc: (() => void) | undefined;
/** A full garbage collection, so that one section's garbage is not collected during the next one. */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * Times `fn` sequentially: `warmup` untimed calls, then `calls` timed ones (µs each). One call at a time,
 * as a Lambda serves requests.
 */
export async function timeCalls(
  fn: (i: number) => unknown,
  { calls, warmup }: { calls: number; warmup: number },
): Promise<LatencySummary> {
  for (let i = 0; i < warmup; i++) await fn(i);
  collectGarbage();
  const samples = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await fn(i);
    samples[i] = (performance.now() - start) * 1000;
  }
  return summarize(samples);
}

/** Calls `onLine` with each complete line a stream (a child's stdout) writes. */
export function onLines(stream: Readable, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
}

export { freePort } from '#local/free-port.ts';

/** Resident memory of a process from /proc (Linux), in MiB; null elsewhere. */
export function processRssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : round(Number(kb) / 1024, 1);
  } catch {
    return null;
  }
}

/** CPU time (jiffies) of the whole machine and of this process tree, from /proc (Linux). */
export interface CpuSnapshot {
  total: number;
  busy: number;
  ours: number;
}

function procStat(pid: string): { ppid: number; cpu: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // state ppid … utime(12) stime(13) cutime(14) cstime(15), counted from `state` = 0.
    return { ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/**
 * The machine's CPU counters and the CPU used by this process and its live descendants (children that
 * exited and were reaped count in their parent's cutime/cstime). Null where /proc is missing.
 */
export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const busy = total - v[3]! - v[4]!;
    const stats = new Map<number, { ppid: number; cpu: number }>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const stat = procStat(name);
      if (stat) stats.set(Number(name), stat);
    }
    const children = new Map<number, number[]>();
    for (const [pid, { ppid }] of stats) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    let ours = 0;
    const queue = [process.pid];
    while (queue.length > 0) {
      const pid = queue.pop()!;
      ours += stats.get(pid)?.cpu ?? 0;
      queue.push(...(children.get(pid) ?? []));
    }
    return { total, busy, ours };
  } catch {
    return null;
  }
}

/** Share of the machine's CPU (0–1, all cores) used by other processes between two snapshots. */
export function otherCpuShare(before: CpuSnapshot | null, after: CpuSnapshot | null): number | null {
  if (!before || !after || after.total <= before.total) return null;
  const other = after.busy - before.busy - (after.ours - before.ours);
  return round(Math.max(0, other) / (after.total - before.total), 3);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `url` until it answers 2xx, the child exits, or the deadline passes. */
export async function waitForHttp(
  url: string,
  { timeoutMs, child }: { timeoutMs: number; child?: ChildProcess },
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`the server exited (code ${child.exitCode})`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 2xx within ${timeoutMs} ms`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------------
// Cleanup that survives failures: temp directories and child processes registered here are removed /
// killed on normal exit, on an uncaught error and on SIGINT/SIGTERM.

const children = new Set<ChildProcess>();
const directories = new Set<string>();
let installed = false;

function cleanupNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupNow();
      process.exit(130);
    });
  }
}

/** Kills `child` (SIGKILL) if it is still running when this process ends. */
export function trackChild(child: ChildProcess): ChildProcess {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Removes `directory` when this process ends, unless {@link removeDirectory} did it first. */
export function trackDirectory(directory: string): string {
  install();
  directories.add(directory);
  return directory;
}

export function removeDirectory(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
  directories.delete(directory);
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}
