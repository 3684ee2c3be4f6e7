import { describe, expect, it } from 'vitest';
import { ValidationError } from '#shared/errors.ts';
import {
  checkRolloutRequest,
  formatDuration,
  parseDuration,
  type Rollout,
  rolloutBucket,
  variantFor,
} from '#shared/registry/rollout.ts';

const customers = (n: number) => Array.from({ length: n }, (_, i) => `c-${String(i + 1).padStart(6, '0')}`);

const canary = (id: string, percent: number): Pick<Rollout, 'id' | 'mode' | 'percent'> => ({
  id,
  mode: 'canary',
  percent,
});

describe('rollout assignment', () => {
  it('places a customer by sha256(rollout id, customer id): golden vectors', () => {
    // Pinned: Lambda, ECS and the local API must put every customer in the same place.
    expect(rolloutBucket('r-000000000000', 'c-000001')).toBeCloseTo(57.121865754, 8);
    expect(rolloutBucket('r-0123456789ab', 'c-000042')).toBeCloseTo(60.071514989, 8);
    expect(rolloutBucket('r-0123456789ab', 'c-000043')).toBeCloseTo(72.265820391, 8);
  });

  it('serves a 20% canary to 20 ± 2% of 10,000 distinct customers, the same variant every time', () => {
    const rollout = canary('r-5f0c2a9e71d3', 20);
    const ids = customers(10_000);
    const first = ids.map((id) => variantFor(rollout, id));
    const share = first.filter((v) => v === 'canary').length / ids.length;
    expect(share).toBeGreaterThanOrEqual(0.18);
    expect(share).toBeLessThanOrEqual(0.22);
    expect(ids.map((id) => variantFor(rollout, id))).toEqual(first);
  });

  it('draws a new canary group for each rollout', () => {
    const ids = customers(2000);
    const a = new Set(ids.filter((id) => variantFor(canary('r-aaaaaaaaaaaa', 20), id) === 'canary'));
    const b = ids.filter((id) => variantFor(canary('r-bbbbbbbbbbbb', 20), id) === 'canary');
    const overlap = b.filter((id) => a.has(id)).length / b.length;
    // Independent draws overlap by about the share itself (20%), not by all of it.
    expect(overlap).toBeGreaterThan(0.1);
    expect(overlap).toBeLessThan(0.3);
  });

  it('answers with the champion when no canary runs', () => {
    expect(variantFor(undefined, 'c-000001')).toBe('champion');
    expect(variantFor({ id: 'r-aaaaaaaaaaaa', mode: 'shadow', percent: null }, 'c-000001')).toBe('champion');
  });
});

describe('rollout requests', () => {
  it('accepts a canary of 1–50% and a shadow without a percent', () => {
    expect(() => checkRolloutRequest({ mode: 'canary', percent: 1, bakeSeconds: 60 })).not.toThrow();
    expect(() => checkRolloutRequest({ mode: 'canary', percent: 50, bakeSeconds: 60 })).not.toThrow();
    expect(() => checkRolloutRequest({ mode: 'shadow', bakeSeconds: 30 * 86_400 })).not.toThrow();
  });

  it('names every bad field', () => {
    const error = (() => {
      try {
        checkRolloutRequest({ mode: 'canary', percent: 60, bakeSeconds: 31 * 86_400 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toEqual([
      { path: 'percent', message: expect.stringContaining('1–50 percent') },
      { path: 'bake', message: expect.stringContaining('30 days') },
    ]);
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['1h', 3600],
    ['7d', 604_800],
  ])('reads %s as %i s and writes it back', (text, seconds) => {
    expect(parseDuration(text, 'bake')).toBe(seconds);
    expect(parseDuration(formatDuration(seconds), 'bake')).toBe(seconds);
  });

  it('writes the shortest exact spelling', () => {
    expect(formatDuration(5400)).toBe('1h30m');
    expect(formatDuration(90)).toBe('1m30s');
    expect(formatDuration(0)).toBe('0s');
  });

  it('refuses anything else, naming the field', () => {
    for (const text of ['1.5h', '1 hour', '', '-5m', '10']) {
      expect(() => parseDuration(text, 'bake')).toThrow(/bake ".*" is not a duration/);
    }
  });
});
