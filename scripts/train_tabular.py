"""Rebuild the xgboost and lightgbm samples, deterministically, with MLServer 1.5.0's libraries.

Each FORMAT writes samples/<FORMAT>/: the one model file that MLServer's runtime for it loads
(mlserver_xgboost looks for model.bst, model.json or model.ubj; mlserver_lightgbm only for
model.bst) and metadata.json (versions, checksum and a V2 sample), which MLServer ignores.
Run with MLServer's virtualenv's python (scripts/mlserver_env.sh prints it):

    "$(bash scripts/mlserver_env.sh | tail -1)" scripts/train_tabular.py xgboost lightgbm [--out-root samples]

Both learn the same three separated clusters of points. The answers are exact on purpose:
mlserver_xgboost answers `predict()`, the class index (INT64), for a model saved by
XGBClassifier; mlserver_lightgbm answers `Booster.predict()`, which for a classifier is a
probability, so the lightgbm sample is a regression whose one tree (learning rate 1) fits the
class index exactly: 0.0, 1.0 and 2.0 (FP64).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import lightgbm
import numpy as np
import xgboost

ROOT = Path(__file__).resolve().parent.parent
MLSERVER_VERSION = "1.5.0"
RUNTIME_VERSIONS = {"xgboost": "2.0.", "lightgbm": "4.3."}
"""What the seldonio/mlserver:1.5.0 image installs (its poetry.lock: xgboost 2.0.3, lightgbm 4.3.0)."""
CENTERS = [(0.0, 0.0), (4.0, 4.0), (8.0, 0.0)]
OFFSETS = [-1.0, -0.5, 0.0, 0.5, 1.0]
"""A grid rather than random draws: the same points whatever numpy's generators do."""
SAMPLE = [[0.25, -0.5], [4.5, 3.75], [7.5, 0.25]]


def dataset() -> tuple[np.ndarray, np.ndarray]:
    points = [(cx + dx, cy + dy) for cx, cy in CENTERS for dx in OFFSETS for dy in OFFSETS]
    labels = [label for label in range(len(CENTERS)) for _ in range(len(OFFSETS) ** 2)]
    return np.array(points, dtype=np.float32), np.array(labels)


def train_xgboost(out: Path) -> list:
    """Saved through XGBClassifier, whose `scikit_learn` attribute makes the runtime load a
    classifier: it tries XGBRegressor first and takes the TypeError as the sign."""
    x, y = dataset()
    model = xgboost.XGBClassifier(n_estimators=2, max_depth=2, learning_rate=1.0, tree_method="exact",
                                  n_jobs=1, random_state=0)
    model.fit(x, y)
    model.save_model(out / "model.json")
    return model.predict(np.array(SAMPLE, dtype=np.float32)).tolist()


def train_lightgbm(out: Path) -> list:
    x, y = dataset()
    params = {"objective": "regression", "learning_rate": 1.0, "num_leaves": 3, "min_data_in_leaf": 5,
              "num_threads": 1, "deterministic": True, "seed": 0, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, label=y.astype(np.float64)), num_boost_round=1)
    booster.save_model(out / "model.bst")
    return booster.predict(np.array(SAMPLE, dtype=np.float32)).tolist()


TRAINERS: dict[str, tuple[Callable[[Path], list], str, str]] = {
    "xgboost": (train_xgboost, "model.json", "mlserver_xgboost.XGBoostModel"),
    "lightgbm": (train_lightgbm, "model.bst", "mlserver_lightgbm.LightGBMModel"),
}


def v2_request(rows: list[list[float]]) -> dict:
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP32",
                        "data": [value for row in rows for value in row]}]}


def write(fmt: str, out: Path) -> dict:
    library = {"xgboost": xgboost, "lightgbm": lightgbm}[fmt]
    if not library.__version__.startswith(RUNTIME_VERSIONS[fmt]):
        raise SystemExit(f"{fmt} {library.__version__} is not the runtime's {RUNTIME_VERSIONS[fmt]}x")
    train, model_file, model_class = TRAINERS[fmt]
    out.mkdir(parents=True, exist_ok=True)
    predictions = train(out)
    metadata = {
        "format": fmt,
        f"{fmt}_version": library.__version__,
        "mlserver_version": MLSERVER_VERSION,
        "model_class": model_class,
        "model_file": model_file,
        "sha256": hashlib.sha256((out / model_file).read_bytes()).hexdigest(),
        "sample": {"protocol": "v2", "request": v2_request(SAMPLE), "predictions": predictions},
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formats", nargs="+", choices=sorted(TRAINERS), metavar="FORMAT")
    parser.add_argument("--out-root", type=Path, default=ROOT / "samples",
                        help="writes <out-root>/<FORMAT>/ (default: samples)")
    args = parser.parse_args()
    print(json.dumps({fmt: write(fmt, args.out_root / fmt) for fmt in args.formats}, indent=2))
