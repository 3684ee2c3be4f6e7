/**
 * A progress line for long work: done/total, rate and ETA. Redrawn in place on a terminal (at most
 * 5 times a second), printed every few seconds otherwise so CI logs stay short.
 */
export class Progress {
  private readonly started = performance.now();
  // The first line waits one interval too: a rate over the first row says nothing.
  private lastDraw = this.started;
  private readonly interactive: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly unit = 'rows',
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.interactive = Boolean(stream.isTTY);
  }

  update(done: number): void {
    const now = performance.now();
    if (now - this.lastDraw < (this.interactive ? 200 : 5000)) return;
    this.lastDraw = now;
    this.draw(done, now);
  }

  finish(done: number): void {
    this.draw(done, performance.now());
    if (this.interactive) this.stream.write('\n');
  }

  private draw(done: number, now: number): void {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const parts = [`${this.label}: ${done.toLocaleString('en-US')}`];
    if (this.total !== undefined) {
      const share = this.total > 0 ? done / this.total : 1;
      parts[0] += `/${this.total.toLocaleString('en-US')} ${this.unit} (${(share * 100).toFixed(1)}%)`;
      const eta = rate > 0 ? (this.total - done) / rate : Number.POSITIVE_INFINITY;
      parts.push(`${formatRate(rate)} ${this.unit}/s`, `ETA ${formatSeconds(eta)}`);
    } else {
      parts[0] += ` ${this.unit}`;
      parts.push(`${formatRate(rate)} ${this.unit}/s`);
    }
    parts.push(`${formatSeconds(seconds)} elapsed`);
    const line = parts.join(' · ');
    this.stream.write(this.interactive ? `\r\x1b[2K${line}` : `${line}\n`);
  }
}

function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
}
