"""The xgboost and lightgbm samples served by the real MLServer, started the way KServe's
`kserve-mlserver` runtime starts it in the cluster (its container from the released chart), and
called over V2 with tools.predict."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request

import pytest

from settings.runtimes import MLSERVER_MODEL_CLASSES
from tests.conftest import PROJECT_DIR
from tests.model.conftest import (
    SAMPLES_DIR,
    kserve_mlserver_runtime,
    launch_mlserver,
    mlserver_command,
    wait_ready,
)
from tools.predict import Target, call, sample_request

FORMATS = ("xgboost", "lightgbm")
ANSWER_DATATYPES = {"xgboost": "INT64", "lightgbm": "FP64"}
"""mlserver_xgboost answers XGBClassifier.predict (class indices), mlserver_lightgbm Booster.predict."""


def metadata(fmt: str) -> dict:
    return json.loads((SAMPLES_DIR / fmt / "metadata.json").read_text())


def in_venv(python: str, code: str) -> object:
    out = subprocess.run([python, "-c", f"import json; print(json.dumps({code}))"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_virtualenv_is_the_mlserver_the_runtime_pins(mlserver_python):
    [container] = kserve_mlserver_runtime()["spec"]["containers"]
    image, _, tag = container["image"].rpartition(":")
    assert image == "docker.io/seldonio/mlserver"
    versions = in_venv(mlserver_python, "{d: __import__('importlib.metadata').metadata.version(d) for d in "
                                        "('mlserver', 'mlserver-xgboost', 'mlserver-lightgbm')}")
    assert versions == dict.fromkeys(versions, tag)
    assert {metadata(fmt)["mlserver_version"] for fmt in FORMATS} == {tag}


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_is_the_one_file_the_runtime_loads(mlserver_python, fmt):
    """The runtime takes the first well-known name it finds, so the sample holds exactly one; its
    checksum and versions are the metadata's, and it fits in a ConfigMap with room to spare."""
    meta = metadata(fmt)
    known = in_venv(mlserver_python, f"__import__('mlserver_{fmt}.{fmt}', fromlist=['x']).WELLKNOWN_MODEL_FILENAMES")
    sample_dir = SAMPLES_DIR / fmt
    assert [p.name for p in sample_dir.iterdir() if p.name in known] == [meta["model_file"]]
    model = (sample_dir / meta["model_file"]).read_bytes()
    assert hashlib.sha256(model).hexdigest() == meta["sha256"]
    assert len(model) < 64 * 1024
    assert meta[f"{fmt}_version"] == in_venv(mlserver_python, f"__import__('{fmt}').__version__")
    assert meta["model_class"] == MLSERVER_MODEL_CLASSES[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
def test_mlserver_answers_the_sample_over_v2(mlservers, fmt):
    server, sample = mlservers[fmt], metadata(fmt)["sample"]
    url = f"{server.base}/v2/models/{server.name}/infer"
    out = subprocess.run([sys.executable, "-m", "tools.predict", "--url", url, "--sample", str(SAMPLES_DIR / fmt),
                          "--expect"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == sample["predictions"]
    request = urllib.request.Request(url, data=json.dumps(sample["request"]).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["model_name"] == server.name
    [output] = answer["outputs"]
    assert (output["name"], output["datatype"], output["data"]) == ("predict", ANSWER_DATATYPES[fmt],
                                                                    sample["predictions"])


def test_a_retrained_sample_is_the_same_model(mlserver_python, tmp_path):
    """Fixed data (a grid), one thread, fixed seeds: the same bytes, so the same answers."""
    out = subprocess.run([mlserver_python, str(PROJECT_DIR / "scripts/train_tabular.py"), *FORMATS,
                          "--out-root", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for fmt in FORMATS:
        again = json.loads((tmp_path / fmt / "metadata.json").read_text())
        assert again == metadata(fmt)
        name = again["model_file"]
        assert (tmp_path / fmt / name).read_bytes() == (SAMPLES_DIR / fmt / name).read_bytes()


def test_a_model_class_not_the_formats_fails_to_load(mlserver_python, tmp_path):
    """The class KServe puts in `modelClass` matters: each sample under the other format's class
    never turns ready, and MLServer says why."""
    swapped = {"xgboost": ("lightgbm", "LightGBMError"), "lightgbm": ("xgboost", "XGBoostError")}
    servers = {}
    for fmt, (other, _) in swapped.items():
        command = mlserver_command(mlserver_python, SAMPLES_DIR / fmt, "wrong", fmt, MLSERVER_MODEL_CLASSES[other])
        servers[fmt] = launch_mlserver(command, "wrong", tmp_path / fmt)
    try:
        for fmt, (_, error) in swapped.items():
            with pytest.raises(AssertionError, match=error):
                wait_ready(servers[fmt])
    finally:
        for server in servers.values():
            server.stop()


def test_tools_predict_calls_a_sample_as_a_function(mlservers):
    server = mlservers["lightgbm"]
    request = sample_request(SAMPLES_DIR / "lightgbm", None)
    assert request.protocol == "v2"
    result = call(Target(f"{server.base}/v2/models/{server.name}/infer"), request, timeout=30)
    assert result == request.predictions == [0.0, 1.0, 2.0]
