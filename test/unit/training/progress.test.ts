import { describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT } from '#shared/features/index.ts';
import { onTrainingProgress, trainCandidate } from '#shared/training/train.ts';

describe('training progress', () => {
  const rows = 3000;
  const x = new Float32Array(rows * FEATURE_COUNT);
  const y = new Uint8Array(rows);
  let i = 0;
  for (const record of generateRecords({ rows, seed: 4, asOf: new Date('2026-11-01T00:00:00Z') })) {
    encodeInto(record, x, i * FEATURE_COUNT);
    y[i++] = record.churned;
  }
  const data = { rows, x, y, customerIds: [], keys: [] };

  it('reports every boosting round to the callback and to listeners, until they stop listening', async () => {
    const calls: [number, number][] = [];
    const heard: number[] = [];
    const stop = onTrainingProgress((done) => heard.push(done));
    const candidate = await trainCandidate(data, {
      datasetUri: 's3://t/',
      parent: null,
      params: { nTrees: 30 },
      onProgress: (done, total) => calls.push([done, total]),
    });
    stop();
    // Rounds 1, 2, … as they finish, each out of nTrees; then the rounds run (early stopping may end
    // before nTrees) as done = total.
    const last = calls.pop()!;
    expect(calls.length).toBeGreaterThan(5);
    expect(calls).toEqual(calls.map((_, k) => [k + 1, 30]));
    expect(last).toEqual([calls.length, calls.length]);
    expect(calls.length).toBeGreaterThanOrEqual(Number(candidate.metadata.training.params.bestIteration));
    calls.push(last);
    expect(heard).toEqual(calls.map(([done]) => done));

    await trainCandidate(data, { datasetUri: 's3://t/', parent: null, params: { nTrees: 5 } });
    expect(heard).toHaveLength(calls.length);
  });
});
