import { describe, expect, it } from 'vitest';
import { type OutcomeIndex, outcomeFor, outcomeQuarantineKey } from '#shared/quality/outcomes.ts';

const DAY = 86_400_000;
const T = Date.parse('2026-12-01T00:00:00Z');
const index: OutcomeIndex = new Map([
  [
    'c-1',
    [
      { observedAt: T - DAY, churned: 1 },
      { observedAt: T + 2 * DAY, churned: 0 },
      { observedAt: T + 5 * DAY, churned: 1 },
    ],
  ],
  ['c-2', [{ observedAt: T, churned: 1 }]],
]);
const WEEK = 7 * DAY;

describe('outcomeFor: the outcome a prediction is judged by', () => {
  it('is the first outcome observed at or after the prediction, within the label window', () => {
    expect(outcomeFor(index, 'c-1', T, WEEK)).toEqual({ observedAt: T + 2 * DAY, churned: 0 });
    expect(outcomeFor(index, 'c-1', T + 3 * DAY, WEEK)).toEqual({ observedAt: T + 5 * DAY, churned: 1 });
    // An outcome observed before the prediction does not judge it.
    expect(outcomeFor(index, 'c-1', T - DAY + 1, DAY)).toBeUndefined();
  });

  it('counts the window from the prediction inclusive to prediction + window exclusive', () => {
    expect(outcomeFor(index, 'c-2', T, 1)).toEqual({ observedAt: T, churned: 1 });
    expect(outcomeFor(index, 'c-2', T + 1, WEEK)).toBeUndefined();
    expect(outcomeFor(index, 'c-2', T - WEEK, WEEK)).toBeUndefined();
    expect(outcomeFor(index, 'c-2', T - WEEK + 1, WEEK)).toEqual({ observedAt: T, churned: 1 });
    // The first outcome after the prediction is outside the window: a later one is not looked for.
    expect(outcomeFor(index, 'c-1', T, 2 * DAY)).toBeUndefined();
    expect(outcomeFor(index, 'c-1', T, 2 * DAY + 1)).toEqual({ observedAt: T + 2 * DAY, churned: 0 });
  });

  it('is undefined for a customer without outcomes, and refuses a window that is not positive', () => {
    expect(outcomeFor(index, 'c-3', T, WEEK)).toBeUndefined();
    for (const bad of [0, -1, Number.NaN])
      expect(() => outcomeFor(index, 'c-1', T, bad)).toThrow(/labelWindowMs must be a positive number/);
  });
});

describe('outcomeQuarantineKey', () => {
  it('derives from the source key alone', () => {
    expect(outcomeQuarantineKey('outcomes/20261206T020000Z-crm.csv')).toBe(
      'quarantine/outcomes/20261206T020000Z-crm.jsonl',
    );
    expect(outcomeQuarantineKey('outcomes/2026/12/export.CSV')).toBe(
      'quarantine/outcomes/2026/12/export.jsonl',
    );
  });
});
