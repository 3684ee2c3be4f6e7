import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { FEATURE_SET } from '#shared/features/index.ts';
import { ensembleMargin, sigmoid, type TreeEnsemble } from '#shared/model/model-types.ts';
import { exportOnnx } from '#shared/model/onnx-export.ts';
import { loadOnnxScorer, type OnnxScorer } from '#shared/model/onnx-runtime.ts';
import {
  checkXgboostParity,
  importXgboostModel,
  parseXgboostModel,
  XgboostModelError,
  XgboostParityError,
  xgboostFeatureNames,
  xgboostMargins,
  xgboostToEnsemble,
} from '#shared/model/xgboost.ts';

/** Written by scripts/xgboost-fixtures.py with XGBoost 1.7.4 (see there). */
const FIXTURES = [
  'depth1',
  'depth3',
  'depth6',
  'missing',
  'base-score',
  'one-hot',
  'churn',
  'early-stopping',
] as const;
const TOLERANCE = 1e-6;

const fixtureFile = (file: string) => new URL(`../../fixtures/xgboost/${file}`, import.meta.url);
const modelBytes = (name: string, ext: 'json' | 'ubj') =>
  new Uint8Array(readFileSync(fixtureFile(`${name}.${ext}`)));
const modelJson = (name: string) => JSON.parse(readFileSync(fixtureFile(`${name}.json`), 'utf8'));
const encode = (document: unknown) => new TextEncoder().encode(JSON.stringify(document));

interface Predictions {
  features: number;
  rows: number;
  x: Float32Array;
  margin: number[];
  probability: number[];
}

function predictions(name: string): Predictions {
  const raw = JSON.parse(readFileSync(fixtureFile(`${name}.predictions.json`), 'utf8'));
  return { ...raw, x: Float32Array.from(raw.x, (v: number | null) => (v === null ? Number.NaN : v)) };
}

const names = (count: number) => Array.from({ length: count }, (_, i) => `f${i}`);

const scorers: OnnxScorer[] = [];
afterAll(async () => {
  await Promise.all(scorers.map((s) => s.release()));
});

async function onnxProbabilities(model: TreeEnsemble, x: Float32Array, rows: number): Promise<Float64Array> {
  const featureNames = names(model.featureCount);
  const scorer = await loadOnnxScorer(exportOnnx(model, { featureNames }), {
    featureCount: model.featureCount,
    featureNames,
  });
  scorers.push(scorer);
  return scorer.scoreBatch(x, rows);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe.each(FIXTURES)('XGBoost fixture %s', (name) => {
  const expected = predictions(name);
  const model = parseXgboostModel(modelBytes(name, 'json'));

  it('reads the same model from JSON and from UBJSON', () => {
    expect(parseXgboostModel(modelBytes(name, 'ubj'))).toEqual(model);
    expect(model.featureCount).toBe(expected.features);
    expect(model.trees.length).toBeGreaterThan(0);
  });

  it('test rows hold missing values', () => {
    expect(expected.x.some(Number.isNaN)).toBe(true);
  });

  it("margins equal XGBoost's own", () => {
    const margins = xgboostMargins(model, expected.x, expected.rows);
    expect(maxDiff(margins, expected.margin)).toBeLessThanOrEqual(TOLERANCE);
  });

  it("summed in float32 as XGBoost sums them, the leaves reached give XGBoost's margins bit for bit", () => {
    // Each tree alone (base margin 0) yields the leaf value every row reaches in it.
    const leaves = model.trees.map((tree) =>
      xgboostMargins({ ...model, baseMargin: 0, trees: [tree] }, expected.x, expected.rows),
    );
    const float32 = Array.from({ length: expected.rows }, (_, r) =>
      leaves.reduce((sum, leaf) => Math.fround(sum + leaf[r]!), model.baseMargin),
    );
    expect(float32).toEqual(expected.margin);
  });

  it("converted to ONNX, onnxruntime's probabilities equal XGBoost's own, NaN rows included", async () => {
    const ensemble = xgboostToEnsemble(model);
    const probabilities = await onnxProbabilities(ensemble, expected.x, expected.rows);
    expect(maxDiff(probabilities, expected.probability)).toBeLessThanOrEqual(TOLERANCE);
    // Keel's in-process reference walks the converted trees to the same margins.
    const margins = xgboostMargins(model, expected.x, expected.rows);
    const reference = Array.from({ length: expected.rows }, (_, r) =>
      ensembleMargin(ensemble, expected.x, r * expected.features),
    );
    expect(maxDiff(reference, margins)).toBeLessThanOrEqual(1e-12);
  });
});

describe('missing values', () => {
  it('the NaN fixture learned both default directions, and its NaN rows take both', () => {
    const model = parseXgboostModel(modelBytes('missing', 'json'));
    const internal = model.trees.flatMap((t) =>
      Array.from(t.defaultLeft).filter((_, i) => t.leftChildren[i] !== -1),
    );
    expect(internal).toContain(0);
    expect(internal).toContain(1);
  });

  it('onnxruntime sends NaN the way missingLeft says, and only where it says', async () => {
    // Root splits feature 0 at 0.5; node 1 splits feature 1 at 0.5 with NaN going right.
    const tree = {
      feature: [0, -1, 1, -1, -1],
      threshold: [0.5, 0, 0.5, 0, 0],
      left: [1, -1, 3, -1, -1],
      right: [2, -1, 4, -1, -1],
      value: [0, -1, 0, 1, 2],
      missingLeft: [true, false, false, false, false],
    };
    const model: TreeEnsemble = { kind: 'tree-ensemble', featureCount: 2, baseScore: 0, trees: [tree] };
    const x = Float32Array.from([Number.NaN, 0, 1, Number.NaN, 1, 0, 0, Number.NaN]);
    const expectedMargins = [-1, 2, 1, -1];
    const probabilities = await onnxProbabilities(model, x, 4);
    expect(Array.from({ length: 4 }, (_, r) => ensembleMargin(model, x, r * 2))).toEqual(expectedMargins);
    expect(maxDiff(probabilities, expectedMargins.map(sigmoid))).toBeLessThanOrEqual(TOLERANCE);
    // Without missingLeft, NaN goes right everywhere, as for Keel's own trees.
    const { missingLeft: _, ...plain } = tree;
    const rightOnly: TreeEnsemble = { ...model, trees: [plain] };
    const plainMargins = [1, 2, 1, -1];
    expect(Array.from({ length: 4 }, (_, r) => ensembleMargin(rightOnly, x, r * 2))).toEqual(plainMargins);
    const plainProbabilities = await onnxProbabilities(rightOnly, x, 4);
    expect(maxDiff(plainProbabilities, plainMargins.map(sigmoid))).toBeLessThanOrEqual(TOLERANCE);
  });

  it("a model without missingLeft exports no missing-value attribute (Keel's models unchanged)", () => {
    const tree = {
      feature: [0, -1, -1],
      threshold: [1, 0, 0],
      left: [1, -1, -1],
      right: [2, -1, -1],
      value: [0, 1, 2],
    };
    const attributes = (model: TreeEnsemble) =>
      onnxProto.onnx.ModelProto.decode(exportOnnx(model, { featureNames: ['a'] })).graph?.node?.flatMap(
        (n) => n.attribute?.map((a) => a.name) ?? [],
      ) ?? [];
    const model: TreeEnsemble = { kind: 'tree-ensemble', featureCount: 1, baseScore: 0, trees: [tree] };
    expect(attributes(model)).not.toContain('nodes_missing_value_tracks_true');
    const withMissing = { ...model, trees: [{ ...tree, missingLeft: [true, false, false] }] };
    expect(attributes(withMissing)).toContain('nodes_missing_value_tracks_true');
  });
});

describe('base_score', () => {
  it('reads the vector form "[5E-1]" of XGBoost 3 like "5E-1"', () => {
    const document = modelJson('depth3');
    expect(document.learner.learner_model_param.base_score).toBe('5E-1');
    const scalar = parseXgboostModel(encode(document));
    document.learner.learner_model_param.base_score = '[5E-1]';
    expect(parseXgboostModel(encode(document))).toEqual(scalar);
    expect(Math.abs(scalar.baseMargin)).toBe(0);
  });

  it('starts the margin at logit(base_score)', () => {
    const model = parseXgboostModel(modelBytes('base-score', 'json'));
    expect(model.baseScore).toBe(Math.fround(0.2));
    expect(model.baseMargin).toBeCloseTo(Math.log(0.2 / 0.8), 6);
  });
});

describe('importXgboostModel', () => {
  const churn = predictions('churn');
  const options = { featureSet: FEATURE_SET, rows: { x: churn.x, count: churn.rows } };

  it("imports the churn model on Keel's feature set, with the parity it measured", async () => {
    const imported = await importXgboostModel(modelBytes('churn', 'ubj'), options);
    expect(imported.parityMaxDiff).toBeLessThanOrEqual(TOLERANCE);
    expect(imported.model.featureCount).toBe(FEATURE_SET.count);
    expect(imported.params).toMatchObject({
      source: 'xgboost',
      objective: 'binary:logistic',
      trees: 20,
      max_depth: 4,
    });
    expect(imported.params.xgboost_version).toBe('1.7.4');
    const scorer = await loadOnnxScorer(imported.onnx, {
      featureCount: FEATURE_SET.count,
      featureNames: FEATURE_SET.names,
    });
    scorers.push(scorer);
    const probabilities = await scorer.scoreBatch(churn.x, churn.rows);
    expect(maxDiff(probabilities, churn.probability)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('the churn model carries the feature names of the feature set', () => {
    const model = parseXgboostModel(modelBytes('churn', 'json'));
    expect(xgboostFeatureNames(model)).toEqual(FEATURE_SET.names);
    expect(xgboostFeatureNames(parseXgboostModel(modelBytes('depth1', 'json')))).toBeNull();
  });

  it('serves an early-stopped model up to its best iteration, and refuses a best iteration past its trees', () => {
    const model = parseXgboostModel(modelBytes('early-stopping', 'ubj'));
    expect(model).toMatchObject({ bestIteration: 12, treesInFile: 16 });
    expect(model.trees).toHaveLength(13);
    // XGBoost 1.7 records the last round as the best when nothing stopped early: every tree is served.
    expect(parseXgboostModel(modelBytes('churn', 'json'))).toMatchObject({
      bestIteration: 19,
      treesInFile: 20,
    });
    const document = modelJson('early-stopping');
    document.learner.attributes.best_iteration = '16';
    expect(() => parseXgboostModel(encode(document))).toThrow(
      /learner\.attributes\.best_iteration: 16, but the model has 16 trees/,
    );
  });

  it('refuses feature names in another order, naming both', async () => {
    const document = modelJson('churn');
    const featureNames: string[] = document.learner.feature_names;
    [featureNames[3], featureNames[4]] = [featureNames[4]!, featureNames[3]!];
    await expect(importXgboostModel(encode(document), options)).rejects.toThrow(
      new RegExp(
        `feature_names differ .* at position 3: the model has '${FEATURE_SET.names[4]}', the feature set '${FEATURE_SET.names[3]}'`,
      ),
    );
  });

  it('refuses an unnamed model with another feature count', async () => {
    const error = await importXgboostModel(modelBytes('depth1', 'json'), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(XgboostModelError);
    expect((error as Error).message).toMatch(
      /learner_model_param\.num_feature is 6, feature set .* has 20 features/,
    );
  });

  it('checks parity: the ONNX of a tampered model fails against the XGBoost trees', async () => {
    const model = parseXgboostModel(modelBytes('churn', 'json'));
    const ensemble = xgboostToEnsemble(model);
    const tree = ensemble.trees[0]!;
    const leaf = tree.feature.indexOf(-1);
    const tampered: TreeEnsemble = {
      ...ensemble,
      trees: [
        { ...tree, value: tree.value.map((v, i) => (i === leaf ? v + 0.01 : v)) },
        ...ensemble.trees.slice(1),
      ],
    };
    const onnx = exportOnnx(tampered, { featureNames: FEATURE_SET.names });
    await expect(checkXgboostParity(model, onnx, options)).rejects.toThrow(XgboostParityError);
    await expect(checkXgboostParity(model, onnx, options)).rejects.toThrow(
      /max difference .* > 0\.000001 over 200 rows/,
    );
    const faithful = exportOnnx(ensemble, { featureNames: FEATURE_SET.names });
    expect((await checkXgboostParity(model, faithful, options)).maxDiff).toBeLessThanOrEqual(TOLERANCE);
    await expect(
      checkXgboostParity(model, faithful, { ...options, rows: { x: new Float32Array(0), count: 0 } }),
    ).rejects.toThrow(/no rows/);
  });
});

describe('malformed models', () => {
  const TREE = 'learner.gradient_booster.model.trees[1]';
  // biome-ignore lint/suspicious/noExplicitAny: XGBoost's model JSON, edited in place by each case
  type Model = any;
  const cases: [string, (m: Model) => void, RegExp][] = [
    [
      'a multi-class objective',
      (m) => {
        m.learner.objective.name = 'multi:softprob';
      },
      /^learner\.objective\.name: 'multi:softprob' is not supported/,
    ],
    [
      'a regression objective',
      (m) => {
        m.learner.objective.name = 'reg:squarederror';
      },
      /^learner\.objective\.name/,
    ],
    [
      'a dart booster',
      (m) => {
        m.learner.gradient_booster.name = 'dart';
      },
      /^learner\.gradient_booster\.name: booster 'dart' is not supported/,
    ],
    [
      'several classes',
      (m) => {
        m.learner.learner_model_param.num_class = '3';
      },
      /^learner\.learner_model_param\.num_class: 3 classes/,
    ],
    [
      'a second output group',
      (m) => {
        m.learner.gradient_booster.model.tree_info[2] = 1;
      },
      /^learner\.gradient_booster\.model\.tree_info\[2\]: output group 1/,
    ],
    [
      'a categorical split',
      (m) => {
        m.learner.gradient_booster.model.trees[1].split_type[0] = 1;
      },
      new RegExp(`^${TREE.replace(/[.[\]]/g, '\\$&')}\\.split_type\\[0\\]: categorical split`),
    ],
    [
      'categories',
      (m) => {
        m.learner.gradient_booster.model.trees[1].categories = [2];
      },
      /trees\[1\]\.categories: categorical splits/,
    ],
    [
      'a categorical feature type',
      (m) => {
        m.learner.feature_types = ['float', 'c', 'float', 'float', 'float', 'float'];
      },
      /^learner\.feature_types\[1\]/,
    ],
    [
      'a base_score outside (0, 1)',
      (m) => {
        m.learner.learner_model_param.base_score = '1.5E0';
      },
      /^learner\.learner_model_param\.base_score: 1\.5 is not a probability/,
    ],
    [
      'a base_score that is no number',
      (m) => {
        m.learner.learner_model_param.base_score = 'half';
      },
      /^learner\.learner_model_param\.base_score: expected a number, got "half"/,
    ],
    [
      'two base scores',
      (m) => {
        m.learner.learner_model_param.base_score = '[5E-1,5E-1]';
      },
      /base_score: 2 base scores/,
    ],
    [
      'no num_feature',
      (m) => {
        delete m.learner.learner_model_param.num_feature;
      },
      /^learner\.learner_model_param\.num_feature: expected a number, got nothing/,
    ],
    [
      'a child pointing back at the root',
      (m) => {
        m.learner.gradient_booster.model.trees[1].left_children[0] = 0;
      },
      /trees\[1\]\.left_children\[0\]: 0 is not a node of its own/,
    ],
    [
      'a node with two parents',
      (m) => {
        const t = m.learner.gradient_booster.model.trees[1];
        t.right_children[0] = t.left_children[0];
      },
      /trees\[1\]\.right_children\[0\]: \d+ is not a node of its own/,
    ],
    [
      'a child beyond the tree',
      (m) => {
        m.learner.gradient_booster.model.trees[1].right_children[0] = 999;
      },
      /trees\[1\]\.right_children\[0\]: 999/,
    ],
    [
      'a split on a feature beyond num_feature',
      (m) => {
        m.learner.gradient_booster.model.trees[1].split_indices[0] = 6;
      },
      /trees\[1\]\.split_indices\[0\]: feature 6 is outside 0\.\.5/,
    ],
    [
      'an array shorter than the tree',
      (m) => {
        m.learner.gradient_booster.model.trees[1].default_left.pop();
      },
      /trees\[1\]\.default_left: \d+ entries for \d+ nodes/,
    ],
    [
      'a split condition that is not a number',
      (m) => {
        m.learner.gradient_booster.model.trees[1].split_conditions[0] = 'x';
      },
      /trees\[1\]\.split_conditions\[0\]: expected a finite number/,
    ],
    [
      'a default_left that is neither 0 nor 1',
      (m) => {
        m.learner.gradient_booster.model.trees[1].default_left[0] = 2;
      },
      /trees\[1\]\.default_left\[0\]: expected 0\/1/,
    ],
    [
      'fewer trees than num_trees',
      (m) => {
        m.learner.gradient_booster.model.trees.pop();
      },
      /model\.trees: 14 trees, gbtree_model_param\.num_trees says 15/,
    ],
    [
      'vector leaves',
      (m) => {
        m.learner.gradient_booster.model.trees[1].tree_param.size_leaf_vector = '3';
      },
      /trees\[1\]\.tree_param\.size_leaf_vector: 3/,
    ],
    [
      'no learner',
      (m) => {
        delete m.learner;
      },
      /^learner: expected an object/,
    ],
  ];

  it.each(cases)('refuses %s, naming the field', (_, mutate, message) => {
    const document = modelJson('depth3');
    mutate(document);
    const error = (() => {
      try {
        parseXgboostModel(encode(document));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(XgboostModelError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses bytes that are neither JSON nor UBJSON', () => {
    expect(() => parseXgboostModel(new TextEncoder().encode('not a model'))).toThrow(XgboostModelError);
    expect(() => parseXgboostModel(new Uint8Array(0))).toThrow(/not an XGBoost model/);
    expect(() => parseXgboostModel(encode([1, 2]))).toThrow(/^\(file\): expected an object/);
  });

  it('refuses a truncated UBJSON file, giving the byte offset', () => {
    const bytes = modelBytes('depth3', 'ubj');
    expect(() => parseXgboostModel(bytes.subarray(0, 1000))).toThrow(
      /not an XGBoost model: invalid UBJSON at byte \d+/,
    );
    const trailing = new Uint8Array([...bytes, 0x5a]);
    expect(() => parseXgboostModel(trailing)).toThrow(/1 trailing bytes/);
  });

  it('checks the shape of the rows it scores', () => {
    const model = parseXgboostModel(modelBytes('depth1', 'json'));
    expect(() => xgboostMargins(model, new Float32Array(7), 1)).toThrow(/expected 1 rows x 6 features/);
  });
});
