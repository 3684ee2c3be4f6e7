import onnxProto from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ensembleMargin,
  type LinearModel,
  linearMargin,
  sigmoid,
  type Tree,
  type TreeEnsemble,
} from '#shared/model/model-types.ts';
import {
  exportOnnx,
  KEEL_ONNX_FORMAT,
  ONNX_METADATA_KEYS,
  ONNX_PROBABILITY_OUTPUT,
  OnnxExportError,
} from '#shared/model/onnx-export.ts';
import { loadOnnxScorer, ModelFormatError, type OnnxScorer } from '#shared/model/onnx-runtime.ts';
import { createJsScorer, ScoringInputError } from '#shared/model/scorer.ts';
import { Random } from '#shared/random.ts';

const { onnx } = onnxProto;
const TOLERANCE = 1e-6;

/** Uniform [0, 1) from the project's seeded PRNG, so every random case is reproducible. */
function prng(seed: number): () => number {
  const random = new Random(seed);
  return () => random.float();
}

const names = (count: number) => Array.from({ length: count }, (_, i) => `f${i}`);

const scorers: OnnxScorer[] = [];
afterAll(async () => {
  await Promise.all(scorers.map((s) => s.release()));
});

async function onnxScorerFor(model: TreeEnsemble | LinearModel): Promise<OnnxScorer> {
  const scorer = await loadOnnxScorer(exportOnnx(model, { featureNames: names(model.featureCount) }), {
    featureCount: model.featureCount,
    featureNames: names(model.featureCount),
  });
  scorers.push(scorer);
  return scorer;
}

function referenceProbabilities(
  model: TreeEnsemble | LinearModel,
  x: Float32Array,
  rows: number,
): Float64Array {
  const F = model.featureCount;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    out[r] = sigmoid(
      model.kind === 'tree-ensemble' ? ensembleMargin(model, x, r * F) : linearMargin(model, x, r * F),
    );
  }
  return out;
}

async function maxParityError(
  model: TreeEnsemble | LinearModel,
  x: Float32Array,
  rows: number,
): Promise<number> {
  const scorer = await onnxScorerFor(model);
  const got = await scorer.scoreBatch(x, rows);
  const want = referenceProbabilities(model, x, rows);
  let max = 0;
  for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(got[r]! - want[r]!));
  // NaN - NaN is NaN and would pass Math.max silently.
  expect(got.some(Number.isNaN)).toBe(false);
  return max;
}

/** Runs the exported graph directly, to look at the `label` output Keel never reads. */
async function rawRun(model: TreeEnsemble, x: Float32Array, rows: number) {
  const session = await InferenceSession.create(
    exportOnnx(model, { featureNames: names(model.featureCount) }),
  );
  try {
    const out = await session.run({ features: new Tensor('float32', x, [rows, model.featureCount]) });
    return {
      label: Array.from(out.label!.data as BigInt64Array, Number),
      probabilities: Array.from(out[ONNX_PROBABILITY_OUTPUT]!.data as Float32Array),
    };
  } finally {
    await session.release();
  }
}

const leaf = (value: number) => ({ feature: -1, threshold: 0, value });
/** Builds a Tree from nodes listed by index; `children` gives [left, right] for internal nodes. */
function tree(
  nodes: { feature: number; threshold: number; value?: number; children?: [number, number] }[],
): Tree {
  return {
    feature: nodes.map((n) => n.feature),
    threshold: nodes.map((n) => n.threshold),
    left: nodes.map((n) => n.children?.[0] ?? -1),
    right: nodes.map((n) => n.children?.[1] ?? -1),
    value: nodes.map((n) => n.value ?? 0),
  };
}
const stump = (feature: number, threshold: number, left: number, right: number) =>
  tree([{ feature, threshold, children: [1, 2] }, leaf(left), leaf(right)]);
const ensemble = (featureCount: number, baseScore: number, trees: Tree[]): TreeEnsemble => ({
  kind: 'tree-ensemble',
  featureCount,
  baseScore,
  trees,
});

/** The float32 neighbours of a float32 value. */
function nextFloat32(value: number, direction: 1 | -1): number {
  const f = new Float32Array([value]);
  const bits = new Int32Array(f.buffer);
  if (value === 0) return direction * 1.401298464324817e-45;
  bits[0]! += (value > 0 ? 1 : -1) * direction;
  return f[0]!;
}

/** A random tree of at most `depth` levels over float32 thresholds drawn from `pool`. */
function randomTree(rand: () => number, depth: number, featureCount: number, pool: number[]): Tree {
  const t: Tree = { feature: [], threshold: [], left: [], right: [], value: [] };
  const grow = (level: number): number => {
    const index = t.feature.length;
    t.feature.push(-1);
    t.threshold.push(0);
    t.left.push(-1);
    t.right.push(-1);
    t.value.push(0);
    if (level === depth || (level > 0 && rand() < 0.2)) {
      t.value[index] = (rand() - 0.5) * 2 * (rand() < 0.1 ? 10 : 0.3);
      return index;
    }
    t.feature[index] = Math.floor(rand() * featureCount);
    t.threshold[index] = pool[Math.floor(rand() * pool.length)]!;
    t.left[index] = grow(level + 1);
    t.right[index] = grow(level + 1);
    return index;
  };
  grow(0);
  return t;
}

/** Rows mixing thresholds, their float32 neighbours, NaN, infinities and plain random values. */
function randomRows(rand: () => number, rows: number, featureCount: number, pool: number[]): Float32Array {
  const x = new Float32Array(rows * featureCount);
  for (let i = 0; i < x.length; i++) {
    const u = rand();
    const t = pool[Math.floor(rand() * pool.length)]!;
    if (u < 0.25) x[i] = t;
    else if (u < 0.35) x[i] = nextFloat32(t, 1);
    else if (u < 0.45) x[i] = nextFloat32(t, -1);
    else if (u < 0.5) x[i] = Number.NaN;
    else if (u < 0.52) x[i] = rand() < 0.5 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    else x[i] = (rand() - 0.5) * 200;
  }
  return x;
}

function thresholdPool(rand: () => number): number[] {
  const tricky = [0, -0, 0.1, 1 / 3, 16777217, 1e-45, -1e-38, 3.4028234663852886e38, 1e7 + 0.5, -2.5];
  const random = Array.from({ length: 60 }, () => (rand() - 0.5) * 200);
  return [...tricky, ...random].map(Math.fround);
}

describe('ONNX tree ensemble parity with ensembleMargin', () => {
  it('scores a single stump, including inputs equal to the threshold and NaN', async () => {
    const model = ensemble(1, 0, [stump(0, 0.5, -1.25, 0.75)]);
    const x = Float32Array.from([0, 0.5, nextFloat32(0.5, -1), nextFloat32(0.5, 1), Number.NaN, -Infinity]);
    const got = await (await onnxScorerFor(model)).scoreBatch(x, x.length);
    const left = sigmoid(-1.25);
    const right = sigmoid(0.75);
    // x < 0.5 goes left; equal, above and NaN go right.
    const want = [left, right, left, right, right, left];
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 6);
  });

  it('scores a depth-3 tree on every path', async () => {
    const t = tree([
      { feature: 0, threshold: 0, children: [1, 2] },
      { feature: 1, threshold: 10, children: [3, 4] },
      { feature: 2, threshold: -5, children: [5, 6] },
      { feature: 2, threshold: 1, children: [7, 8] },
      leaf(0.4),
      leaf(-0.6),
      { feature: 1, threshold: 3, children: [9, 10] },
      leaf(-1),
      leaf(1),
      leaf(0.05),
      leaf(-0.3),
    ]);
    const model = ensemble(3, 0, [t]);
    const x = Float32Array.from([
      ...[-1, 0, 0],
      ...[-1, 0, 1],
      ...[-1, 10, 0],
      ...[1, 0, -6],
      ...[1, 2.5, -5],
      ...[1, 3, 0],
      ...[Number.NaN, Number.NaN, Number.NaN],
    ]);
    const scorer = await onnxScorerFor(model);
    const got = await scorer.scoreBatch(x, 7);
    const want = [-1, 1, 0.4, -0.6, 0.05, -0.3, -0.3].map(sigmoid);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(TOLERANCE);
  });

  it('adds baseScore once to the leaves of several trees', async () => {
    const model = ensemble(2, -1.7346, [
      stump(0, 1, 0.3, -0.2),
      stump(1, 2, -0.11, 0.9),
      stump(0, 3, 0.01, 0.5),
    ]);
    const x = Float32Array.from([0, 0, 2, 2, 5, 1, Number.NaN, 5]);
    expect(await maxParityError(model, x, 4)).toBeLessThan(TOLERANCE);
    const got = await (await onnxScorerFor(model)).scoreOne(Float32Array.from([0, 0]));
    expect(Math.abs(got - sigmoid(-1.7346 + 0.3 - 0.11 + 0.01))).toBeLessThan(TOLERANCE);
  });

  it('compares at tricky float32 thresholds exactly like the reference', async () => {
    const rand = prng(7);
    const pool = thresholdPool(rand);
    const trees = pool.map((t, i) => stump(i % 4, t, (i % 7) / 10 - 0.3, 0.25 - (i % 5) / 10));
    const model = ensemble(4, 0.1, trees);
    const rows = 2000;
    expect(await maxParityError(model, randomRows(rand, rows, 4, pool), rows)).toBeLessThan(TOLERANCE);
  });

  it('accumulates in double: leaves and baseScore need not be float32-representable', async () => {
    // A float32 sum would give 1024 + fround(-1024 + 1e-3) = 1.0009765625e-3, an error of ~2.4e-7 in p.
    const model = ensemble(1, 1024, [stump(0, 0, -1024 + 1e-3, -1024 + 1e-7), stump(0, 0, 1 / 3, 1 / 3)]);
    const x = Float32Array.from([-1, 1]);
    const got = await (await onnxScorerFor(model)).scoreBatch(x, 2);
    expect(Math.abs(got[0]! - sigmoid(1e-3 + 1 / 3))).toBeLessThan(6e-8);
    expect(Math.abs(got[1]! - sigmoid(1e-7 + 1 / 3))).toBeLessThan(6e-8);
  });

  it('matches on random ensembles within 1e-6 for every row', async () => {
    const rand = prng(20240601);
    for (const [trees, depth, features] of [
      [1, 1, 1],
      [5, 3, 4],
      [40, 6, 20],
      [150, 4, 12],
    ] as const) {
      const pool = thresholdPool(rand);
      const model = ensemble(
        features,
        (rand() - 0.5) * 4,
        Array.from({ length: trees }, () => randomTree(rand, depth, features, pool)),
      );
      const rows = 3000;
      expect(await maxParityError(model, randomRows(rand, rows, features, pool), rows)).toBeLessThan(
        TOLERANCE,
      );
    }
  });

  it('scores an ensemble without trees and a tree that is a single leaf', async () => {
    const x = Float32Array.from([1, 2]);
    expect(await maxParityError(ensemble(1, 0.8, []), x, 2)).toBeLessThan(TOLERANCE);
    expect(await maxParityError(ensemble(1, 0.8, [tree([leaf(-0.3)])]), x, 2)).toBeLessThan(TOLERANCE);
  });

  it('still applies the logistic when every leaf weight is non-negative, for one row and for many', async () => {
    const model = ensemble(1, 0.1, [stump(0, 0.5, 0.2, 0), stump(0, 1.5, 0.7, 1.4)]);
    const scorer = await onnxScorerFor(model);
    for (const v of [0, 1, 2]) {
      const p = await scorer.scoreOne(Float32Array.from([v]));
      expect(Math.abs(p - sigmoid(ensembleMargin(model, Float32Array.from([v]))))).toBeLessThan(TOLERANCE);
    }
    expect(await maxParityError(model, Float32Array.from([0, 1, 2]), 3)).toBeLessThan(TOLERANCE);
  });
});

describe("onnxruntime's label output (never read by Keel)", () => {
  it('is margin > 0, so it disagrees with a 0.5 threshold at margin 0 and with any other threshold', async () => {
    const model = ensemble(1, 0.5, [stump(0, 0, -0.5, -0.9)]);
    const x = Float32Array.from([-1, 1]);
    const { label, probabilities } = await rawRun(model, x, 2);
    expect(probabilities[1]).toBe(0.5);
    expect(label[0]).toBe(0); // while p >= 0.5 holds
    const p = sigmoid(-0.4);
    expect(probabilities[3]).toBeCloseTo(p, 6);
    expect(label[1]).toBe(0); // while p >= 0.3, a typical churn threshold, holds
    const scored = await (await onnxScorerFor(model)).scoreBatch(x, 2);
    expect(scored[0]).toBe(0.5);
    expect(scored[1]).toBeCloseTo(p, 6);
  });

  it('is margin > 0.5 when every leaf weight is non-negative', async () => {
    const model = ensemble(1, 0.1, [stump(0, 0, 0.2, 0)]);
    const { label, probabilities } = await rawRun(model, Float32Array.from([-1]), 1);
    expect(probabilities[1]).toBeCloseTo(sigmoid(0.3), 6);
    expect(probabilities[1]).toBeGreaterThan(0.5);
    expect(label[0]).toBe(0);
  });
});

describe('ONNX linear model parity with linearMargin', () => {
  it('matches on random models with standardization folded in, within 1e-6 for every row', async () => {
    const rand = prng(99);
    const F = 20;
    const scales = Array.from({ length: F }, (_, i) => 10 ** ((i % 6) - 1));
    const model: LinearModel = {
      kind: 'linear',
      featureCount: F,
      weights: scales.map((s) => ((rand() - 0.5) * 2) / s),
      intercept: (rand() - 0.5) * 6,
    };
    const rows = 4000;
    const x = new Float32Array(rows * F);
    for (let i = 0; i < x.length; i++) x[i] = rand() * 2 * scales[i % F]!;
    expect(await maxParityError(model, x, rows)).toBeLessThan(TOLERANCE);
  });

  it('propagates NaN features to a NaN probability in both scorers', async () => {
    const model: LinearModel = { kind: 'linear', featureCount: 2, weights: [1, -1], intercept: 0 };
    const x = Float32Array.from([Number.NaN, 0]);
    expect(await (await onnxScorerFor(model)).scoreOne(x)).toBeNaN();
    expect(await createJsScorer(model).scoreOne(x)).toBeNaN();
  });
});

describe('JS scorer', () => {
  it('gives sigmoid(margin) per row and checks the batch shape', async () => {
    const model = ensemble(2, 0.2, [stump(1, 0, -1, 1)]);
    const scorer = createJsScorer(model);
    const x = Float32Array.from([0, -1, 0, 1]);
    expect(Array.from(await scorer.scoreBatch(x, 2))).toEqual([sigmoid(-0.8), sigmoid(1.2)]);
    expect(await scorer.scoreBatch(new Float32Array(0), 0)).toHaveLength(0);
    await expect(scorer.scoreBatch(x, 3)).rejects.toBeInstanceOf(ScoringInputError);
  });
});

describe('exported model format', () => {
  it('declares IR 8, ai.onnx.ml opset 3, a dynamic batch input and the Keel metadata', () => {
    const bytes = exportOnnx(ensemble(2, 0, [stump(0, 1, -1, 1)]), {
      featureNames: ['tenure', 'orders'],
      producer: { name: 'keel-trainer', version: '1.2.3' },
    });
    const proto = onnx.ModelProto.decode(bytes);
    expect(Number(proto.irVersion)).toBe(8);
    expect(proto.opsetImport.map((o) => [o.domain, Number(o.version)])).toContainEqual(['ai.onnx.ml', 3]);
    expect(proto.producerName).toBe('keel-trainer');
    const meta = Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value]));
    expect(meta).toEqual({
      [ONNX_METADATA_KEYS.format]: KEEL_ONNX_FORMAT,
      [ONNX_METADATA_KEYS.modelKind]: 'tree-ensemble',
      [ONNX_METADATA_KEYS.featureCount]: '2',
      [ONNX_METADATA_KEYS.featureNames]: '["tenure","orders"]',
    });
    const dims = proto.graph?.input?.[0]?.type?.tensorType?.shape?.dim ?? [];
    expect(dims.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['N', 2]);
  });

  it('rejects feature names that do not fit and malformed trees', () => {
    const ok = ensemble(2, 0, [stump(0, 1, -1, 1)]);
    expect(() => exportOnnx(ok, { featureNames: ['a'] })).toThrow(OnnxExportError);
    expect(() => exportOnnx(ok, { featureNames: ['a', 'a'] })).toThrow(/duplicate/);
    const bad = (t: Tree) => () => exportOnnx(ensemble(2, 0, [t]), { featureNames: ['a', 'b'] });
    expect(bad(stump(2, 1, -1, 1))).toThrow(/feature 2/);
    expect(bad(tree([{ feature: 0, threshold: 1, children: [1, 1] }, leaf(1)]))).toThrow(/child 1/);
    expect(bad(tree([{ feature: 0, threshold: 1, children: [1, 0] }, leaf(1)]))).toThrow(/child 0/);
    expect(bad(stump(0, Number.NaN, -1, 1))).toThrow(/NaN/);
    expect(bad(stump(0, 1, Number.POSITIVE_INFINITY, 1))).toThrow(/finite/);
  });
});

describe('loadOnnxScorer validation', () => {
  const model = ensemble(2, 0, [stump(1, 1, -1, 1)]);
  const bytes = exportOnnx(model, { featureNames: ['a', 'b'] });
  /** The exported model with Keel's metadata removed and `edit` applied: a "bring your own" model. */
  const foreign = (edit: (graph: onnxProto.onnx.IGraphProto) => void = () => {}) => {
    const proto = onnx.ModelProto.decode(bytes);
    proto.metadataProps = [];
    edit(proto.graph!);
    return onnx.ModelProto.encode(proto).finish();
  };
  const load = (b: Uint8Array, featureCount: number, featureNames?: string[]) =>
    loadOnnxScorer(b, featureNames ? { featureCount, featureNames } : { featureCount });

  it('exposes the input and output it uses', async () => {
    const scorer = await load(bytes, 2, ['a', 'b']);
    scorers.push(scorer);
    expect(scorer).toMatchObject({
      kind: 'onnx',
      featureCount: 2,
      inputName: 'features',
      outputName: 'probabilities',
      featureNames: ['a', 'b'],
      keelFormat: true,
    });
    expect(await scorer.scoreBatch(new Float32Array(0), 0)).toHaveLength(0);
    await expect(scorer.scoreBatch(new Float32Array(3), 2)).rejects.toBeInstanceOf(ScoringInputError);
  });

  it('rejects a wrong feature count or feature names', async () => {
    await expect(load(bytes, 3)).rejects.toThrow(/exported for 2 features, expected 3/);
    await expect(load(bytes, 2, ['a', 'c'])).rejects.toThrow(
      /position 1: model has 'b', feature set has 'c'/,
    );
    await expect(load(foreign(), 3)).rejects.toThrow(/takes 2 features, expected 3/);
  });

  it('rejects bytes that are not an ONNX model', async () => {
    const rand = prng(3);
    const garbage = Uint8Array.from({ length: 512 }, () => Math.floor(rand() * 256));
    for (const b of [garbage, new Uint8Array(0), new TextEncoder().encode('{"not":"onnx"}')]) {
      const error = await load(b, 2).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as Error).name).toBe('ModelFormatError');
    }
  });

  it('loads a model without Keel metadata and checks it by running a probe row', async () => {
    const scorer = await load(foreign(), 2, ['a', 'b']);
    scorers.push(scorer);
    expect(scorer.keelFormat).toBe(false);
    expect(scorer.featureNames).toBeUndefined();
    const dynamicWidth = foreign((g) => {
      g.input![0]!.type!.tensorType!.shape!.dim![1] = { dimParam: 'F' };
    });
    const error = await load(dynamicWidth, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toMatch(/fails on a 1-feature row/);
    expect((error as Error).cause).toBeDefined();
  });

  it('rejects a non-float input and a fixed batch dimension', async () => {
    const doubleInput = foreign((g) => {
      g.input![0]!.type!.tensorType!.elemType = onnx.TensorProto.DataType.DOUBLE;
    });
    await expect(load(doubleInput, 2)).rejects.toThrow(/float64, expected float32/);
    const fixedBatch = foreign((g) => {
      g.input![0]!.type!.tensorType!.shape!.dim![0] = { dimValue: 1 };
    });
    await expect(load(fixedBatch, 2)).rejects.toThrow(/fixed batch dimension 1/);
  });

  it('names a ZipMap output it cannot read', async () => {
    const zipmap = foreign((g) => {
      g.node!.push({
        opType: 'ZipMap',
        domain: 'ai.onnx.ml',
        input: ['probabilities'],
        output: ['output_probability'],
        attribute: [
          { name: 'classlabels_int64s', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1] },
        ],
      });
      g.output = [
        g.output![0]!,
        {
          name: 'output_probability',
          type: {
            sequenceType: {
              elemType: {
                mapType: {
                  keyType: onnx.TensorProto.DataType.INT64,
                  valueType: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } },
                },
              },
            },
          },
        },
      ];
    });
    await expect(load(zipmap, 2)).rejects.toThrow(/'output_probability' is not a tensor \(a ZipMap/);
  });
});
