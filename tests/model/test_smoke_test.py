"""The smoke-test Job's script, run as the Job runs it (busybox sh and wget, as in the Job's
busybox image) against the real KServe model server serving the committed model."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from components.model_service import expected_fragment, request_body, sample, smoke_script
from settings import config
from tests.conftest import PROJECT_DIR

APPLETS = ("sh", "wget", "timeout", "tail", "tr", "sleep")


@pytest.fixture(scope="module")
def busybox(tmp_path_factory) -> dict[str, str]:
    """An environment whose PATH holds busybox's applets only, as the busybox image does."""
    path = shutil.which("busybox")
    if not path:
        message = "busybox is not installed (bash scripts/test.sh installs Debian's busybox)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    bin_dir = tmp_path_factory.mktemp("busybox")
    for applet in APPLETS:
        (bin_dir / applet).symlink_to(path)
    return {"PATH": str(bin_dir)}


@pytest.fixture(scope="module")
def model_config() -> config.ModelConfig:
    return config.from_stack_file(PROJECT_DIR / "Pulumi.standard.yaml").model


def run_script(env: dict[str, str], script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], env=env, executable=f"{env['PATH']}/sh",
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_models_own_sample_passes(busybox, model_server, model_config, protocol):
    model = replace(model_config, protocol=protocol)
    words, predictions = sample(model)
    assert predictions == [1, 0, 2]
    path = "/v1/models/model:predict" if protocol == "v1" else "/v2/models/model/infer"
    script = smoke_script(f"{model_server}{path}", "model-default.example.com", request_body(model, words),
                          expected_fragment(model, predictions))
    result = run_script(busybox, script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")


def test_a_wrong_answer_fails_with_the_models_reply(busybox, model_server, model_config):
    words, _ = sample(model_config)
    script = smoke_script(f"{model_server}/v1/models/model:predict", "h", request_body(model_config, words),
                          expected_fragment(model_config, [2, 2, 2]))
    result = run_script(busybox, script)
    assert result.returncode == 1
    assert "unexpected reply" in result.stdout and '"predictions":[1,0,2]' in result.stdout.replace(" ", "")


def test_no_answer_fails_after_bounded_attempts(busybox, model_server, model_config):
    script = smoke_script(f"{model_server}/v1/models/absent:predict", "h", request_body(model_config, ["x"]),
                          expected_fragment(model_config, None), attempts=2, pause=0)
    result = run_script(busybox, script)
    assert result.returncode == 1
    assert "no answer from" in result.stdout and "404" in result.stdout
