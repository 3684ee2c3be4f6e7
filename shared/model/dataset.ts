import { InvalidParameterError } from './errors.ts';

/** A labeled row-major float32 matrix: row i is x[i * featureCount, (i + 1) * featureCount). */
export interface Dataset {
  readonly x: Float32Array;
  /** 0/1 labels, one per row. */
  readonly y: Uint8Array;
  readonly featureCount: number;
}

export function rowCount(data: Dataset): number {
  return data.y.length;
}

/** Checks the shape and the labels; `what` names the dataset in the error ('train', 'validation'). */
export function validateDataset(data: Dataset, what: string): void {
  const { x, y, featureCount } = data;
  if (!Number.isInteger(featureCount) || featureCount < 1) {
    throw new InvalidParameterError(`${what}.featureCount`, `${what}.featureCount must be an integer >= 1`);
  }
  if (x.length !== y.length * featureCount) {
    throw new InvalidParameterError(
      `${what}.x`,
      `${what}.x has ${x.length} values, expected rows (${y.length}) x featureCount (${featureCount})`,
    );
  }
  for (let i = 0; i < y.length; i++) {
    if (y[i]! > 1)
      throw new InvalidParameterError(`${what}.y`, `${what}.y[${i}] is ${y[i]}, labels must be 0 or 1`);
  }
}

/** The rows at `indices`, in that order, as a new dataset. */
export function takeRows(data: Dataset, indices: ArrayLike<number>): Dataset {
  const { featureCount } = data;
  const x = new Float32Array(indices.length * featureCount);
  const y = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const row = indices[k]!;
    x.set(data.x.subarray(row * featureCount, (row + 1) * featureCount), k * featureCount);
    y[k] = data.y[row]!;
  }
  return { x, y, featureCount };
}
