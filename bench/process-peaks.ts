import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Peak resident memory of this process and of each process it started (the Lambda-like environments,
 * the store clients; not their own helpers, such as tsx's esbuild), each read from its own
 * `/proc/<pid>/status` (VmHWM, the kernel's high-water mark, so nothing between two samples is missed)
 * every `intervalMs` while it lives. Linux only: elsewhere only this process is known (getrusage).
 */
export interface ProcessPeak {
  readonly pid: number;
  /** What the process is: `label` of its environment, `this process`, or its command's name. */
  readonly label: string;
  readonly peakRssMb: number;
  /**
   * The largest anonymous resident memory (RssAnon: heaps, native allocations) seen in a sample. RSS
   * also counts the pages of files a process maps, such as the LevelDB tables of the embedded
   * DynamoDB, which are the kernel's page cache, reclaimable at any time. Off Linux, where only this
   * process's peak RSS is known, that RSS.
   */
  readonly peakAnonMb: number;
  /** CPU time it used (user + system) up to the last sample. */
  readonly cpuSeconds: number;
}

export interface ProcessPeaks {
  /** Every process seen so far, read again now (before the processes of interest exit), largest first. */
  snapshot(): ProcessPeak[];
  /** Stops sampling; every process seen, largest first. */
  stop(): ProcessPeak[];
  /**
   * Starts this process's peak again from its present size (the kernel's high-water mark too, through
   * `/proc/self/clear_refs`), so that work done before, such as writing a fixture, does not count.
   */
  resetSelf(): void;
}

/** The label of this process. */
export const SELF_PROCESS = 'this process';

export function watchProcessPeaks(
  /** A name for a process from its environment variables (undefined: its command's). */
  label: (environment: ReadonlyMap<string, string>, pid: number) => string | undefined,
  intervalMs = 500,
): ProcessPeaks {
  const seen = new Map<
    number,
    { label: string; named: boolean; peakKb: number; peakAnonKb: number; cpuTicks: number }
  >();
  const linux = process.platform === 'linux';
  const sample = () => {
    if (!linux) return;
    for (const pid of [process.pid, ...childrenOf(process.pid)]) {
      const status = readProc(pid, 'status') ?? '';
      const kb = statusKb(status, 'VmHWM');
      if (kb === undefined) continue;
      let entry = seen.get(pid);
      if (!entry?.named) {
        // A process the caller cannot name yet (started before it knew the pid) is asked about again.
        const named = pid === process.pid ? SELF_PROCESS : label(environmentOf(pid), pid);
        entry ??= { cpuTicks: 0, label: '', named: false, peakKb: 0, peakAnonKb: 0 };
        entry.label = named ?? readProc(pid, 'comm')?.trim() ?? `pid ${pid}`;
        entry.named = named !== undefined;
        seen.set(pid, entry);
      }
      entry.peakKb = Math.max(entry.peakKb, kb);
      entry.peakAnonKb = Math.max(entry.peakAnonKb, statusKb(status, 'RssAnon') ?? 0);
      entry.cpuTicks = cpuTicks(pid) ?? entry.cpuTicks;
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  const list = (): ProcessPeak[] => {
    sample();
    if (!linux) {
      return [
        {
          pid: process.pid,
          label: SELF_PROCESS,
          peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
          peakAnonMb: Math.round(process.resourceUsage().maxRSS / 1024),
          cpuSeconds: cpuSecondsOf(process.cpuUsage()),
        },
      ];
    }
    return [...seen]
      .map(([pid, { label, peakKb, peakAnonKb, cpuTicks }]) => ({
        pid,
        label,
        peakRssMb: Math.round(peakKb / 1024),
        peakAnonMb: Math.round(peakAnonKb / 1024),
        cpuSeconds: cpuTicks / CLOCK_TICKS,
      }))
      .sort((a, b) => b.peakRssMb - a.peakRssMb);
  };
  return {
    snapshot: list,
    resetSelf() {
      if (!linux) return;
      writeFileSync('/proc/self/clear_refs', '5');
      seen.delete(process.pid);
      sample();
    },
    stop() {
      clearInterval(timer);
      return list();
    },
  };
}

/** The largest peak of each label, how many processes had it, and the CPU time they used together. */
export function peaksByLabel(peaks: readonly ProcessPeak[]) {
  const by = new Map<
    string,
    { processes: number; peakRssMb: number; peakAnonMb: number; cpuSeconds: number }
  >();
  for (const { label, peakRssMb, peakAnonMb, cpuSeconds } of peaks) {
    const entry = by.get(label) ?? { processes: 0, peakRssMb: 0, peakAnonMb: 0, cpuSeconds: 0 };
    by.set(label, {
      processes: entry.processes + 1,
      peakRssMb: Math.max(entry.peakRssMb, peakRssMb),
      peakAnonMb: Math.max(entry.peakAnonMb, peakAnonMb),
      cpuSeconds: Math.round((entry.cpuSeconds + cpuSeconds) * 10) / 10,
    });
  }
  return [...by].map(([label, entry]) => ({ label, ...entry }));
}

/** User + system seconds of a `process.cpuUsage()` reading. */
export const cpuSecondsOf = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

/** The kernel's clock ticks per second (`getconf CLK_TCK`), 100 on Linux. */
const CLOCK_TICKS = 100;

/** CPU time (user + system) a process has used so far, in seconds; 0 when it is gone. */
export const processCpuSeconds = (pid: number) => (cpuTicks(pid) ?? 0) / CLOCK_TICKS;

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number | undefined {
  const stat = readProc(pid, 'stat');
  if (!stat) return undefined;
  // Fields after the comm: state is the 3rd field of the line, utime the 14th and stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // gone between the listing and the read
  }
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc').flatMap((name) => {
    const pid = Number(name);
    if (!Number.isInteger(pid)) return [];
    const stat = readProc(pid, 'stat');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return ppid === parent ? [pid] : [];
  });
}

/** A `kB` field of /proc/<pid>/status (VmHWM, RssAnon, …). */
function statusKb(status: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : undefined;
}

function environmentOf(pid: number): ReadonlyMap<string, string> {
  const entries = (readProc(pid, 'environ') ?? '').split('\0').flatMap((pair) => {
    const at = pair.indexOf('=');
    return at > 0 ? [[pair.slice(0, at), pair.slice(at + 1)] as const] : [];
  });
  return new Map(entries);
}
