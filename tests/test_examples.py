"""examples/Pulumi.models.yaml: parsed by the stack's own config parser and rendered by the real
program, as a user's copy of it is once its secret is set."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from settings import config
from settings import runtimes as rt
from tests.conftest import PROJECT_DIR, stack_raw

EXAMPLE = PROJECT_DIR / "examples" / "Pulumi.models.yaml"
SECRETS = {"hf": "hf_example-token"}
"""What `pulumi config set --secret --path 'secrets.hf' ...` adds to a copy of the example."""
RUNTIMES = {
    "model": "kserve-sklearnserver",
    "xgboost": "kserve-mlserver",
    "lightgbm": "kserve-mlserver",
    "qwen": "kserve-huggingfaceserver",
}
GPU = "nvidia.com/gpu"


def example_raw() -> dict[str, Any]:
    """The example's config as the program gets it: keys without the project prefix, and
    `model` at its declared default `{}`, as Pulumi hands it when a stack leaves it out."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    raw = {k.split(":", 1)[1]: v for k, v in doc["config"].items()}
    assert "secrets" not in raw and "model" not in raw, "the example ships no ciphertext and uses models alone"
    return {"model": {}, **raw}


@pytest.fixture
def example(run_stack):
    """The example with its secret set, rendered on its own: every key of the stack file
    run_stack starts from is overridden by the example's."""
    raw = {**example_raw(), "secrets": SECRETS}
    assert set(stack_raw("standard")) <= set(raw)
    return run_stack("standard", **raw)


def test_the_example_needs_its_secret_set_as_a_secret():
    raw = example_raw()
    llm = next(i for i, m in enumerate(raw["models"]) if "hfToken" in m)
    with pytest.raises(config.ConfigError) as unset:
        config.parse(raw, PROJECT_DIR)
    [problem] = unset.value.problems
    assert problem.startswith(f"kserve-stack:models[{llm}].hfToken:")
    command = "pulumi config set --secret --path 'secrets.hf'"
    assert command in problem
    text = EXAMPLE.read_text()
    assert f"models[{llm}].hfToken" in text and "--secret --path 'secrets.hf'" in text
    with pytest.raises(config.ConfigError, match="stored in clear"):
        config.parse({**raw, "secrets": SECRETS}, PROJECT_DIR, secret_keys=frozenset())


def test_every_model_is_an_inference_service_on_the_runtime_selected_for_it(example):
    cfg = example.cfg
    assert cfg.mode == "standard"
    assert {m.name: m.runtime for m in cfg.models} == RUNTIMES
    for m in cfg.models:
        if "runtime" not in next(e for e in example_raw()["models"] if e["name"] == m.name):
            assert m.runtime == rt.select_runtime(cfg.kserve.version, m.format, m.protocol).name, m.name
    isvcs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
             for o in example.objects() if o["kind"] == "InferenceService"}
    assert set(isvcs) == {(m.namespace, m.name) for m in cfg.models}
    for m in cfg.models:
        container = isvcs[(m.namespace, m.name)]["spec"]["predictor"]["model"]
        assert (container["modelFormat"]["name"], container["protocolVersion"], container["runtime"]) == (
            m.format, m.protocol, RUNTIMES[m.name])
    labels = {name: isvcs[("default", name)]["metadata"].get("labels") for name in ("xgboost", "lightgbm")}
    assert labels == {"xgboost": {"modelClass": rt.MLSERVER_MODEL_CLASSES["xgboost"]},
                      "lightgbm": {"modelClass": rt.MLSERVER_MODEL_CLASSES["lightgbm"]}}
    outputs = example.outputs["models"]
    assert {key: entry["runtime"] for key, entry in outputs.items()} == RUNTIMES
    assert "predict_url" not in example.outputs, "several models: the URLs are per model"


def test_the_llm_requests_a_gpu_and_gets_its_token_and_shared_memory(example):
    isvcs = {o["metadata"]["name"]: o for o in example.objects() if o["kind"] == "InferenceService"}
    predictor = isvcs["qwen"]["spec"]["predictor"]
    resources = predictor["model"]["resources"]
    assert resources["limits"][GPU] == "1" and GPU not in resources["requests"]
    assert [name for name, o in isvcs.items() if GPU in o["spec"]["predictor"]["model"]["resources"]["limits"]] == [
        "qwen"]
    assert predictor["model"]["storageUri"] == "hf://Qwen/Qwen2.5-0.5B-Instruct"
    assert "--backend=vllm" in predictor["model"]["args"]
    assert {"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in predictor["volumes"]
    account = next(o for o in example.objects() if o["kind"] == "ServiceAccount"
                   and o["metadata"]["name"] == predictor["serviceAccountName"])
    [token] = [o for o in example.objects() if o["kind"] == "Secret"
               and o["metadata"]["name"] == account["secrets"][0]["name"]]
    assert token["stringData"] == {"HF_TOKEN": SECRETS["hf"]}
    assert account["metadata"]["namespace"] == token["metadata"]["namespace"] == "llm"
    entry = example.outputs["models"]["qwen"]
    assert entry["openai_url"] == "http://qwen-llm.example.com/openai/v1"


def test_the_commands_in_the_example_name_its_models_and_samples():
    names = {m["name"] for m in example_raw()["models"]}
    calls = [line for line in EXAMPLE.read_text().splitlines() if "tools.predict" in line]
    assert calls
    for line in calls:
        assert re.search(r"--model (\S+)", line)[1] in names, line
        sample = re.search(r"--sample (\S+)", line)
        if sample:
            assert (PROJECT_DIR / sample[1] / "metadata.json").is_file(), line
