import type { Dataset } from '#shared/model/dataset.ts';
import { Random } from '#shared/random.ts';

/** Rows whose label is drawn from sigmoid(margin(x)), with the true margins kept for Bayes figures. */
export interface SyntheticData extends Dataset {
  readonly trueMargins: Float64Array;
}

export function synthesize(
  rows: number,
  seed: number,
  features: ReadonlyArray<(random: Random) => number>,
  margin: (x: Float32Array, offset: number) => number,
): SyntheticData {
  const random = new Random(seed);
  const featureCount = features.length;
  const x = new Float32Array(rows * featureCount);
  const y = new Uint8Array(rows);
  const trueMargins = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    features.forEach((draw, j) => {
      x[i * featureCount + j] = draw(random);
    });
    trueMargins[i] = margin(x, i * featureCount);
    y[i] = random.float() < 1 / (1 + Math.exp(-trueMargins[i]!)) ? 1 : 0;
  }
  return { x, y, featureCount, trueMargins };
}

export const standardNormal = (random: Random) => random.normal();
