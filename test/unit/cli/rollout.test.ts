import { describe, expect, it } from 'vitest';
import { decisionDue, lastRolloutEnd, rolloutDecision } from '#cli/rollout.ts';
import type { Deployment } from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';

const rollout: Rollout = {
  id: 'r-0123456789ab',
  version: 'v3',
  champion: 'v2',
  mode: 'canary',
  percent: 20,
  bake_seconds: 1800,
  started_at: '2026-11-01T00:00:00.000Z',
  bake_ends_at: '2026-11-01T00:30:00.000Z',
  reason: 'try v3',
  actor: 'me@cli',
};
const ref = { id: rollout.id, mode: rollout.mode, percent: rollout.percent, version: rollout.version };
const entry = (seq: number, kind: Deployment['kind'], extra: Partial<Deployment> = {}): Deployment => ({
  seq,
  at: `2026-11-01T00:0${seq}:00.000Z`,
  from: 'v2',
  to: 'v3',
  kind,
  reason: `step ${seq}`,
  actor: 'me@cli',
  ...extra,
});

describe('the rollout status of the command line', () => {
  it('says how long the bake has left, or how long ago it ended', () => {
    expect(decisionDue(rollout, new Date('2026-11-01T00:00:00.000Z'))).toBe(
      '2026-11-01T00:30:00.000Z (30m left)',
    );
    expect(decisionDue(rollout, new Date('2026-11-01T00:17:29.400Z'))).toBe(
      '2026-11-01T00:30:00.000Z (12m31s left)',
    );
    expect(decisionDue(rollout, new Date('2026-11-01T01:35:00.000Z'))).toBe(
      '2026-11-01T00:30:00.000Z (the bake ended 1h5m ago)',
    );
  });

  it('finds the entry that ended the most recent rollout: none while it runs or before the first', () => {
    const promoted = entry(3, 'promote', { rollout: ref, reason: 'bake passed' });
    expect(lastRolloutEnd([entry(1, 'promote')])).toBeNull();
    expect(lastRolloutEnd([entry(1, 'promote'), entry(2, 'rollout-start', { rollout: ref })])).toBeNull();
    expect(
      lastRolloutEnd([
        entry(1, 'promote'),
        entry(2, 'rollout-start', { rollout: ref }),
        promoted,
        entry(4, 'rollback'),
      ]),
    ).toBe(promoted);
    expect(rolloutDecision(promoted)).toBe(
      'the canary of v3 (20%) (r-0123456789ab) promoted v3 at 2026-11-01T00:03:00.000Z by me@cli: bake passed',
    );
    const ended = entry(5, 'rollout-end', {
      from: 'v3',
      to: 'v2',
      rollout: { ...ref, mode: 'shadow', percent: null },
    });
    expect(rolloutDecision(ended)).toBe(
      'the shadow of v3 (r-0123456789ab) ended at 2026-11-01T00:05:00.000Z by me@cli: step 5 (v2 kept 100%)',
    );
  });
});
