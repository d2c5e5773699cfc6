"""Rebuild the tutorial's classifier, deterministically, with the runtime's scikit-learn.

Writes exactly one model file (model/model.joblib), which KServe's sklearn runtime loads,
and model/metadata.json (labels, versions, checksum and the smoke-test sample), which it
ignores. Run with the model virtualenv's python (scripts/model_env.sh prints it):

    "$(bash scripts/model_env.sh | tail -1)" scripts/train_model.py [--out model]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import joblib
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

LABELS = {0: "animal", 1: "bird", 2: "plant"}
VOCABULARY = {
    "bear": 0, "elephant": 0, "tiger": 0,
    "eagle": 1, "parrot": 1, "sparrow": 1,
    "rose": 2, "sunflower": 2,
}
SAMPLE = ["sparrow", "elephant", "sunflower"]
RUNTIME_SKLEARN = "1.5."
"""KServe's sklearn runtime pins scikit-learn ~= 1.5.1; a model pickled by another minor is a silent skew."""


def train() -> Pipeline:
    words = list(VOCABULARY)
    pipeline = Pipeline([
        ("tfidf", TfidfVectorizer()),
        ("classifier", LogisticRegression(random_state=42)),
    ])
    return pipeline.fit(words, [VOCABULARY[w] for w in words])


def write(out: Path) -> dict:
    if not sklearn.__version__.startswith(RUNTIME_SKLEARN):
        raise SystemExit(f"scikit-learn {sklearn.__version__} is not the runtime's {RUNTIME_SKLEARN}x")
    out.mkdir(parents=True, exist_ok=True)
    model = train()
    path = out / "model.joblib"
    joblib.dump(model, path)
    metadata = {
        "labels": {str(k): v for k, v in LABELS.items()},
        "sklearn_version": sklearn.__version__,
        "model_file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "sample": {"instances": SAMPLE, "predictions": [int(p) for p in model.predict(SAMPLE)]},
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "model")
    print(json.dumps(write(parser.parse_args().out), indent=2))
