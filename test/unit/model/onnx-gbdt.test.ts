import { describe, expect, it } from 'vitest';
import type { Dataset } from '#shared/model/dataset.ts';
import { trainGbdt } from '#shared/model/gbdt.ts';
import { ensembleMargin, sigmoid } from '#shared/model/model-types.ts';
import { exportOnnx } from '#shared/model/onnx-export.ts';
import { loadOnnxScorer } from '#shared/model/onnx-runtime.ts';
import { Random } from '#shared/random.ts';

/** Uniform [0, 1) from the project's seeded PRNG, so every random case is reproducible. */
function prng(seed: number): () => number {
  const random = new Random(seed);
  return () => random.float();
}

/** Rows with a non-linear label rule, mixed scales and repeated values (ties at split thresholds). */
function syntheticData(rows: number, seed: number): Dataset {
  const F = 6;
  const rand = prng(seed);
  const x = new Float32Array(rows * F);
  const y = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const v = [
      rand() * 60,
      Math.round(rand() * 12),
      rand() * 1e5,
      Math.floor(rand() * 3),
      rand() - 0.5,
      Math.round(rand() * 40) / 4,
    ];
    x.set(v, r * F);
    const logit =
      0.08 * (30 - v[0]!) + 0.3 * v[1]! - 2e-5 * v[2]! + (v[3] === 2 ? 1 : -0.5) + 3 * v[4]! ** 2 - 1;
    y[r] = rand() < sigmoid(logit) ? 1 : 0;
  }
  return { x, y, featureCount: F };
}

describe('ONNX export of a trained GBDT', () => {
  it('scores every held-out and training row like the trainer, within 1e-6', async () => {
    const train = syntheticData(3000, 11);
    const heldOut = syntheticData(1000, 12);
    const F = train.featureCount;
    const { model, trainRows, trainMargins } = trainGbdt(train, { nTrees: 60, maxDepth: 5, seed: 7 });
    const scorer = await loadOnnxScorer(exportOnnx(model, { featureNames: ['a', 'b', 'c', 'd', 'e', 'f'] }), {
      featureCount: F,
    });
    try {
      const heldOutRows = heldOut.y.length;
      const held = await scorer.scoreBatch(heldOut.x, heldOutRows);
      let maxHeldOut = 0;
      for (let r = 0; r < heldOutRows; r++) {
        maxHeldOut = Math.max(
          maxHeldOut,
          Math.abs(held[r]! - sigmoid(ensembleMargin(model, heldOut.x, r * F))),
        );
      }
      expect(maxHeldOut).toBeLessThan(1e-6);

      // The trainer's own margins, not a re-evaluation: catches any routing difference at split thresholds.
      const all = await scorer.scoreBatch(train.x, train.y.length);
      let maxTrain = 0;
      trainRows.forEach((row, k) => {
        maxTrain = Math.max(maxTrain, Math.abs(all[row]! - sigmoid(trainMargins[k]!)));
      });
      expect(maxTrain).toBeLessThan(1e-6);
    } finally {
      await scorer.release();
    }
  });
});
