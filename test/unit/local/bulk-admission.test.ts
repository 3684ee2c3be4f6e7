import { describe, expect, it } from 'vitest';
import { createBulkAdmission, SERVING_WINDOW_MS } from '#local/bulk-admission.ts';

/** A clock and timers the test moves by hand. */
function manualTime() {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => now,
    after: (ms: number, fn: () => void) => void timers.push({ at: now + ms, fn }),
    /** Moves the clock, running each timer that falls due. */
    advance(ms: number) {
      now += ms;
      for (const timer of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.fn();
      }
    },
    pending: () => timers.map((t) => t.at - now),
  };
}

/** Admits `operation`: its release once admitted, or undefined when it is never held. */
async function admitted(admission: ReturnType<typeof createBulkAdmission>, operation: string) {
  const entry = admission.admit(operation);
  return entry ? await entry : undefined;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('bulk admission (point reads before bulk calls)', () => {
  it('lets every call through at once while nothing reads', async () => {
    const admission = createBulkAdmission(manualTime());
    const releases = await Promise.all(
      Array.from({ length: 16 }, () => admitted(admission, 'BatchWriteItem')),
    );
    expect(releases.every((release) => typeof release === 'function')).toBe(true);
    expect(admission.admit('Scan')).toBeInstanceOf(Promise);
    // Other calls are never held, and are not counted.
    for (const operation of [
      'PutItem',
      'UpdateItem',
      'Query',
      'DescribeTable',
      'GetItem',
      'BatchGetItem',
      '',
    ]) {
      expect(admission.admit(operation)).toBeUndefined();
    }
  });

  it('while reads are served: one bulk call at a time, each followed by a pause as long as it took', async () => {
    const time = manualTime();
    const admission = createBulkAdmission(time);
    expect(admission.admit('BatchGetItem')).toBeUndefined();
    const order: string[] = [];
    const first = admission.admit('BatchWriteItem')!;
    const second = admission.admit('Scan')!.then((release) => {
      order.push('second');
      return release;
    });
    const third = admission.admit('BatchWriteItem')!.then((release) => {
      order.push('third');
      return release;
    });
    const releaseFirst = await first;
    await settle();
    expect(order).toEqual([]);

    time.advance(30);
    admission.admit('GetItem');
    releaseFirst();
    expect(time.pending()).toEqual([30]);
    time.advance(29);
    await settle();
    expect(order).toEqual([]);
    time.advance(1);
    await settle();
    expect(order).toEqual(['second']);

    // Reads stopped: the next release frees its place at once, and the queue drains.
    time.advance(SERVING_WINDOW_MS + 1);
    (await second)();
    await settle();
    expect(order).toEqual(['second', 'third']);
    expect(time.pending()).toEqual([]);
    (await third)();
  });

  it('lets the held calls through together once reads stop', async () => {
    const time = manualTime();
    const admission = createBulkAdmission(time);
    admission.admit('BatchGetItem');
    const first = await admitted(admission, 'BatchWriteItem');
    let admittedCount = 0;
    const held = Array.from({ length: 5 }, () =>
      admission.admit('BatchWriteItem')!.then((release) => {
        admittedCount++;
        return release;
      }),
    );
    time.advance(SERVING_WINDOW_MS + 1);
    first!();
    await settle();
    expect(admittedCount).toBe(5);
    for (const release of await Promise.all(held)) release();
  });

  it('a release called twice frees one place', async () => {
    const time = manualTime();
    const admission = createBulkAdmission(time);
    admission.admit('BatchGetItem');
    const first = await admitted(admission, 'BatchWriteItem');
    first!();
    first!();
    time.advance(0);
    let behindAdmitted = false;
    const next = admission.admit('BatchWriteItem')!;
    void admission.admit('BatchWriteItem')!.then(() => {
      behindAdmitted = true;
    });
    await next;
    await settle();
    // One place was freed, so the call behind `next` still waits.
    expect(behindAdmitted).toBe(false);
  });
});
