"""Writes the XGBoost test fixtures of test/fixtures/xgboost/ (committed: run again only to change them).

Run from the repository root, with Debian's Python and its packages (python3-xgboost 1.7.4,
python3-numpy, python3-sklearn), after `npm ci` (the churn fixture's rows come from Keel's own
generator and feature set, through tsx):

    /usr/bin/python3 scripts/xgboost-fixtures.py

Each fixture NAME is a small binary:logistic model trained with a fixed seed, saved by XGBoost as
NAME.json and NAME.ubj (the same model in both encodings), and NAME.predictions.json: test rows
(row-major float32 values, null for a missing value) with XGBoost's own predictions on them,
`margin` (predict(output_margin=True)) and `probability` (predict()). The test rows hold NaNs, and
values equal to the model's split conditions (the strict `<` of a split). A model trained with early
stopping keeps the rounds after its best one in the file; its predictions are those of the best
iteration (iteration_range up to best_iteration + 1), the model Keel serves.
"""

import json
import os
import subprocess

import numpy as np
import xgboost as xgb
from sklearn.datasets import make_classification

OUT = os.path.join("test", "fixtures", "xgboost")
TEST_ROWS = 200


def synthetic(seed, rows, features):
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=max(2, features - 2),
        n_redundant=0,
        random_state=seed,
    )
    return x.astype(np.float32), y


def with_nans(x, share, rng, columns=None):
    x = x.copy()
    mask = rng.random(x.shape) < share
    if columns is not None:
        keep = np.ones(x.shape[1], dtype=bool)
        keep[columns] = False
        mask[:, keep] = False
    x[mask] = np.nan
    return x


def split_conditions(booster):
    """(feature, condition) of every split of the model, from its own JSON."""
    model = json.loads(booster.save_raw("json"))
    out = []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for i, left in enumerate(tree["left_children"]):
            if left != -1:
                out.append((tree["split_indices"][i], tree["split_conditions"][i]))
    return out


def test_rows(booster, x, rng):
    """The held-out rows with 10% NaN, and 20 rows whose value sits exactly on a split condition."""
    rows = with_nans(x[:TEST_ROWS], 0.1, rng)
    splits = split_conditions(booster)
    for r in range(min(20, len(splits))):
        feature, condition = splits[rng.integers(len(splits))]
        rows[r, feature] = np.float32(condition)
    return rows


def write(name, booster, x_test):
    booster.save_model(os.path.join(OUT, f"{name}.json"))
    booster.save_model(os.path.join(OUT, f"{name}.ubj"))
    matrix = xgb.DMatrix(x_test, missing=np.nan, feature_names=booster.feature_names)
    best = booster.attr("best_iteration")
    rounds = (0, int(best) + 1) if best is not None else (0, 0)
    margin = booster.predict(matrix, output_margin=True, iteration_range=rounds)
    probability = booster.predict(matrix, iteration_range=rounds)
    values = [None if np.isnan(v) else float(v) for v in x_test.astype(np.float32).ravel()]
    with open(os.path.join(OUT, f"{name}.predictions.json"), "w") as f:
        json.dump(
            {
                "features": int(x_test.shape[1]),
                "rows": int(x_test.shape[0]),
                "x": values,
                "margin": [float(v) for v in margin],
                "probability": [float(v) for v in probability],
            },
            f,
            separators=(",", ":"),
        )
        f.write("\n")


def train(x, y, params, rounds, feature_names=None):
    matrix = xgb.DMatrix(x, label=y, missing=np.nan, feature_names=feature_names)
    base = {"objective": "binary:logistic", "seed": 7, "nthread": 1, "eta": 0.3}
    return xgb.train({**base, **params}, matrix, num_boost_round=rounds)


KEEL_ROWS = """
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
const rows = 3000;
const x = new Float32Array(rows * FEATURE_SET.count);
const y: number[] = [];
for (const record of generateRecords({ rows, seed: 18, asOf: new Date('2026-12-01T00:00:00Z') })) {
  const missing = FEATURE_SET.encodeInto(record, x, y.length * FEATURE_SET.count);
  if (missing) throw new Error(`generated record lacks ${missing}`);
  y.push(record.churned);
}
console.log(JSON.stringify({ names: FEATURE_SET.names, x: Array.from(x), y }));
"""


def keel_rows():
    """Customers from Keel's generator, encoded by Keel's current feature set."""
    result = subprocess.run(
        ["node_modules/.bin/tsx", "-e", KEEL_ROWS], capture_output=True, text=True, check=True
    )
    data = json.loads(result.stdout)
    x = np.array(data["x"], dtype=np.float32).reshape(len(data["y"]), len(data["names"]))
    return data["names"], x, np.array(data["y"])


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(18)

    for depth, rounds in [(1, 20), (3, 15), (6, 4)]:
        x, y = synthetic(depth, 1200, 6)
        booster = train(x[TEST_ROWS:], y[TEST_ROWS:], {"max_depth": depth, "tree_method": "exact"}, rounds)
        write(f"depth{depth}", booster, test_rows(booster, x, rng))

    # Missing values in training: each split learns its own default direction, left or right.
    x, y = synthetic(11, 1500, 5)
    x_nan = with_nans(x, 0.3, rng, columns=[0, 1, 2])
    # Where a value is missing says something about the label, so both directions win somewhere.
    x_nan[(y == 1) & (rng.random(len(y)) < 0.3), 3] = np.nan
    booster = train(x_nan[TEST_ROWS:], y[TEST_ROWS:], {"max_depth": 3, "tree_method": "hist"}, 12)
    write("missing", booster, test_rows(booster, x_nan, rng))

    x, y = synthetic(12, 1000, 4)
    booster = train(x[TEST_ROWS:], y[TEST_ROWS:], {"max_depth": 2, "base_score": 0.2}, 10)
    write("base-score", booster, test_rows(booster, x, rng))

    # Two numeric columns and a 4-category column one-hot encoded as 0/1 columns.
    numeric, y = synthetic(13, 1200, 2)
    category = rng.integers(0, 4, len(y))
    y = np.where(rng.random(len(y)) < 0.3, (category >= 2).astype(int), y)
    x = np.hstack([numeric, np.eye(4, dtype=np.float32)[category]])
    booster = train(x[TEST_ROWS:], y[TEST_ROWS:], {"max_depth": 3, "tree_method": "hist"}, 10)
    write("one-hot", booster, test_rows(booster, x, rng))

    names, x, y = keel_rows()
    booster = train(
        x[TEST_ROWS:], y[TEST_ROWS:], {"max_depth": 4, "tree_method": "hist", "eta": 0.2}, 20, names
    )
    write("churn", booster, test_rows(booster, x, rng))

    # Early stopping, as SageMaker's built-in XGBoost runs it: the file holds every round trained.
    x, y = synthetic(14, 1600, 5)
    matrix = xgb.DMatrix(x[600:], label=y[600:], missing=np.nan)
    validation = xgb.DMatrix(x[TEST_ROWS:600], label=y[TEST_ROWS:600], missing=np.nan)
    booster = xgb.train(
        {"objective": "binary:logistic", "seed": 7, "nthread": 1, "eta": 0.5, "max_depth": 4},
        matrix,
        num_boost_round=60,
        evals=[(validation, "validation")],
        early_stopping_rounds=3,
        verbose_eval=False,
    )
    write("early-stopping", booster, test_rows(booster, x, rng))


if __name__ == "__main__":
    main()
