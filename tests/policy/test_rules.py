"""Each policy: a passing resource (taken from the real program where it has one) and a violating one."""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest

from tests.conftest import PROJECT_DIR

spec = importlib.util.spec_from_file_location("policy_rules", PROJECT_DIR / "policy" / "rules.py")
rules = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rules)

JOB = "kubernetes:batch/v1:Job"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
URN = "urn:pulumi:standard::kserve-stack::kserve-stack:layers:ModelService${}::model"
CHART_URN = ("urn:pulumi:standard::kserve-stack::kserve-stack:layers:CertManager$kubernetes:helm.sh/v4:Chart"
             "$kubernetes:apps/v1:Deployment::cert-manager-chart:cert-manager/cert-manager")


@pytest.fixture
def job(run_stack):
    return copy.deepcopy(run_stack("standard").named("model-copy").inputs)


@pytest.fixture
def isvc(run_stack):
    return copy.deepcopy(run_stack("standard").one("InferenceService").inputs)


def test_workload_resources(job, isvc):
    assert rules.missing_resources(JOB, URN.format(JOB), job) == []
    assert rules.missing_resources(ISVC, URN.format(ISVC), isvc) == []
    del job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert rules.missing_resources(JOB, URN.format(JOB), job) == ["containers/copy: no limits.memory"]
    del isvc["spec"]["predictor"]["model"]["resources"]["requests"]
    assert rules.missing_resources(ISVC, URN.format(ISVC), isvc) == [
        "predictor.model: no requests.cpu", "predictor.model: no requests.memory"]


def test_chart_workloads_are_the_charts():
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    assert rules.missing_resources("kubernetes:apps/v1:Deployment", CHART_URN, deployment) == []
    assert rules.missing_resources("kubernetes:apps/v1:Deployment", URN.format("Deployment"), deployment)


@pytest.mark.parametrize(("image", "ok"), [
    ("busybox:1.37.0", True), ("registry.local:5000/model:1.0", True),
    ("kserve/sklearnserver@sha256:" + "a" * 64, True),
    ("busybox", False), ("busybox:latest", False), ("registry.local:5000/model", False),
])
def test_pinned_images(job, image, ok):
    assert rules.unpinned_images(JOB, job) == []
    job["spec"]["template"]["spec"]["containers"][0]["image"] = image
    assert (rules.unpinned_images(JOB, job) == []) is ok


def test_a_disabled_runtime_runs_nothing():
    runtime = {"spec": {"containers": [{"name": "c", "image": "vllm/vllm-openai:latest"}]}}
    csr = "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"
    assert rules.unpinned_images(csr, runtime) == ["containers/c: image vllm/vllm-openai:latest uses latest"]
    runtime["spec"]["disabled"] = True
    assert rules.unpinned_images(csr, runtime) == []


def test_istio_injected_image_only_where_istio_injects(job):
    """The real Istio gateway chart's Deployment says `image: auto`; Istio's injector fills it in."""
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "auto"
    deployment = "kubernetes:apps/v1:Deployment"
    assert rules.unpinned_images(deployment, job) == ["containers/copy: image auto has no tag"]
    job["spec"]["template"]["metadata"] = {"annotations": {"inject.istio.io/templates": "gateway"}}
    assert rules.unpinned_images(deployment, job) == []


def test_host_path_only_when_enabled(run_stack, tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "model.joblib").write_bytes(b"x")
    storage = {"hostPath": "/srv/m", "node": "worker-1"}
    pv = copy.deepcopy(run_stack("standard", model={"path": str(model_dir), "storage": storage}).one(
        "core/v1:PersistentVolume").inputs)
    pv_type = "kubernetes:core/v1:PersistentVolume"
    assert rules.host_paths(pv_type, pv) == []
    del pv["metadata"]["annotations"][rules.HOST_PATH_ANNOTATION]
    assert rules.host_paths(pv_type, pv)
    pod = {"spec": {"template": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/var"}}]}}}}
    assert rules.host_paths("kubernetes:apps/v1:Deployment", pod) == ["volume h is a hostPath"]


def test_tls_secrets_are_secret():
    secret = {"type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}}
    typ = "kubernetes:core/v1:Secret"
    assert rules.tls_secret_not_secret(typ, secret, ["data"]) == []
    assert rules.tls_secret_not_secret(typ, secret, []) == [
        "TLS key material in data is not a Pulumi secret (additional_secret_outputs)"]
    assert rules.tls_secret_not_secret(typ, {"type": "Opaque", "data": {"a": "b"}}, []) == []


def kserve_config(mode: str) -> tuple[str, dict]:
    """The ConfigMap as the KServe charts render it (checked on the real charts in tests/integration)."""
    return ("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
                                             "data": {"deploy": json.dumps({"defaultDeploymentMode": mode})}})


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_inference_service_mode_matches_the_controller(run_stack, stack):
    run = run_stack(stack)
    expected = "Standard" if stack == "standard" else "Knative"
    mode = rules.deployment_mode_of([("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "other"}}),
                                     kserve_config(expected)])
    assert mode == expected
    isvc = copy.deepcopy(run.one("InferenceService").inputs)
    assert rules.mode_annotation_problems(isvc, mode) == []
    other = "Knative" if mode == "Standard" else "Standard"
    isvc["metadata"]["annotations"][rules.MODE_ANNOTATION] = other
    assert rules.mode_annotation_problems(isvc, mode) == [
        f"{rules.MODE_ANNOTATION}={other} but the KServe controller is installed with {mode}"]
    del isvc["metadata"]["annotations"][rules.MODE_ANNOTATION]
    assert rules.mode_annotation_problems(isvc, mode) == [f"no {rules.MODE_ANNOTATION} annotation"]


def test_no_kserve_config_means_no_mode_to_compare():
    assert rules.deployment_mode_of([("kubernetes:helm.sh/v4:Chart", {})]) is None


def test_legacy_mode_on_an_old_release(run_stack):
    run = run_stack("standard", versions={"kserve": "v0.15.2"})
    assert rules.mode_annotation_problems(run.one("InferenceService").inputs, "RawDeployment") == []


AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"


def stack_objects(run) -> list[tuple[str, str, dict]]:
    """(type, urn, inputs) of every Kubernetes object the program registers, as the pack sees them."""
    return [(r.type, r.urn, copy.deepcopy(r.inputs)) for r in run.regs.values()
            if r.custom and r.type.startswith("kubernetes:")]


def caller_policy(objects) -> dict:
    [props] = [p for t, _, p in objects if t == AUTHZ and rules.POLICY_ANNOTATION in
               ((p.get("metadata") or {}).get("annotations") or {})]
    return props


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_models_behind_auth_pass_as_the_program_makes_them(run_stack, stack):
    objects = stack_objects(run_stack(stack))
    assert rules.models_behind_auth(objects) == []
    assert caller_policy(objects)["metadata"]["annotations"][rules.POLICY_ANNOTATION] == "default/model"


def test_a_model_without_its_policy_is_refused(run_stack):
    run = run_stack("standard")
    objects = [o for o in stack_objects(run) if o[0] != AUTHZ]
    isvc = run.one("InferenceService")
    assert rules.models_behind_auth(objects) == [(isvc.urn, (
        f"InferenceService default/model has no ALLOW AuthorizationPolicy annotated {rules.POLICY_ANNOTATION}: "
        "default/model: nothing limits who calls it"))]
    objects = stack_objects(run)
    policy = caller_policy(objects)
    policy["metadata"]["annotations"][rules.POLICY_ANNOTATION] = "default/other"
    assert [p for _, p in rules.models_behind_auth(objects)] == [
        f"InferenceService default/model has no ALLOW AuthorizationPolicy annotated {rules.POLICY_ANNOTATION}: "
        "default/model: nothing limits who calls it"]
    policy["metadata"]["annotations"][rules.POLICY_ANNOTATION] = "default/model"
    policy["spec"]["action"] = "DENY"
    assert len(rules.models_behind_auth(objects)) == 1, "a DENY policy lets nobody in: it is not the model's"


def test_a_policy_that_admits_callers_without_a_token_is_refused(run_stack):
    objects = stack_objects(run_stack("standard"))
    policy = caller_policy(objects)
    urn = next(u for t, u, p in objects if p is policy)
    name = "AuthorizationPolicy kserve/kserve-stack.default.model for InferenceService default/model"
    del policy["spec"]["rules"][1]["from"][0]["source"]["requestPrincipals"]
    assert rules.models_behind_auth(objects) == [(urn, (
        f"{name}: rules[1].from[0].source has no requestPrincipals: it admits callers without a token"))]
    del policy["spec"]["rules"][1]["from"]
    assert [p for _, p in rules.models_behind_auth(objects)] == [
        f"{name}: rules[1] has no from: it admits callers without a token"]
    policy["spec"]["rules"][1] = {"from": [{"source": {"namespaces": ["default"]}}]}
    assert [p for _, p in rules.models_behind_auth(objects)] == [
        f"{name}: rules[1].from[0].source has no requestPrincipals: it admits callers without a token",
        f"{name}: rules[1] names no hosts (to[].operation.hosts): it reaches every model behind the gateway"]


def test_a_policy_without_hosts_is_refused(run_stack):
    objects = stack_objects(run_stack("serverless"))
    policy = caller_policy(objects)
    del policy["spec"]["rules"][0]["to"][0]["operation"]["hosts"]
    assert [p for _, p in rules.models_behind_auth(objects)] == [
        "AuthorizationPolicy istio-system/kserve-stack.default.model for InferenceService default/model: "
        "rules[0] names no hosts (to[].operation.hosts): it reaches every model behind the gateway"]


def test_an_open_model_only_where_the_pack_config_allows_it(run_stack):
    run = run_stack("standard", auth={"type": "none"})
    objects = stack_objects(run)
    assert not [t for t, _, _ in objects if t == AUTHZ]
    isvc = run.one("InferenceService")
    assert isvc.inputs["metadata"]["annotations"][rules.AUTH_ANNOTATION] == "none"
    [(urn, problem)] = rules.models_behind_auth(objects)
    assert urn == isvc.urn and problem.startswith(
        f"InferenceService default/model is open ({rules.AUTH_ANNOTATION}: none)")
    assert f'"{rules.ALLOW_OPEN_MODELS}": true' in problem
    assert rules.models_behind_auth(objects, allow_open_models=True) == []


def test_the_pack_registers_models_behind_auth_with_its_config(run_stack, monkeypatch):
    """policy/__main__.py run against a stand-in for pulumi_policy (the pack's own dependency,
    not the project's): the rule is registered, mandatory, and reads `allowOpenModels`."""
    import sys
    import types

    captured = {}
    fake = types.ModuleType("pulumi_policy")

    class Policy:
        def __init__(self, name, description, validate, enforcement_level=None, config_schema=None):
            self.name, self.validate, self.enforcement_level, self.config_schema = (
                name, validate, enforcement_level, config_schema)

    class PolicyConfigSchema:
        def __init__(self, properties, required=None):
            self.properties = properties

    fake.EnforcementLevel = types.SimpleNamespace(MANDATORY="mandatory")
    fake.PolicyConfigSchema = PolicyConfigSchema
    fake.ResourceValidationPolicy = fake.StackValidationPolicy = Policy
    fake.PolicyPack = lambda **kw: captured.update(kw)
    monkeypatch.setitem(sys.modules, "pulumi_policy", fake)
    monkeypatch.setitem(sys.modules, "rules", rules)
    main = importlib.util.spec_from_file_location("policy_main", PROJECT_DIR / "policy" / "__main__.py")
    main.loader.exec_module(importlib.util.module_from_spec(main))
    [policy] = [p for p in captured["policies"] if p.name == "models-behind-auth"]
    assert policy.enforcement_level == "mandatory"
    assert policy.config_schema.properties[rules.ALLOW_OPEN_MODELS]["type"] == "boolean"

    run = run_stack("standard", auth={"type": "none"})
    resources = [types.SimpleNamespace(resource_type=t, urn=u, props=p) for t, u, p in stack_objects(run)]

    def violations(config):
        found = []
        args = types.SimpleNamespace(resources=resources, get_config=lambda: config)
        policy.validate(args, lambda message, urn=None: found.append(urn))
        return found

    assert violations({}) == [run.one("InferenceService").urn]
    assert violations({rules.ALLOW_OPEN_MODELS: True}) == []
