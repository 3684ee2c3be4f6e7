import { describe, expect, it } from 'vitest';
import { type Dataset, takeRows } from '#shared/model/dataset.ts';
import { InvalidParameterError } from '#shared/model/errors.ts';
import {
  type BinnedDataset,
  binEdges,
  binInto,
  DEFAULT_GBDT_PARAMS,
  type GbdtParams,
  trainGbdt,
  trainGbdtBinned,
} from '#shared/model/gbdt.ts';
import { auc, stratifiedSplit } from '#shared/model/metrics.ts';
import { ensembleMargin, type Tree, type TreeEnsemble } from '#shared/model/model-types.ts';
import type { Random } from '#shared/random.ts';
import { standardNormal, synthesize } from '../../support/synthetic-data.ts';

/** A known log-odds function of six features (x5 is noise): the trainer should approach its Bayes AUC. */
function knownFunction(rows: number, seed: number) {
  return synthesize(rows, seed, Array(6).fill(standardNormal), (x, o) => {
    const step = x[o + 2]! > 0.5 ? 1.2 : 0;
    return -0.5 + 1.5 * x[o]! - x[o + 1]! + step + (x[o + 4]! > 0 ? 0.6 * x[o + 3]! : 0);
  });
}

/** Awkward columns for the binning: NaN, -0/0, a constant, a mass of zeros, few and many distinct values. */
function awkwardColumns(rows: number, seed: number) {
  const features: Array<(random: Random) => number> = [
    (r) => r.normal() * 3, // continuous, more distinct values than bins
    (r) => r.int(0, 5), // few distinct values
    (r) => (r.float() < 0.3 ? 1 : 0), // one-hot
    () => 7, // constant
    (r) => (r.float() < 0.2 ? Number.NaN : r.float() < 0.2 ? -0 : r.normal()), // missing values, -0 and 0
    (r) => (r.float() < 0.6 ? 0 : Math.exp(r.normal())), // a mass of zeros
  ];
  return synthesize(rows, seed, features, (x, o) => {
    const missing = Number.isNaN(x[o + 4]!) ? 0.8 : 0.5 * x[o + 4]!;
    return 0.4 * x[o]! - 0.3 * x[o + 1]! + x[o + 2]! + missing - 0.6 * (x[o + 5]! === 0 ? 1 : 0);
  });
}

function marginsOf(model: TreeEnsemble, x: Float32Array, rows: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, i) => ensembleMargin(model, x, i * model.featureCount));
}

function depthOf(tree: Tree, node = 0): number {
  if (tree.feature[node] === -1) return 0;
  return 1 + Math.max(depthOf(tree, tree.left[node]!), depthOf(tree, tree.right[node]!));
}

describe('trainGbdt', () => {
  it('learns a known function to near its Bayes AUC', () => {
    const train = knownFunction(8_000, 1);
    const test = knownFunction(4_000, 2);
    const { model } = trainGbdt(train, { nTrees: 150, maxDepth: 3, learningRate: 0.1 });
    const bayes = auc(test.y, test.trueMargins);
    const learned = auc(test.y, marginsOf(model, test.x, test.y.length));
    expect(bayes).toBeGreaterThan(0.8);
    expect(learned).toBeGreaterThan(bayes - 0.015);
    expect(learned).toBeLessThanOrEqual(bayes + 0.01);
  });

  it('is deterministic for a seed, sampling included, and the seed matters', () => {
    const data = knownFunction(2_000, 3);
    const params: Partial<GbdtParams> = { nTrees: 20, subsample: 0.7, colsampleByTree: 0.5, seed: 11 };
    const first = JSON.stringify(trainGbdt(data, params).model);
    expect(JSON.stringify(trainGbdt(data, params).model)).toBe(first);
    expect(JSON.stringify(trainGbdt(data, { ...params, seed: 12 }).model)).not.toBe(first);
  });

  describe('ensembleMargin reproduces the training-time margins exactly', () => {
    const data = awkwardColumns(3_000, 4);
    const cases: Array<[string, Partial<GbdtParams>]> = [
      ['all rows', { nTrees: 30, maxDepth: 5, maxBins: 32 }],
      [
        'row and feature sampling',
        { nTrees: 30, maxDepth: 4, maxBins: 16, subsample: 0.6, colsampleByTree: 0.5 },
      ],
      ['leaf-limited trees', { nTrees: 30, maxDepth: 8, maxLeaves: 5 }],
      ['early stopping on an internal split', { nTrees: 200, learningRate: 0.5, earlyStoppingRounds: 3 }],
    ];
    it.each(cases)('%s', (_, params) => {
      const result = trainGbdt(data, params);
      const { model, trainRows, trainMargins } = result;
      if (params.earlyStoppingRounds) expect(result.stoppedEarly).toBe(true);
      expect(trainMargins).toHaveLength(trainRows.length);
      trainRows.forEach((row, k) => {
        expect(ensembleMargin(model, data.x, row * data.featureCount)).toBe(trainMargins[k]);
      });
      for (const tree of model.trees) {
        for (const value of [...tree.threshold, ...tree.value]) expect(Math.fround(value)).toBe(value);
      }
      expect(Math.fround(model.baseScore)).toBe(model.baseScore);
    });
  });

  it('keeps trees within maxDepth and maxLeaves', () => {
    const data = knownFunction(2_000, 5);
    const deep = trainGbdt(data, { nTrees: 10, maxDepth: 3 }).model.trees;
    expect(Math.max(...deep.map((tree) => depthOf(tree)))).toBe(3);
    const limited = trainGbdt(data, { nTrees: 10, maxDepth: 10, maxLeaves: 6 }).model.trees;
    for (const tree of limited) expect(tree.feature.filter((f) => f === -1).length).toBeLessThanOrEqual(6);
    expect(limited.some((tree) => depthOf(tree) > 3)).toBe(true);
  });

  it('stops early when the validation log loss stops improving', () => {
    // Labels independent of the features: every tree after the first few only overfits.
    const noise = synthesize(2_000, 6, Array(4).fill(standardNormal), () => 0);
    const patience = 5;
    const result = trainGbdt(noise, {
      nTrees: 300,
      maxDepth: 4,
      learningRate: 0.3,
      earlyStoppingRounds: patience,
    });
    const losses = result.validationLogLoss;
    expect(result.stoppedEarly).toBe(true);
    expect(result.model.trees).toHaveLength(result.bestIteration);
    expect(losses).toHaveLength(result.bestIteration + patience);
    expect(Math.min(...losses)).toBe(losses[result.bestIteration - 1]);
    expect(result.trainRows.length).toBe(1_800); // validationFraction 0.1 held out, stratified
  });

  it('reports the validation log loss of an explicit validation set and trains on every row', () => {
    const train = knownFunction(1_000, 7);
    const validation = knownFunction(500, 8);
    const result = trainGbdt(train, { nTrees: 10 }, { validation });
    expect(result.validationLogLoss).toHaveLength(10);
    expect(result.validationLogLoss[9]).toBeLessThan(result.validationLogLoss[0]!);
    expect(result.trainRows).toHaveLength(1_000);
    expect(result.stoppedEarly).toBe(false);
  });

  it('names the bad parameter', () => {
    const data = knownFunction(100, 9);
    const bad: Array<[Partial<GbdtParams>, RegExp]> = [
      [{ learningRate: 0 }, /^learningRate must be in \(0, 1\], got 0$/],
      [{ learningRate: 1.5 }, /^learningRate must be in \(0, 1\]/],
      [{ nTrees: 2.5 }, /^nTrees must be an integer >= 1/],
      [{ maxDepth: 0 }, /^maxDepth must be an integer in \[1, 30\]/],
      [{ maxLeaves: 1 }, /^maxLeaves must be an integer >= 2/],
      [{ maxBins: 257 }, /^maxBins must be an integer in \[2, 256\]/],
      [{ lambda: -1 }, /^lambda must be in \[0, /],
      [{ minChildWeight: Number.NaN }, /^minChildWeight must be in \[0, /],
      [{ subsample: 0 }, /^subsample must be in \(0, 1\]/],
      [{ colsampleByTree: 2 }, /^colsampleByTree must be in \(0, 1\]/],
      [{ earlyStoppingRounds: -1 }, /^earlyStoppingRounds must be an integer >= 0/],
      [{ validationFraction: 1 }, /^validationFraction must be in \(0, 1\)/],
      [{ seed: -1 }, /^seed must be an integer/],
    ];
    for (const [params, message] of bad) {
      const parameter = Object.keys(params)[0];
      expect(() => trainGbdt(data, params), parameter).toThrow(message);
      expect(() => trainGbdt(data, params)).toThrow(expect.objectContaining({ parameter }));
    }
  });

  it('rejects malformed data', () => {
    const data = knownFunction(100, 10);
    expect(() => trainGbdt({ ...data, x: data.x.subarray(1) })).toThrow(/train.x has 599 values/);
    expect(() => trainGbdt({ ...data, y: data.y.map(() => 2) })).toThrow(/labels must be 0 or 1/);
    expect(() => trainGbdt({ ...data, y: data.y.map(() => 1) })).toThrow(InvalidParameterError);
    const validation = takeRows(data, [0, 1]);
    expect(() => trainGbdt(data, {}, { validation: { ...validation, featureCount: 3 } })).toThrow(
      /validation.x has 12 values/,
    );
  });
});

/** Every row of `data` binned (column-major) with `edges`, as a streaming reader bins them. */
function binned(data: Dataset, edges: Float32Array[]): BinnedDataset {
  const rows = data.y.length;
  const bins = new Uint8Array(rows * data.featureCount);
  for (let r = 0; r < rows; r++) {
    binInto(edges, data.x.subarray(r * data.featureCount, (r + 1) * data.featureCount), bins, rows, r);
  }
  return { rows, featureCount: data.featureCount, bins, edges, y: data.y };
}

describe('trainGbdtBinned', () => {
  const params: Partial<GbdtParams> = { nTrees: 40, maxDepth: 4, subsample: 0.8, colsampleByTree: 0.7 };

  it('grows the same trees as trainGbdt from rows binned with the edges of the same training rows', () => {
    for (const data of [awkwardColumns(3_000, 3), knownFunction(3_000, 4)]) {
      const train = takeRows(
        data,
        Uint32Array.from({ length: 2_400 }, (_, i) => i),
      );
      const validation = takeRows(
        data,
        Uint32Array.from({ length: 600 }, (_, i) => 2_400 + i),
      );
      const edges = binEdges(train.x, train.featureCount, 256);
      const expected = trainGbdt(train, { ...params, earlyStoppingRounds: 5 }, { validation });
      const actual = trainGbdtBinned(
        binned(train, edges),
        { ...params, earlyStoppingRounds: 5 },
        { validation: binned(validation, edges) },
      );
      expect(actual.model).toEqual(expected.model);
      expect(actual.validationLogLoss).toEqual(expected.validationLogLoss);
      expect(actual.trainMargins).toEqual(expected.trainMargins);
    }
  });

  it('holds out the same validation rows as trainGbdt when early stopping without a validation set', () => {
    const data = knownFunction(4_000, 6);
    const p = { ...params, earlyStoppingRounds: 3, seed: 9 };
    const split = stratifiedSplit(data.y, { validation: DEFAULT_GBDT_PARAMS.validationFraction, seed: 9 });
    const edges = binEdges(takeRows(data, split.train).x, data.featureCount, 256);
    const expected = trainGbdt(data, p);
    const actual = trainGbdtBinned(binned(data, edges), p);
    expect(actual.model).toEqual(expected.model);
    expect(actual.trainRows).toEqual(expected.trainRows);
    expect(actual.stoppedEarly).toBe(expected.stoppedEarly);
  });

  it('refuses edges it cannot index with a byte, and validation rows binned otherwise', () => {
    const data = knownFunction(500, 2);
    const edges = binEdges(data.x, data.featureCount, 256);
    expect(() => trainGbdtBinned(binned(data, edges), { maxBins: 8 })).toThrow(
      /train.edges must hold fewer than maxBins \(8\)/,
    );
    const other = binEdges(data.x, data.featureCount, 16);
    expect(() => trainGbdtBinned(binned(data, edges), {}, { validation: binned(data, other) })).toThrow(
      expect.objectContaining({ parameter: 'validation.edges' }),
    );
  });
});
