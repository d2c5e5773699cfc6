"""The committed model: one model file, loaded exactly as the sklearn runtime loads it,
classifying the whole vocabulary; and the same model as scripts/train_model.py makes."""

from __future__ import annotations

import hashlib
import json
import subprocess

from tests.conftest import PROJECT_DIR

MODEL_DIR = PROJECT_DIR / "model"


def run(python: str, code: str, *args: str) -> dict:
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LOAD_AS_RUNTIME = """
import json, sys
from pathlib import Path
import joblib
from tools.model_server import model_file
model = joblib.load(model_file(Path(sys.argv[1])))
words = ["bear", "elephant", "tiger", "eagle", "parrot", "sparrow", "rose", "sunflower"]
print(json.dumps({"all": dict(zip(words, map(int, model.predict(words)))),
                  "sample": [int(p) for p in model.predict(["sparrow", "elephant", "sunflower"])]}))
"""


def test_directory_holds_exactly_one_model_file():
    names = sorted(p.name for p in MODEL_DIR.iterdir())
    assert names == ["metadata.json", "model.joblib"]


def test_runtime_style_load_classifies_every_word(model_python):
    result = run(model_python, LOAD_AS_RUNTIME, str(MODEL_DIR))
    assert result["sample"] == [1, 0, 2]
    assert result["all"] == {"bear": 0, "elephant": 0, "tiger": 0, "eagle": 1, "parrot": 1, "sparrow": 1,
                             "rose": 2, "sunflower": 2}


def test_metadata_describes_the_committed_file():
    meta = json.loads((MODEL_DIR / "metadata.json").read_text())
    assert meta["sha256"] == hashlib.sha256((MODEL_DIR / "model.joblib").read_bytes()).hexdigest()
    assert meta["sklearn_version"].startswith("1.5.")
    assert meta["labels"] == {"0": "animal", "1": "bird", "2": "plant"}
    assert meta["sample"] == {"instances": ["sparrow", "elephant", "sunflower"], "predictions": [1, 0, 2]}


COMPARE = """
import json, sys
import joblib, numpy as np
a, b = (joblib.load(p) for p in sys.argv[1:3])
same = lambda x, y: bool(np.array_equal(x, y))
close = lambda x, y: bool(np.allclose(x, y, rtol=1e-12, atol=1e-12))
print(json.dumps({
    "vocabulary": a["tfidf"].vocabulary_ == b["tfidf"].vocabulary_,
    "idf": same(a["tfidf"].idf_, b["tfidf"].idf_),
    "coef": close(a["classifier"].coef_, b["classifier"].coef_),
    "intercept": close(a["classifier"].intercept_, b["classifier"].intercept_),
    "classes": same(a["classifier"].classes_, b["classifier"].classes_),
}))
"""


def test_committed_model_is_what_the_trainer_produces(model_python, tmp_path):
    """Byte equality is out of reach (the pickle holds an id() of a stop-word list), so the
    fitted parameters must match instead: the vocabulary and classes exactly, the floats to 1e-12
    (the solver's last bits follow the CPU's BLAS kernel: 1.7e-16 apart on another machine)."""
    subprocess.run([model_python, str(PROJECT_DIR / "scripts/train_model.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "model.joblib"]
    result = run(model_python, COMPARE, str(MODEL_DIR / "model.joblib"), str(tmp_path / "model.joblib"))
    assert result == {"vocabulary": True, "idf": True, "coef": True, "intercept": True, "classes": True}
    fresh = json.loads((tmp_path / "metadata.json").read_text())
    committed = json.loads((MODEL_DIR / "metadata.json").read_text())
    assert {k: v for k, v in fresh.items() if k != "sha256"} == {k: v for k, v in committed.items() if k != "sha256"}


def test_a_directory_with_two_model_files_is_refused(model_python, tmp_path):
    (tmp_path / "a.joblib").write_bytes((MODEL_DIR / "model.joblib").read_bytes())
    (tmp_path / "b.pkl").write_bytes(b"x")
    out = subprocess.run([model_python, "-c", LOAD_AS_RUNTIME, str(tmp_path)], capture_output=True, text=True,
                         cwd=PROJECT_DIR, timeout=300)
    assert out.returncode != 0 and "more than one model file" in out.stderr
