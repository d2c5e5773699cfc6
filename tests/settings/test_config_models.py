"""The models' config: several models, runtimes per release as the released charts say, LLMs,
secrets, extended resources and canaries; every refusal names its key, its value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from settings.config import ConfigError, parse
from settings.config.models import output_keys, resource_aliases, resource_names
from settings.upgrades import Deployed
from tests.conftest import stack_raw
from tests.runtime_charts import SHARED_RELEASES, chart_objects, stack_values

FORMATS = ("sklearn", "xgboost", "lightgbm", "mlflow", "tensorflow", "pytorch", "onnx", "tensorrt", "triton",
           "pmml", "paddle", "autogluon", "huggingface", "vLLM", "caffe")


@pytest.fixture
def raw() -> dict:
    out = copy.deepcopy(stack_raw("standard"))
    del out["model"]
    return out


def uri_model(name: str = "m", **keys) -> dict:
    return {"name": name, "storageUri": f"s3://bucket/{name}", **keys}


def problems(raw: dict, project_dir: Path, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw, project_dir, **kwargs)
    return err.value.problems


def one_problem(raw: dict, project_dir: Path, key: str, **kwargs) -> str:
    found = [p for p in problems(raw, project_dir, **kwargs) if p.startswith(f"kserve-stack:{key}:")]
    assert found, f"no problem names {key}"
    return found[0]


def chart_candidates(version: str, fmt: str, protocol: str) -> dict[str, int]:
    """From the chart itself: the enabled single-node runtimes that auto-select `fmt` over
    `protocol`, with their priority for it."""
    out = {}
    for obj in chart_objects(version, stack_values(version)):
        spec = obj["spec"]
        if spec.get("disabled") or "workerSpec" in spec:
            continue
        if spec.get("protocolVersions") and protocol not in spec["protocolVersions"]:
            continue
        entries = [f for f in spec["supportedModelFormats"] if f["name"] == fmt and f.get("autoSelect")]
        if entries:
            out[obj["metadata"]["name"]] = entries[0].get("priority") or 0
    return out


@pytest.mark.parametrize("version", SHARED_RELEASES)
@pytest.mark.parametrize("protocol", ["v1", "v2"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_protocol_as_the_release_chart_says(raw, project_dir, version, fmt, protocol):
    raw["versions"] = {"kserve": version}
    raw["models"] = [uri_model(format=fmt, protocol=protocol)]
    candidates = chart_candidates(version, fmt, protocol)
    if not candidates:
        found = problems(raw, project_dir)
        assert any(p.startswith(("kserve-stack:models[0].format:", "kserve-stack:models[0].protocol:"))
                   and repr(fmt if "format:" in p else protocol) in p for p in found), found
        return
    [model] = parse(raw, project_dir).models
    best = max(candidates.values())
    assert model.runtime in candidates and candidates[model.runtime] == best, (model.runtime, candidates)


def test_a_protocol_no_runtime_serves_names_what_does(raw, project_dir):
    raw["models"] = [uri_model(format="onnx", protocol="v1")]
    problem = one_problem(raw, project_dir, "models[0].protocol")
    assert "'v1'" in problem and "'onnx'" in problem and "v2" in problem


def test_an_unknown_format_lists_the_releases_formats(raw, project_dir):
    raw["models"] = [uri_model(format="tensorfow")]
    problem = one_problem(raw, project_dir, "models[0].format")
    assert "'tensorfow'" in problem and "tensorflow" in problem and "huggingface" in problem


def test_the_default_protocol_is_one_the_format_is_served_over(raw, project_dir):
    raw["models"] = [uri_model("a", format="onnx"), uri_model("b", format="sklearn")]
    onnx, sklearn = parse(raw, project_dir).models
    assert (onnx.protocol, onnx.runtime) == ("v2", "kserve-tritonserver")
    assert (sklearn.protocol, sklearn.runtime) == ("v1", "kserve-sklearnserver")


def test_kserves_own_choice_is_written_and_an_explicit_runtime_kept(raw, project_dir):
    raw["models"] = [uri_model("a", protocol="v2"), uri_model("b", protocol="v2", runtime="kserve-sklearnserver")]
    picked, kept = parse(raw, project_dir).models
    assert picked.runtime == "kserve-mlserver", "KServe prefers MLServer (priority 2) for sklearn over v2"
    assert kept.runtime == "kserve-sklearnserver"


@pytest.mark.parametrize(("runtime", "fmt", "protocol", "fragment"), [
    ("kserve-xgbserver", "sklearn", "v1", "does not serve format 'sklearn'"),
    ("kserve-mlserver", "sklearn", "v1", "kserve-sklearnserver"),
    ("kserve-tensorflow-serving", "tensorflow", "v2", "kserve-tritonserver"),
    ("kserve-vllmserver", "huggingface", "v1", "kserve-huggingfaceserver"),
    ("kserve-huggingfaceserver-multinode", "huggingface", "v1", "worker spec"),
    ("kserve-nope", "sklearn", "v1", "kserve-sklearnserver"),
])
def test_an_explicit_runtime_must_serve_format_and_protocol(raw, project_dir, runtime, fmt, protocol, fragment):
    raw["models"] = [uri_model(format=fmt, protocol=protocol, runtime=runtime)]
    problem = one_problem(raw, project_dir, "models[0].runtime")
    assert repr(runtime) in problem and fragment in problem


def test_a_runtime_not_auto_selected_may_be_named(raw, project_dir):
    raw["versions"] = {"kserve": "v0.20.0"}
    raw["models"] = [uri_model(format="xgboost", runtime="kserve-predictiveserver")]
    assert parse(raw, project_dir).models[0].runtime == "kserve-predictiveserver"


def test_models_list_and_the_platform_alone(raw, project_dir):
    raw["models"] = []
    assert parse(raw, project_dir).models == ()
    raw["models"] = [uri_model("a"), uri_model("b", namespace="team-b"), uri_model("a", namespace="team-b")]
    models = parse(raw, project_dir).models
    assert [(m.key, m.namespace, m.name) for m in models] == [
        ("models[0]", "default", "a"), ("models[1]", "team-b", "b"), ("models[2]", "team-b", "a")]
    assert resource_names(models) == {("default", "a"): "default.a", ("team-b", "b"): "b", ("team-b", "a"): "team-b.a"}
    assert output_keys(models) == {("default", "a"): "default/a", ("team-b", "b"): "b", ("team-b", "a"): "team-b/a"}


def test_a_name_turning_shared_or_unique_moves_the_model_it_names(raw, project_dir):
    """A one-model stack's model keeps its bare name; when another namespace publishes the same
    name, both are named by namespace and the one deployed under the bare name (whatever the
    list order) keeps its resources by an alias to it; when the other goes again, the one left
    takes the bare name back the same way: never a replacement."""
    raw["models"] = [uri_model("a", namespace="x")]
    alone = parse(raw, project_dir).models
    assert resource_names(alone) == {("x", "a"): "a"}
    raw["models"].insert(0, uri_model("a", namespace="y"))
    shared = parse(raw, project_dir).models
    assert resource_names(shared) == {("x", "a"): "x.a", ("y", "a"): "y.a"}
    assert resource_aliases(shared, (("a", "x"),)) == {("x", "a"): ["a"], ("y", "a"): []}
    raw["models"] = raw["models"][:1]
    left = parse(raw, project_dir).models
    assert resource_names(left) == {("y", "a"): "a"}
    assert resource_aliases(left) == {("y", "a"): ["y.a"]}


def test_the_deployed_models_are_read_from_the_outputs():
    """From the `models` output (bare keys only), or from the one model of a stack deployed
    before it."""
    listed = {"models": {"a": {"namespace": "x"}, "y/b": {"namespace": "y"}, "x/b": {"namespace": "x"}}}
    assert Deployed.from_outputs(listed).bare_models == (("a", "x"),)
    single = {"internal_predict_url": "http://iris-predictor.ml.svc.cluster.local/v1/models/iris:predict"}
    assert Deployed.from_outputs(single).bare_models == (("iris", "ml"),)
    assert Deployed.from_outputs({}).bare_models == ()


@pytest.mark.parametrize(("first", "second", "mode", "refused"), [
    (("c", "a-b"), ("c-a", "b"), "standard", "the host 'c-a-b'"),
    (("c", "a-b"), ("c-a", "b"), "serverless", None),
])
def test_models_whose_names_meet_are_refused(raw, project_dir, first, second, mode, refused):
    raw["mode"] = mode
    raw["models"] = [uri_model(n, namespace=ns) for n, ns in (first, second)]
    if refused is None:
        assert len(parse(raw, project_dir).models) == 2
    else:
        assert refused in one_problem(raw, project_dir, "models[1].name")


def test_hostpath_volumes_whose_names_meet_are_refused(raw, project_dir):
    raw["mode"] = "serverless"
    storage = {"hostPath": "/srv/models", "node": "n1", "size": "1Gi"}
    raw["models"] = [{"name": "a-b", "namespace": "team", "path": "model", "storage": storage},
                     {"name": "b", "namespace": "team-a", "path": "model", "storage": storage}]
    assert "the volume 'team-a-b-model-store'" in one_problem(raw, project_dir, "models[1].name")


def test_reordering_the_list_renames_nothing(raw, project_dir):
    raw["models"] = [uri_model("a", namespace="x"), uri_model("a", namespace="y"), uri_model("b")]
    before = resource_names(parse(raw, project_dir).models)
    raw["models"].reverse()
    assert resource_names(parse(raw, project_dir).models) == before


def test_model_and_models_together_are_refused(raw, project_dir):
    raw["model"] = uri_model()
    raw["models"] = [uri_model()]
    assert "not both" in one_problem(raw, project_dir, "models")


def test_the_declared_default_of_model_does_not_clash_with_models(raw, project_dir):
    raw["model"] = {}
    raw["models"] = [uri_model()]
    assert parse(raw, project_dir).models[0].name == "m"


@pytest.mark.parametrize(("models", "key", "fragment"), [
    ([uri_model("a"), uri_model("a")], "models[1].name", "models[0] already publishes 'a'"),
    ("m", "models", "expected a list"),
    ([uri_model("a", namespace="t"), uri_model("b", namespace="t", createNamespace=False)],
     "models[1].createNamespace", "agree"),
    ([uri_model("a", format="sklearn", canaryTrafficPercent=10)], "models[0].canaryTrafficPercent", "serverless"),
    ([uri_model("a", args="--dtype=half")], "models[0].args", "list of strings"),
    ([uri_model("a", env={"1X": "v"})], "models[0].env.1X", "environment variable name"),
    ([uri_model("a", env={"X": {"secret": "nope"}})], "models[0].env.X", "no entry 'nope'"),
    ([uri_model("a", env={"X": ["v"]})], "models[0].env.X", "{secret: ENTRY}"),
    ([uri_model("a", requestTimeoutSeconds=0)], "models[0].requestTimeoutSeconds", ">= 1"),
    ([uri_model("a", hfToken="plain")], "models[0].hfToken", "{secret: NAME}"),
    ([uri_model("a", sharedMemory="lots")], "models[0].sharedMemory", "2Gi"),
    ([uri_model("a", resources={"limits": {"nvidia.com/gpu": "0.5"}})],
     "models[0].resources.limits.nvidia.com/gpu", "whole number"),
    ([uri_model("a", resources={"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}})],
     "models[0].resources.requests.nvidia.com/gpu", "cannot be overcommitted"),
    ([uri_model("a", resources={"limits": {"gpu": 1}})], "models[0].resources.limits.gpu", "nvidia.com/gpu"),
    ([uri_model("a", resources={"limits": {"ephemeral-storage": "10m"}})],
     "models[0].resources.limits.ephemeral-storage", "typo for Mi"),
])
def test_bad_models(raw, project_dir, models, key, fragment):
    raw["models"] = models
    raw["secrets"] = {"token": "s"}
    assert fragment in one_problem(raw, project_dir, key)


def test_every_problem_of_every_model_at_once(raw, project_dir):
    raw["models"] = [uri_model("Bad"), uri_model("ok", format="nope"), uri_model("also", minReplicas=0)]
    keys = {p.split(":")[1] for p in problems(raw, project_dir)}
    assert {"models[0].name", "models[1].format", "models[2].minReplicas"} <= keys


def test_canary_in_serverless(raw, project_dir):
    raw["mode"] = "serverless"
    raw["models"] = [uri_model("a", canaryTrafficPercent=20)]
    assert parse(raw, project_dir).models[0].canary_traffic_percent == 20
    raw["models"] = [uri_model("a", canaryTrafficPercent=150)]
    assert "0 to 100" in one_problem(raw, project_dir, "models[0].canaryTrafficPercent")


def test_an_llm(raw, project_dir):
    raw["secrets"] = {"hf": "hf_x"}
    raw["models"] = [{
        "name": "chat", "format": "huggingface", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        "args": ["--backend=vllm", "--max_model_len=2048", 16], "env": {"VLLM_LOGGING_LEVEL": "INFO",
                                                                         "API_KEY": {"secret": "hf"}},
        "hfToken": {"secret": "hf"}, "sharedMemory": "2Gi",
        "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi", "nvidia.com/gpu": 1}},
    }]
    [llm] = parse(raw, project_dir).models
    assert llm.is_llm and llm.runtime == "kserve-huggingfaceserver" and llm.protocol == "v1"
    assert llm.args == ("--backend=vllm", "--max_model_len=2048", "16")
    assert llm.ready_timeout == 1800, "weights download before the server starts"
    assert llm.request_timeout == 600, "the gateway's 60 s default cuts long generations"
    assert llm.resources["limits"]["nvidia.com/gpu"] == "1"
    assert llm.secrets == ("hf", "hf")
    assert llm.shared_memory == "2Gi"


def test_secrets_must_be_pulumi_secrets(raw, project_dir):
    raw["models"] = [uri_model(env={"KEY": {"secret": "key"}})]
    raw["secrets"] = {"key": "s3cr3t"}
    problem = one_problem(raw, project_dir, "secrets", secret_keys=frozenset())
    assert "--secret" in problem and "'key'" in problem and "s3cr3t" not in problem
    assert parse(raw, project_dir, secret_keys=frozenset({"secrets"})).secrets == ("key",)


def test_a_secret_inside_the_models_is_refused(raw, project_dir):
    raw["models"] = [uri_model(env={"KEY": "s3cr3t"})]
    problem = one_problem(raw, project_dir, "models", secret_keys=frozenset({"models"}))
    assert "kserve-stack:secrets" in problem and "s3cr3t" not in problem


def test_path_models_hold_the_file_their_runtime_loads(raw, tmp_path):
    d = tmp_path / "xgb"
    d.mkdir()
    (d / "booster.bst").write_bytes(b"x")
    raw["models"] = [{"name": "x", "format": "xgboost", "protocol": "v2", "path": str(d)}]
    problem = one_problem(raw, tmp_path, "models[0].path")
    assert "model.bst, model.json, model.ubj" in problem and "found 0" in problem
    (d / "booster.bst").rename(d / "model.bst")
    assert parse(raw, tmp_path).models[0].runtime == "kserve-mlserver"


def test_placement_is_passed_as_a_pod_spec_takes_it(raw, project_dir):
    raw["models"] = [uri_model(nodeSelector={"cloud.google.com/gke-accelerator": "nvidia-l4"}, tolerations=[
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": "30"}])]
    m = parse(raw, project_dir).models[0]
    assert m.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert m.tolerations == ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                             {"key": "spot", "value": "true", "operator": "Equal", "effect": "NoExecute",
                              "tolerationSeconds": 30})


@pytest.mark.parametrize(("placement", "key", "says"), [
    ({"nodeSelector": ["gpu"]}, "models[0].nodeSelector", "expected an object"),
    ({"nodeSelector": {"-bad": "x"}}, "models[0].nodeSelector", "label key"),
    ({"nodeSelector": {"pool": "has space"}}, "models[0].nodeSelector.pool", "label value"),
    ({"tolerations": [{"value": "x"}]}, "models[0].tolerations[0].operator", "only with Exists"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "models[0].tolerations[0].value",
     "leave value out"),
    ({"tolerations": [{"key": "k", "effect": "NoRun"}]}, "models[0].tolerations[0].effect", "NoSchedule"),
    ({"tolerations": [{"key": "k", "tolerationSeconds": 5}]}, "models[0].tolerations[0].tolerationSeconds",
     "NoExecute"),
    ({"tolerations": [{"key": "k", "colour": "red"}]}, "models[0].tolerations[0].colour", "unknown key"),
])
def test_impossible_placement_is_refused(raw, project_dir, placement, key, says):
    raw["models"] = [uri_model(**placement)]
    assert says in one_problem(raw, project_dir, key)
