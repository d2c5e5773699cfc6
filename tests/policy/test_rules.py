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
