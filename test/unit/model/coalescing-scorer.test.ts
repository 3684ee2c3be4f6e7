import { describe, expect, it } from 'vitest';
import type { LinearModel } from '#shared/model/model-types.ts';
import { coalescingScorer, createJsScorer, type Scorer, ScoringInputError } from '#shared/model/scorer.ts';

const model: LinearModel = { kind: 'linear', featureCount: 2, weights: [1, -2], intercept: 0.5 };
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
/** What the model gives row [a, b], worked out by hand. */
const expected = ([a, b]: readonly [number, number]) => sigmoid(a - 2 * b + 0.5);

/** The JS scorer, counting the calls that reach it and failing them while `failing` is set. */
function countedScorer() {
  const inner = createJsScorer(model);
  const calls: { method: 'scoreOne' | 'scoreBatch'; rows: number }[] = [];
  const state = { failing: false, released: false };
  const scorer: Scorer = {
    ...inner,
    async scoreBatch(x, rows) {
      calls.push({ method: 'scoreBatch', rows });
      if (state.failing) throw new Error('the model failed');
      return inner.scoreBatch(x, rows);
    },
    async scoreOne(x) {
      calls.push({ method: 'scoreOne', rows: 1 });
      if (state.failing) throw new Error('the model failed');
      return inner.scoreOne(x);
    },
    async release() {
      state.released = true;
    },
  };
  return { scorer, calls, state };
}

const rows: [number, number][] = [
  [0, 0],
  [1, 0],
  [0, 1],
  [2.5, -1],
];

describe('coalescingScorer', () => {
  it('scores the one-row calls of one turn in one batch, each answered with its own row', async () => {
    const { scorer, calls } = countedScorer();
    const coalesced = coalescingScorer(scorer);
    const answers = await Promise.all(rows.map((row) => coalesced.scoreOne(Float32Array.from(row))));
    expect(calls).toEqual([{ method: 'scoreBatch', rows: 4 }]);
    answers.forEach((probability, i) => {
      expect(probability).toBeCloseTo(expected(rows[i]!), 6);
    });
  });

  it('sends a row alone in its turn as one row, and each later turn its own call', async () => {
    const { scorer, calls } = countedScorer();
    const coalesced = coalescingScorer(scorer);
    expect(await coalesced.scoreOne(Float32Array.from(rows[1]!))).toBeCloseTo(expected(rows[1]!), 6);
    expect(await coalesced.scoreOne(Float32Array.from(rows[2]!))).toBeCloseTo(expected(rows[2]!), 6);
    expect(calls).toEqual([
      { method: 'scoreOne', rows: 1 },
      { method: 'scoreOne', rows: 1 },
    ]);
  });

  it('refuses a row of the wrong shape alone; the rows beside it are scored', async () => {
    const { scorer, calls } = countedScorer();
    const coalesced = coalescingScorer(scorer);
    const outcomes = await Promise.allSettled([
      coalesced.scoreOne(Float32Array.from(rows[0]!)),
      coalesced.scoreOne(Float32Array.from([1, 2, 3])),
      coalesced.scoreOne(Float32Array.from(rows[3]!)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(ScoringInputError);
    expect(calls).toEqual([{ method: 'scoreBatch', rows: 2 }]);
  });

  it('fails every row that shared a failed call, and scores the next turn again', async () => {
    const { scorer, state } = countedScorer();
    const coalesced = coalescingScorer(scorer);
    state.failing = true;
    const failed = await Promise.allSettled(rows.map((row) => coalesced.scoreOne(Float32Array.from(row))));
    expect(failed.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    state.failing = false;
    expect(await coalesced.scoreOne(Float32Array.from(rows[0]!))).toBeCloseTo(expected(rows[0]!), 6);
  });

  it('passes batches and release through, and keeps what the scorer says of itself', async () => {
    const { scorer, calls, state } = countedScorer();
    const coalesced = coalescingScorer(scorer);
    expect(coalesced.kind).toBe('js');
    expect(coalesced.featureCount).toBe(2);
    const batch = await coalesced.scoreBatch(Float32Array.from(rows.flat()), rows.length);
    expect(Array.from(batch)).toEqual(
      Array.from(await createJsScorer(model).scoreBatch(Float32Array.from(rows.flat()), 4)),
    );
    expect(calls).toEqual([{ method: 'scoreBatch', rows: 4 }]);
    await coalesced.release();
    expect(state.released).toBe(true);
  });
});
