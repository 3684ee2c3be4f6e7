import { describe, expect, it } from 'vitest';
import { nextFireTime, SCHEDULES } from '#shared/pipelines/schedules.ts';

const at = (iso: string) => new Date(iso);

describe('schedule expressions (EventBridge syntax, UTC)', () => {
  it('fires cron expressions at the next matching minute', () => {
    // Tuesday 2026-11-24 19:00 → the daily batch at 02:00 on Wednesday.
    expect(nextFireTime('cron(0 2 * * ? *)', at('2026-11-24T19:00:00Z')).toISOString()).toBe(
      '2026-11-25T02:00:00.000Z',
    );
    // Exactly at a fire time → the next one, not the same.
    expect(nextFireTime('cron(0 2 * * ? *)', at('2026-11-25T02:00:00Z')).toISOString()).toBe(
      '2026-11-26T02:00:00.000Z',
    );
    // Weekly retrain: Sundays (day-of-week 1 = SUN) at 03:00.
    expect(nextFireTime('cron(0 3 ? * SUN *)', at('2026-11-24T19:00:00Z')).toISOString()).toBe(
      '2026-11-29T03:00:00.000Z',
    );
    expect(nextFireTime('cron(0 3 ? * 1 *)', at('2026-11-24T19:00:00Z')).toISOString()).toBe(
      '2026-11-29T03:00:00.000Z',
    );
    // Lists, ranges and steps.
    expect(nextFireTime('cron(*/15 9-17 ? * MON-FRI *)', at('2026-11-28T12:00:00Z')).toISOString()).toBe(
      '2026-11-30T09:00:00.000Z',
    );
    expect(nextFireTime('cron(5,35 * * * ? *)', at('2026-11-24T19:06:00Z')).toISOString()).toBe(
      '2026-11-24T19:35:00.000Z',
    );
    expect(nextFireTime('cron(0 0 1 JAN ? 2027)', at('2026-11-24T19:00:00Z')).toISOString()).toBe(
      '2027-01-01T00:00:00.000Z',
    );
  });

  it('fires rate expressions every period from the anchor', () => {
    const anchor = at('2026-11-24T19:00:00Z');
    expect(nextFireTime('rate(1 hour)', at('2026-11-24T19:00:00Z'), anchor).toISOString()).toBe(
      '2026-11-24T20:00:00.000Z',
    );
    expect(nextFireTime('rate(1 hour)', at('2026-11-24T21:30:00Z'), anchor).toISOString()).toBe(
      '2026-11-24T22:00:00.000Z',
    );
    expect(nextFireTime('rate(5 minutes)', at('2026-11-24T19:07:00Z'), anchor).toISOString()).toBe(
      '2026-11-24T19:10:00.000Z',
    );
    expect(nextFireTime('rate(2 days)', anchor, anchor).toISOString()).toBe('2026-11-26T19:00:00.000Z');
  });

  it('rejects what EventBridge would reject, or what it cannot honour, saying why', () => {
    expect(() => nextFireTime('every hour', new Date())).toThrow(/use rate\(N minutes/);
    expect(() => nextFireTime('cron(0 2 * * * *)', new Date())).toThrow(
      /one of day-of-month and day-of-week must be \?/,
    );
    expect(() => nextFireTime('cron(61 2 * * ? *)', new Date())).toThrow(/"61" is outside 0-59/);
    expect(() => nextFireTime('cron(0 2 L * ? *)', new Date())).toThrow(/L, W and # are not supported/);
    expect(() => nextFireTime('cron(0 0 30 FEB ? *)', new Date())).toThrow(/never fires/);
  });

  it('declares every schedule with an expression the local scheduler understands', () => {
    for (const schedule of SCHEDULES)
      expect(() => nextFireTime(schedule.expression, new Date())).not.toThrow();
    expect(SCHEDULES.map((s) => `${s.id}:${s.target}`)).toEqual([
      'BatchScoring:batch',
      'Drift:drift',
      'Quality:quality',
      'Retrain:retrain',
    ]);
  });
});
