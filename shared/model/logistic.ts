/**
 * The logistic-regression baseline: inputs standardized, L2 penalty on the (standardized) weights,
 * fitted by damped Newton's method (IRLS) with a Cholesky solve — deterministic and exact to
 * convergence. The standardization is folded into the returned weights and intercept.
 */
import { type Dataset, rowCount, validateDataset } from './dataset.ts';
import { InvalidParameterError, requireInRange, requireInteger } from './errors.ts';
import type { LinearModel } from './model-types.ts';

export interface LogisticParams {
  /**
   * L2 strength on the mean-log-loss scale: objective = mean log loss + lambda / 2 * |w|² over the
   * standardized weights (the intercept is not penalized). Must be > 0: it keeps the Newton system
   * positive definite even with collinear inputs such as a complete one-hot group.
   */
  readonly lambda: number;
  readonly maxIterations: number;
  /** Converged when no standardized coefficient moves by more than this in a Newton step. */
  readonly tolerance: number;
}

export const DEFAULT_LOGISTIC_PARAMS: LogisticParams = { lambda: 1e-4, maxIterations: 100, tolerance: 1e-9 };

export interface LogisticResult {
  readonly model: LinearModel;
  readonly params: LogisticParams;
  readonly iterations: number;
  readonly converged: boolean;
}

export function resolveLogisticParams(params: Partial<LogisticParams> = {}): LogisticParams {
  const p: LogisticParams = { ...DEFAULT_LOGISTIC_PARAMS, ...params };
  requireInRange('lambda', p.lambda, 0, Number.MAX_VALUE, { minOpen: true, maxOpen: false });
  requireInteger('maxIterations', p.maxIterations, 1);
  requireInRange('tolerance', p.tolerance, 0, Number.MAX_VALUE, { minOpen: true, maxOpen: false });
  return p;
}

export function trainLogistic(data: Dataset, params: Partial<LogisticParams> = {}): LogisticResult {
  const p = resolveLogisticParams(params);
  validateDataset(data, 'train');
  const positives = data.y.reduce((sum, label) => sum + label, 0);
  if (positives === 0 || positives === rowCount(data)) {
    throw new InvalidParameterError('train.y', 'training labels must contain both classes');
  }
  const { mean, scale } = standardization(data);
  const design = standardizedDesign(data, mean, scale);
  const fit = newton(design, data.y, p);

  // margin = b0 + sum_j b_j (x_j - mean_j) / scale_j = (b0 - sum_j b_j mean_j / scale_j) + sum_j (b_j / scale_j) x_j
  const weights: number[] = [];
  let intercept = fit.coefficients[0]!;
  for (let j = 0; j < data.featureCount; j++) {
    const w = fit.coefficients[j + 1]! / scale[j]!;
    weights.push(w);
    intercept -= w * mean[j]!;
  }
  return {
    model: { kind: 'linear', featureCount: data.featureCount, weights, intercept },
    params: p,
    iterations: fit.iterations,
    converged: fit.converged,
  };
}

/** Per-feature mean and standard deviation; a constant feature gets scale 1 (its column is all 0). */
function standardization(data: Dataset): { mean: Float64Array; scale: Float64Array } {
  const { x, featureCount } = data;
  const n = rowCount(data);
  const mean = new Float64Array(featureCount);
  const scale = new Float64Array(featureCount);
  for (let i = 0; i < n; i++) for (let j = 0; j < featureCount; j++) mean[j]! += x[i * featureCount + j]!;
  for (let j = 0; j < featureCount; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < featureCount; j++) scale[j]! += (x[i * featureCount + j]! - mean[j]!) ** 2;
  }
  for (let j = 0; j < featureCount; j++) {
    const sd = Math.sqrt(scale[j]! / n);
    if (!Number.isFinite(sd)) {
      throw new InvalidParameterError('train.x', `feature ${j} has non-finite values`);
    }
    scale[j] = sd > 0 ? sd : 1;
  }
  return { mean, scale };
}

/** Row-major [1, z_1 … z_d] per row: the intercept column first. */
function standardizedDesign(data: Dataset, mean: Float64Array, scale: Float64Array): Float64Array {
  const { x, featureCount } = data;
  const width = featureCount + 1;
  const n = rowCount(data);
  const z = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    z[i * width] = 1;
    for (let j = 0; j < featureCount; j++) {
      z[i * width + j + 1] = (x[i * featureCount + j]! - mean[j]!) / scale[j]!;
    }
  }
  return z;
}

interface NewtonFit {
  readonly coefficients: Float64Array;
  readonly iterations: number;
  readonly converged: boolean;
}

function newton(z: Float64Array, y: Uint8Array, p: LogisticParams): NewtonFit {
  const n = y.length;
  const width = z.length / n;
  let beta = new Float64Array(width);
  let loss = objective(z, y, beta, p.lambda);
  for (let iteration = 1; iteration <= p.maxIterations; iteration++) {
    const { gradient, hessian } = derivatives(z, y, beta, p.lambda);
    const step = choleskySolve(hessian, gradient, width);
    // Damped: halve the Newton step until the objective does not increase.
    let t = 1;
    let candidate = beta;
    let candidateLoss = loss;
    for (let halvings = 0; halvings < 40; halvings++, t /= 2) {
      candidate = beta.map((b, j) => b - t * step[j]!);
      candidateLoss = objective(z, y, candidate, p.lambda);
      if (candidateLoss <= loss) break;
    }
    const moved = candidate.reduce((max, b, j) => Math.max(max, Math.abs(b - beta[j]!)), 0);
    beta = candidate;
    loss = Math.min(loss, candidateLoss);
    if (moved <= p.tolerance) return { coefficients: beta, iterations: iteration, converged: true };
  }
  return { coefficients: beta, iterations: p.maxIterations, converged: false };
}

/** Mean log loss plus the L2 penalty (intercept excluded), computed stably from the margins. */
function objective(z: Float64Array, y: Uint8Array, beta: Float64Array, lambda: number): number {
  const width = beta.length;
  let total = 0;
  for (let i = 0; i < y.length; i++) {
    let margin = 0;
    for (let j = 0; j < width; j++) margin += z[i * width + j]! * beta[j]!;
    const s = y[i] === 1 ? -margin : margin;
    total += Math.max(s, 0) + Math.log1p(Math.exp(-Math.abs(s)));
  }
  let penalty = 0;
  for (let j = 1; j < width; j++) penalty += beta[j]! * beta[j]!;
  return total / y.length + (lambda / 2) * penalty;
}

function derivatives(
  z: Float64Array,
  y: Uint8Array,
  beta: Float64Array,
  lambda: number,
): { gradient: Float64Array; hessian: Float64Array } {
  const width = beta.length;
  const n = y.length;
  const gradient = new Float64Array(width);
  const hessian = new Float64Array(width * width);
  for (let i = 0; i < n; i++) {
    const row = i * width;
    let margin = 0;
    for (let j = 0; j < width; j++) margin += z[row + j]! * beta[j]!;
    const prob = 1 / (1 + Math.exp(-margin));
    const residual = prob - y[i]!;
    const weight = prob * (1 - prob);
    for (let j = 0; j < width; j++) {
      const zj = z[row + j]!;
      gradient[j]! += residual * zj;
      const wzj = weight * zj;
      for (let k = 0; k <= j; k++) hessian[j * width + k]! += wzj * z[row + k]!;
    }
  }
  for (let j = 0; j < width; j++) {
    gradient[j]! /= n;
    for (let k = 0; k <= j; k++) {
      const value = hessian[j * width + k]! / n + (j === k && j > 0 ? lambda : 0);
      hessian[j * width + k] = value;
      hessian[k * width + j] = value;
    }
    if (j > 0) gradient[j]! += lambda * beta[j]!;
  }
  return { gradient, hessian };
}

/** Solves A x = b for symmetric positive-definite A (row-major, size×size). */
function choleskySolve(a: Float64Array, b: Float64Array, size: number): Float64Array {
  const l = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * size + j]!;
      for (let k = 0; k < j; k++) sum -= l[i * size + k]! * l[j * size + k]!;
      if (i === j) {
        if (!(sum > 0)) throw new Error('logistic regression: Newton system is not positive definite');
        l[i * size + i] = Math.sqrt(sum);
      } else {
        l[i * size + j] = sum / l[j * size + j]!;
      }
    }
  }
  const y = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    let sum = b[i]!;
    for (let k = 0; k < i; k++) sum -= l[i * size + k]! * y[k]!;
    y[i] = sum / l[i * size + i]!;
  }
  const x = new Float64Array(size);
  for (let i = size - 1; i >= 0; i--) {
    let sum = y[i]!;
    for (let k = i + 1; k < size; k++) sum -= l[k * size + i]! * x[k]!;
    x[i] = sum / l[i * size + i]!;
  }
  return x;
}
