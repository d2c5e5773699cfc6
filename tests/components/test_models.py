"""`kserve-stack:models`: several models side by side, each its own ModelService, through the whole
program under the recording mock monitor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.model_service.inference_service import DIGEST_ANNOTATION, HF_TOKEN_KEY, KNATIVE_PROGRESS_DEADLINE
from tests.conftest import Captured, is_secret
from tools.graph import Registration, critical_path

MODEL_SERVICE = "kserve-stack:layers:ModelService"
IRIS = {"name": "iris", "path": "model"}
XGB = {"name": "xgb", "namespace": "ml", "format": "xgboost", "protocol": "v2", "path": "samples/xgboost"}
LGBM = {"name": "lgbm", "namespace": "ml", "format": "lightgbm", "protocol": "v2", "path": "samples/lightgbm"}
THREE = [IRIS, XGB, LGBM]
TOKEN = "hf_x"
LLM = {"name": "chat", "namespace": "ml", "format": "huggingface", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct",
       "args": ["--max_model_len=2048"], "hfToken": {"secret": "hf"}, "sharedMemory": "2Gi",
       "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                     "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1}}}
A = {"name": "a", "storageUri": "s3://bucket/a"}
ML_A = {"name": "a", "namespace": "ml", "storageUri": "s3://bucket/ml-a"}
X_A = {"name": "a", "namespace": "x", "storageUri": "s3://bucket/x-a"}
SINGLE_KEYS = ("predict_url", "internal_predict_url", "curl", "smoke_test")


@pytest.fixture
def run_models(run_stack):
    def run(models: list[dict], stack: str = "standard", **overrides: Any) -> Captured:
        return run_stack(stack, model={}, models=models, **overrides)

    return run


def owner(run: Captured, reg: Registration) -> str | None:
    """The name of the ModelService a resource belongs to, if any."""
    while reg is not None:
        if reg.type == MODEL_SERVICE:
            return reg.name
        reg = run.regs.get(reg.parent)
    return None


def owned(run: Captured) -> dict[str, Registration]:
    """Every registration of a model (its ModelService and what is under it), by URN."""
    return {urn: reg for urn, reg in run.regs.items() if owner(run, reg)}


def test_each_model_gets_its_own_jobs_and_inference_service(run_models):
    """Three models of three formats: one copy Job, InferenceService and smoke test each, in the
    model's own namespace, with the runtime its format and protocol pick."""
    run = run_models(THREE)
    assert sorted(r.name for r in run.of_type("ModelService")) == ["iris", "lgbm", "xgb"]
    for m in THREE:
        ns = m.get("namespace", "default")
        for suffix in ("copy", "isvc", "smoke-test"):
            reg = run.named(f"{m['name']}-{suffix}")
            assert owner(run, reg) == m["name"] and reg.inputs["metadata"]["namespace"] == ns, reg.name
        isvc = run.named(f"{m['name']}-isvc").inputs
        assert isvc["metadata"]["name"] == m["name"]
        assert isvc["spec"]["predictor"]["model"]["modelFormat"] == {"name": m.get("format", "sklearn")}
    runtimes = {r.inputs["metadata"]["name"]: r.inputs["spec"]["predictor"]["model"]["runtime"]
                for r in run.of_type("InferenceService")}
    assert runtimes == {"iris": "kserve-sklearnserver", "xgb": "kserve-mlserver", "lgbm": "kserve-mlserver"}


def test_no_model_waits_for_another(run_models):
    """Models install side by side: nothing of one model lists another model's ModelService, or
    anything under it, as a dependency."""
    run = run_models(THREE)
    services = {r.name: r for r in run.of_type("ModelService")}
    for reg in owned(run).values():
        mine = owner(run, reg)
        others = [s for name, s in services.items() if name != mine]
        assert not [s.name for s in others if run.waits_for(reg, s)], reg.name
    for m in THREE:
        assert run.waits_for(run.named(f"{m['name']}-isvc"), run.named(f"{m['name']}-copy"))


def test_models_of_one_namespace_share_its_namespace_resource(run_models):
    """Removing one model must not take the namespace (and the other models in it) along."""
    run = run_models(THREE)
    namespaces = [r for r in run.of_type("core/v1:Namespace") if owner(run, r) or "ModelNamespaces" in r.urn]
    assert [r.inputs["metadata"]["name"] for r in namespaces] == ["ml"]
    [ns] = namespaces
    assert {"lgbm-namespace", "xgb-namespace"} <= {alias for alias, _ in ns.aliases}, \
        "each model made its own namespace before the models shared one"
    for name in ("xgb", "lgbm"):
        assert run.waits_for(run.named(f"{name}-claim"), ns)
    assert not run.waits_for(run.named("iris-claim"), ns), "default is not the stack's"


def test_models_output_is_keyed_by_name_or_namespace_where_names_repeat(run_models):
    run = run_models([IRIS, {"name": "iris", "namespace": "ml", "storageUri": "s3://bucket/iris"}, XGB])
    entries = run.outputs["models"]
    assert set(entries) == {"default/iris", "ml/iris", "xgb"}
    for key, entry in entries.items():
        assert set(SINGLE_KEYS) <= set(entry), key
    assert entries["ml/iris"]["predict_url"] == "http://iris-ml.example.com/v1/models/iris:predict"
    assert entries["default/iris"]["smoke_test"].startswith("passed: job default/iris-smoke-test-")
    assert not set(SINGLE_KEYS) & set(run.outputs), "several models: no single model's outputs at the top"
    assert {r.name for r in run.of_type("ModelService")} == {"default.iris", "ml.iris", "xgb"}


def test_one_listed_model_keeps_the_top_level_outputs(run_models):
    run = run_models([XGB])
    [entry] = run.outputs["models"].values()
    assert {k: run.outputs[k] for k in SINGLE_KEYS} == {k: entry[k] for k in SINGLE_KEYS}
    assert run.outputs["predict_url"] == "http://xgb-ml.example.com/v2/models/xgb/infer"


def test_models_install_in_parallel_on_the_critical_path(run_models):
    """Three models add no gate to the longest chain of waits: they wait side by side."""
    one, three = run_models([IRIS]), run_models(THREE)
    path_one = [one.regs[u].name for u in critical_path(one.regs)]
    path_three = [three.regs[u].name for u in critical_path(three.regs)]
    assert len(path_three) == len(path_one), (path_one, path_three)
    assert path_three[-1].endswith("-smoke-test")


def non_secret(value: Any) -> Any:
    """The value with every secret on the wire left out."""
    if is_secret(value):
        return None
    if isinstance(value, dict):
        return {k: non_secret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [non_secret(v) for v in value]
    return value


def test_llm_inference_service(run_models):
    """An LLM: its args, a readiness probe that waits for the weights, the token reaching the
    storage initializer through the predictor's ServiceAccount, a sized /dev/shm, the GPU, and
    a request timeout longer than the route's default."""
    run = run_models([LLM], secrets={"hf": TOKEN})
    predictor = run.one("InferenceService").inputs["spec"]["predictor"]
    container = predictor["model"]
    assert container["args"] == ["--max_model_len=2048"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/chat", "port": 8080}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["volumeMounts"] == [{"name": "devshm", "mountPath": "/dev/shm"}]
    assert predictor["volumes"] == [{"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}]
    assert predictor["timeout"] == 600
    account = run.named("chat-service-account")
    assert predictor["serviceAccountName"] == account.inputs["metadata"]["name"]
    secret = run.named("chat-hf-token")
    assert account.inputs["secrets"] == [{"name": secret.inputs["metadata"]["name"]}]
    assert is_secret(secret.inputs["stringData"]) and secret.inputs["stringData"]["value"] == {HF_TOKEN_KEY: TOKEN}
    assert run.waits_for(run.named("chat-isvc"), account)
    for reg in run.regs.values():
        assert TOKEN not in json.dumps(non_secret(reg.inputs)), reg.name
    assert TOKEN not in json.dumps(run.outputs)


def test_llm_outputs_and_smoke_test(run_models):
    """The smoke test lists the models on the OpenAI route (a GET), which answers once the
    server has the model; the outputs point at that route."""
    run = run_models([LLM], secrets={"hf": TOKEN})
    entry = run.outputs["models"]["chat"]
    assert entry["openai_url"] == "http://chat-ml.example.com/openai/v1"
    assert entry["predict_url"] == "http://chat-ml.example.com/openai/v1/chat/completions"
    script = run.named("chat-smoke-test").inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "url=http://kserve-ingress-gateway-istio.kserve.svc.cluster.local/openai/v1/models;" in script
    assert "--post-data" not in script and "body=" not in script
    assert """expected='"id":"chat"'""" in script
    assert "openai_url" not in run_models([IRIS]).outputs["models"]["iris"]


def test_serverless_canary_and_llm_progress_deadline(run_models):
    """Knative gives up on a revision after its default 600 s; an LLM allowed 1800 s says so.
    The canary's share reaches the predictor."""
    run = run_models([{**IRIS, "canaryTrafficPercent": 10}, {**LLM, "minReplicas": 0}], "serverless",
                     secrets={"hf": TOKEN})
    iris, chat = run.named("iris-isvc").inputs, run.named("chat-isvc").inputs
    assert iris["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert "canaryTrafficPercent" not in chat["spec"]["predictor"]
    assert chat["metadata"]["annotations"][KNATIVE_PROGRESS_DEADLINE] == "1800s"
    assert KNATIVE_PROGRESS_DEADLINE not in iris["metadata"]["annotations"]
    assert "port" not in chat["spec"]["predictor"]["model"]["readinessProbe"]["httpGet"], "Knative sets the port"


def test_an_empty_list_installs_the_platform_alone(run_models):
    """`models: []` is the platform without a model: nothing to call, so no URL outputs."""
    run = run_models([])
    assert not owned(run) and not run.of_type("InferenceService") and not run.of_type("ModelNamespaces")
    assert run.outputs["models"] == {}
    assert not set(SINGLE_KEYS) & set(run.outputs)
    assert not [r for r in run.regs.values() if r.read and r.name == "gateway-service"]
    assert run.one("KServeRelease").name == "kserve"


def model_state(run: Captured, names: set[str]) -> dict[str, Any]:
    """URN to inputs of what the named models own, plus the models' namespaces."""
    return {urn: reg.inputs for urn, reg in run.regs.items()
            if owner(run, reg) in names or "ModelNamespaces" in urn}


@pytest.mark.parametrize("removed", [0, 1, 2])
def test_removing_a_model_leaves_the_others_as_they_were(run_models, removed):
    """The remaining models keep their URNs and inputs, so `up` changes nothing of them."""
    kept = [m for i, m in enumerate(THREE) if i != removed]
    names, run = {m["name"] for m in kept}, run_models(kept)
    before, after = model_state(run_models(THREE), names), model_state(run, names)
    assert after.keys() == before.keys()
    assert {u: before[u] for u in after} == after
    assert {owner(run, r) for r in run.regs.values()} - {None} == names


def identity(run: Captured, service: Registration) -> tuple[str, str]:
    meta = run.named(f"{service.name}-isvc").inputs["metadata"]
    return meta["namespace"], meta["name"]


def carried_over(before: Captured, after: Captured) -> dict[tuple[str, str], tuple[str, str] | None]:
    """For each model after an edit, the model whose state the engine gives it: the one of the
    same URN first, else of its first alias found (pulumi pkg/resource/deploy/step_generator.go)."""
    olds = {r.name: r for r in before.of_type("ModelService")}
    out = {}
    for service in after.of_type("ModelService"):
        old = next((olds[n] for n in [service.name, *(a for a, _ in service.aliases)] if n in olds), None)
        out[identity(after, service)] = identity(before, old) if old else None
    return out


@pytest.mark.parametrize(("models", "edited"), [
    ([A, ML_A], [ML_A]), ([A, ML_A], [A]), ([A, ML_A, X_A], [ML_A, X_A]), ([A], [A, ML_A]), ([A, ML_A], [ML_A, A]),
    ([A], [ML_A, A]), ([ML_A], [A, ML_A]),
])
def test_a_name_turning_shared_or_unique_keeps_each_models_state(run_models, models, edited):
    """A model renamed `ns.a` <-> `a` is carried over by alias, and never onto another model's
    state (which would replace one model's objects with another's)."""
    keys = [(m.get("namespace", "default"), m["name"]) for m in edited]
    before = run_models(models)
    assert carried_over(before, run_models(edited, deployed=before.outputs)) == {
        key: key if m in models else None for key, m in zip(keys, edited, strict=True)}


def test_placement_reaches_the_predictor_and_the_copy_job(run_models):
    """The copy Job runs where the predictor may, so that a volume bound on first use is made
    there; a model without placement keeps the Job name it always had (the digest's start)."""
    placement = {"nodeSelector": {"pool": "gpu"},
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    placed, plain = run_models([{**IRIS, **placement}]), run_models([IRIS])
    predictor = placed.one("InferenceService").inputs["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"pool": "gpu"}
    assert predictor["tolerations"] == placement["tolerations"]
    pod = placed.one("batch/v1:Job", "iris-copy").inputs["spec"]["template"]["spec"]
    assert (pod["nodeSelector"], pod["tolerations"]) == (predictor["nodeSelector"], predictor["tolerations"])
    assert "nodeSelector" not in plain.one("InferenceService").inputs["spec"]["predictor"]
    names = [run.one("batch/v1:Job", "iris-copy").inputs["metadata"]["name"] for run in (placed, plain)]
    assert names[0] != names[1], "a Job cannot change its pods: a new place, a new Job"
    digest = plain.one("InferenceService").inputs["metadata"]["annotations"][DIGEST_ANNOTATION]
    assert names[1] == f"iris-model-copy-{digest[:8]}"
