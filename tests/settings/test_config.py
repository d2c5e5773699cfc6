"""Config validation: every bad input fails before any resource exists, naming key, value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from settings import config
from settings.config import ConfigError, parse, parse_quantity
from tests.conftest import stack_raw


@pytest.fixture
def raw() -> dict:
    return copy.deepcopy(stack_raw("standard"))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.joblib").write_bytes(b"x")
    return d


def problems(raw: dict, project_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw, project_dir)
    return err.value.problems


def set_path(raw: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value


_DELETE = object()

BAD_INPUTS = [
    # (config path, bad value, key named in the message, fragment of "what is allowed")
    ("mode", "raw", "kserve-stack:mode", "standard, serverless"),
    ("mode", "Standard", "kserve-stack:mode", "standard, serverless"),
    ("modle", {"name": "x"}, "kserve-stack:modle", "unknown key"),
    ("model.nmae", "x", "kserve-stack:model.nmae", "unknown key"),
    ("model.name", "Model", "kserve-stack:model.name", "DNS-1035"),
    ("model.name", "my_model", "kserve-stack:model.name", "DNS-1035"),
    ("model.name", "m" * 54, "kserve-stack:model.name", "at most 53"),
    ("model.name", "1model", "kserve-stack:model.name", "starting with a letter"),
    ("model.namespace", "Team_A", "kserve-stack:model.namespace", "DNS-1123"),
    ("model.namespace", "n" * 64, "kserve-stack:model.namespace", "at most 63"),
    ("model.namespace", "kserve", "kserve-stack:model.namespace", "reserved"),
    ("model.namespace", "knative-operator", "kserve-stack:model.namespace", "reserved"),
    ("model.format", "tensorfow", "kserve-stack:model.format", "tensorflow"),
    ("model.runtime", "kserve-xgbserver", "kserve-stack:model.runtime", "kserve-sklearnserver"),
    ("model.protocol", "v3", "kserve-stack:model.protocol", "allowed: v1, v2"),
    ("model.storageUri", "ftp://host/model", "kserve-stack:model", "exactly one model source"),
    ("model.path", "does-not-exist", "kserve-stack:model.path", "does not exist"),
    ("model.resources.requests.cpu", "-1", "kserve-stack:model.resources.requests.cpu", "non-negative"),
    ("model.resources.limits.memory", "10XB", "kserve-stack:model.resources.limits.memory", "quantity"),
    ("model.resources.requests.memory", "4Gi", "kserve-stack:model.resources.requests.memory", "must not exceed"),
    ("model.resources.limits.memory", "512m", "kserve-stack:model.resources.limits.memory", "Mi"),
    ("model.minReplicas", 3, "kserve-stack:model.minReplicas", "must not exceed model.maxReplicas"),
    ("model.minReplicas", -1, "kserve-stack:model.minReplicas", ">= 0"),
    ("model.minReplicas", 0, "kserve-stack:model.minReplicas", "serverless"),
    ("model.maxReplicas", "two", "kserve-stack:model.maxReplicas", "whole number"),
    ("model.storage.size", "lots", "kserve-stack:model.storage.size", "quantity"),
    ("model.storage.hostPath", "relative/dir", "kserve-stack:model.storage.hostPath", "absolute"),
    ("model.createNamespace", "no", "kserve-stack:model.createNamespace", "allowed: True, False"),
    ("model.readyTimeoutSeconds", 5, "kserve-stack:model.readyTimeoutSeconds", ">= 30"),
    ("versions.kserve", "v0.14.0", "kserve-stack:versions.kserve", "v0.15.0 to v0.20.x"),
    ("versions.kserve", "v0.21.0", "kserve-stack:versions.kserve", "v0.15.0 to v0.20.x"),
    ("versions.kserve", "latest", "kserve-stack:versions.kserve", "release version"),
    ("versions.istio", "1.20.0", "kserve-stack:versions.istio", "supports istio"),
    ("versions.knative", "v1.10.0", "kserve-stack:versions.knative", "supports knative"),
    ("versions.knativeServing", "1.17.0", "kserve-stack:versions.knativeServing", "installs Serving 1.18 to 1.21"),
    ("versions.knativeServing", "1.22", "kserve-stack:versions.knativeServing", "installs Serving 1.18 to 1.21"),
    ("versions.knativeServing", "latest", "kserve-stack:versions.knativeServing", "such as 1.21.1"),
    ("versions.gatewayApi", "v1.0.0", "kserve-stack:versions.gatewayApi", "supports gatewayApi"),
    ("versions.gatewayApi", "v1.5.0", "kserve-stack:versions.gatewayApi", "no pinned checksums"),
    ("versions.helm", "3.0.0", "kserve-stack:versions.helm", "unknown key"),
    ("domain", "Example_com", "kserve-stack:domain", "DNS name"),
    ("domain", "localhost", "kserve-stack:domain", "DNS name"),
    ("readiness", "maybe", "kserve-stack:readiness", "wait, skip"),
    ("smokeTest", "yes", "kserve-stack:smokeTest", "auto, on, off"),
    ("gateway.serviceType", "Ingress", "kserve-stack:gateway.serviceType", "LoadBalancer, NodePort, ClusterIP"),
    ("gateway.tlsIssuer.kind", "Vault", "kserve-stack:gateway.tlsIssuer.kind", "ClusterIssuer"),
    ("sources.kserve", {"repo": "https://a", "oci": "oci://b"}, "kserve-stack:sources.kserve", "exactly one"),
    ("sources.kserve.oci", "ghcr.io/kserve/charts", "kserve-stack:sources.kserve.oci", "oci://"),
    ("sources.kserveCRD", {"path": "x"}, "kserve-stack:sources.kserveCRD", "unknown key"),
    ("sources.gatewayApiCrds.url", "https://x/crds.yaml", "kserve-stack:sources.gatewayApiCrds.sha256", "64 hex"),
    ("imageRegistry", "https://registry.local/", "kserve-stack:imageRegistry", "registry host"),
]


@pytest.mark.parametrize(("path", "value", "key", "allowed"), BAD_INPUTS,
                         ids=[f"{p}={v!r}"[:60] for p, v, *_ in BAD_INPUTS])
def test_bad_input_names_key_value_and_allowed(raw, project_dir, path, value, key, allowed):
    set_path(raw, path, value)
    found = problems(raw, project_dir)
    matching = [p for p in found if p.startswith(f"{key}:")]
    assert matching, f"no problem names {key}: {found}"
    assert any(repr(value) in p or str(value) in p for p in matching), f"value {value!r} not named: {matching}"
    assert any(allowed in p for p in matching), f"{allowed!r} not said: {matching}"


def test_two_sources_and_no_source(raw, project_dir):
    raw["model"]["storageUri"] = "s3://bucket/model"
    assert any("exactly one model source" in p for p in problems(raw, project_dir))
    del raw["model"]["storageUri"]
    del raw["model"]["path"]
    assert any("exactly one model source" in p for p in problems(raw, project_dir))


def test_unknown_storage_uri_scheme(raw, project_dir):
    del raw["model"]["path"]
    raw["model"]["storageUri"] = "ftp://host/model"
    [problem] = problems(raw, project_dir)
    assert problem.startswith("kserve-stack:model.storageUri: 'ftp://host/model'")
    assert "s3://" in problem and "pvc://" in problem and "hf://" in problem


@pytest.mark.parametrize("files", [[], ["a.joblib", "b.pkl"], ["model.txt"]])
def test_model_dir_needs_exactly_one_model_file(raw, tmp_path, files):
    d = tmp_path / "m"
    d.mkdir()
    for name in files:
        (d / name).write_bytes(b"x")
    raw["model"]["path"] = str(d)
    [problem] = problems(raw, tmp_path)
    assert problem.startswith(f"kserve-stack:model.path: {str(d)!r}")
    assert f"found {len([f for f in files if not f.endswith('.txt')])}" in problem


def test_model_dir_too_large_for_a_configmap(raw, model_dir, project_dir):
    (model_dir / "model.joblib").write_bytes(b"x" * (config.CONFIGMAP_LIMIT + 1))
    raw["model"]["path"] = str(model_dir)
    [problem] = problems(raw, project_dir)
    assert "model.image or model.storageUri" in problem


def test_image_source_needs_pinned_tag(raw, project_dir):
    del raw["model"]["path"]
    for image in ("registry.local/model", "registry.local/model:latest"):
        raw["model"]["image"] = image
        [problem] = problems(raw, project_dir)
        assert problem.startswith(f"kserve-stack:model.image: {image!r}")


def test_every_problem_is_reported_at_once(raw, project_dir):
    raw["mode"] = "raw"
    raw["model"]["name"] = "Bad_Name"
    raw["domain"] = "nope"
    keys = {p.split(":")[1] for p in problems(raw, project_dir)}
    assert {"mode", "model.name", "domain"} <= keys


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_shipped_stack_files_validate(stack, project_dir):
    cfg = config.from_stack_file(project_dir / f"Pulumi.{stack}.yaml")
    assert cfg.mode == stack
    assert cfg.models[0].name == "model" and cfg.models[0].namespace == "default"
    assert cfg.models[0].source.path == project_dir / "model"


def test_serverless_may_scale_to_zero(project_dir):
    cfg = config.from_stack_file(project_dir / "Pulumi.serverless.yaml")
    assert cfg.models[0].min_replicas == 0


def test_valid_overrides_parse(raw, project_dir, model_dir):
    raw["model"] = {"name": "iris", "namespace": "ml", "storageUri": "gs://bucket/iris", "protocol": "v2"}
    raw["versions"] = {"kserve": "v0.17.1"}
    raw["gateway"] = {"serviceType": "NodePort", "tlsIssuer": {"kind": "Issuer", "name": "corp-ca"}}
    raw["sources"] = {"kserve": {"path": "./charts/kserve-resources"}}
    cfg = parse(raw, project_dir)
    assert cfg.kserve.controller_chart == "kserve-resources"
    assert cfg.charts["kserve"].path == "./charts/kserve-resources"
    assert cfg.models[0].runtime == "kserve-mlserver" and not cfg.models[0].needs_pvc
    assert cfg.gateway.tls_issuer == config.TlsIssuer(kind="Issuer", name="corp-ca")


def test_decode_reads_pulumi_config_strings():
    decoded = config.decode({"mode": "standard", "model": '{"name": "m", "minReplicas": 2}', "domain": "a.b"})
    assert decoded == {"mode": "standard", "model": {"name": "m", "minReplicas": 2}, "domain": "a.b"}


@pytest.mark.parametrize(("text", "value"), [
    ("500m", "0.5"), ("1", "1"), ("2Gi", str(2 * 2**30)), ("1e3", "1000"), ("1.5k", "1500"), ("-1", "-1"),
])
def test_parse_quantity(text, value):
    from decimal import Decimal

    assert parse_quantity(text) == Decimal(value)


CANONICAL_QUANTITIES = {
    "0.5": "500m", "2048Mi": "2Gi", "1000m": "1", "1.5": "1500m", "1500m": "1500m", "2000": "2k", "0.1": "100m",
    "1e3": "1e3", "1.5e3": "1500", "1.5Gi": "1536Mi", "0.5Ki": "512", "1000Mi": "1000Mi", "0.0001": "1m", "100u": "1m",
    "1024": "1024", "1Ki": "1Ki", "1M": "1M", "256Mi": "256Mi", "1": "1", "0": "0", "3e-3": "3e-3",
}
"""Spellings and the canonical form Kubernetes gives them; checked against the real API server in
tests/integration/test_server_side_validation.py."""


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_QUANTITIES.items())
def test_canonical_quantity(text, canonical):
    assert config.canonical_quantity(text) == canonical


def test_model_resources_are_canonicalised(raw, project_dir):
    """KServe's defaulter stores them canonically; an input spelled otherwise would diff on every preview."""
    raw["model"] = {**raw["model"], "resources": {"requests": {"cpu": "0.5", "memory": "2048Mi"},
                                                   "limits": {"cpu": "1000m", "memory": "4Gi"}}}
    resources = config.parse(raw, project_dir).models[0].resources
    assert resources == {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}}


@pytest.mark.parametrize("text", ["10XB", "", "1.2.3", "Gi", "1 Gi", "one"])
def test_parse_quantity_rejects(text):
    assert parse_quantity(text) is None


def test_pulumi_yaml_declares_every_key_with_code_defaults(project_dir):
    declared = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == config.TOP_LEVEL_KEYS - config.UNDECLARED_KEYS
    assert all("default" in d for k, d in declared.items() if k != "mode"), \
        "Pulumi refuses a stack that leaves out a declared key without a default"
    assert "default" not in declared["mode"], "mode must be chosen per stack"
    defaults = {k: d["default"] for k, d in declared.items() if "default" in d}
    cfg = parse({**defaults, "mode": "standard", "model": {"path": "model"}}, project_dir)
    assert (cfg.domain, cfg.readiness, cfg.smoke_test, cfg.image_registry) == ("example.com", "wait", "auto", None)


@pytest.mark.parametrize(("versions", "serving"), [
    ({}, "1.21.1"),
    ({"kserve": "v0.15.2"}, "1.15.2"),
    ({"kserve": "v0.16.0"}, "1.16.0"),
    ({"knative": "v1.20.2"}, "1.20"),
    ({"knative": "v1.20.2", "knativeServing": "1.19.4"}, "1.19.4"),
])
def test_knative_serving_is_pinned_apart_from_the_operator(raw, project_dir, versions, serving):
    """The operator installs only the Serving releases it bundles; an operator override without
    a Serving pin takes that minor's newest bundled patch."""
    raw["versions"] = versions
    assert config.parse(raw, project_dir).versions.knative_serving == serving


@pytest.mark.parametrize(("version", "renders"), [
    ("1.23.2", False), ("1.24.6", False), ("1.25.4", False), ("1.25.5", True), ("1.26.3", False),
    ("1.26.4", True), ("1.27.0", False), ("1.27.1", True), ("1.28.0", True),
])
def test_istio_gateway_chart_versions_that_render(version, renders):
    from settings.versions import istio_gateway_chart_renders

    assert istio_gateway_chart_renders(version) is renders


@pytest.mark.parametrize("istio", ["1.27.0", "1.26.3", "1.25.4"])
def test_serverless_refuses_an_istio_whose_gateway_chart_cannot_render(raw, project_dir, istio):
    raw.update(mode="serverless", versions={"kserve": "v0.15.2", "istio": istio}, auth={"type": "none"})
    with pytest.raises(config.ConfigError) as err:
        config.parse(raw, project_dir)
    [problem] = err.value.problems
    assert problem.startswith(f"kserve-stack:versions.istio: '{istio}' is not allowed;")
    assert "istio/istio#57354" in problem and "1.25.5+, 1.26.4+, 1.27.1+" in problem


def test_standard_mode_needs_no_gateway_chart(raw, project_dir):
    raw.update(versions={"istio": "1.27.0"}, auth={"type": "none"})
    assert config.parse(raw, project_dir).versions.istio == "1.27.0"


def test_every_releases_default_istio_renders():
    from settings.versions import KSERVE_COMPAT, istio_gateway_chart_renders

    assert all(istio_gateway_chart_renders(c.tested["istio"]) for c in KSERVE_COMPAT.values())


def storage_problems(raw: dict, project_dir: Path, storage: dict, **model) -> list[str]:
    raw["model"] = {**raw["model"], "storage": storage, **model}
    return problems(raw, project_dir)


def test_read_only_many_is_refused_because_the_copy_job_writes(raw, project_dir):
    [problem] = storage_problems(raw, project_dir, {"accessMode": "ReadOnlyMany"})
    assert problem.startswith("kserve-stack:model.storage.accessMode: 'ReadOnlyMany' is not allowed;")
    assert "copy Job writes" in problem and "allowed: ReadWriteOnce, ReadWriteMany" in problem
    [problem] = storage_problems(raw, project_dir, {"accessMode": "ReadWriteOncePod"})
    assert "allowed: ReadWriteOnce, ReadWriteMany" in problem


def test_host_path_needs_the_node_that_holds_it(raw, project_dir):
    """A hostPath PV without node affinity lets the copy Job write on one node while the
    predictor reads an empty directory on another."""
    [problem] = storage_problems(raw, project_dir, {"hostPath": "/srv/models"})
    assert problem.startswith("kserve-stack:model.storage.hostPath: '/srv/models' is not allowed;")
    assert "needs model.storage.node" in problem and "kubernetes.io/hostname" in problem
    [problem] = storage_problems(raw, project_dir, {"node": "node-a"})
    assert problem.startswith("kserve-stack:model.storage.node: 'node-a' is not allowed;")
    assert "only goes with model.storage.hostPath" in problem
    for bad in ("Node_A", "n" * 64, ""):
        [problem] = storage_problems(raw, project_dir, {"hostPath": "/srv/models", "node": bad})
        assert problem.startswith(f"kserve-stack:model.storage.node: {bad!r} is not allowed;"), problem
    raw["model"]["storage"] = {"hostPath": "/srv/models", "node": "worker-1.example.internal"}
    storage = parse(raw, project_dir).models[0].storage
    assert (storage.host_path, storage.node) == ("/srv/models", "worker-1.example.internal")


def test_read_write_once_claims_may_have_several_replicas(raw, project_dir):
    """Every pod that mounts a ReadWriteOnce claim shares its node (required pod affinity, see
    components.model_service.claim_affinity), so more replicas are sound; they share that node."""
    raw["model"] = {**raw["model"], "maxReplicas": 3}
    assert parse(raw, project_dir).models[0].storage.access_mode == "ReadWriteOnce"
    raw["model"]["storage"] = {"accessMode": "ReadWriteMany"}
    assert parse(raw, project_dir).models[0].max_replicas == 3


@pytest.mark.parametrize(("name", "namespace", "length"), [("m" * 30, "n" * 23, 64), ("m" * 53, "team-a", 70)])
def test_standard_hosts_need_name_and_namespace_to_fit_one_label_together(raw, project_dir, name, namespace, length):
    """KServe renders `<name>-predictor-<namespace>.<domain>` for the predictor in Standard mode and
    refuses it when that first label passes 63 characters; each key alone is within its limit."""
    raw["model"] = {**raw["model"], "name": name, "namespace": namespace}
    [problem] = problems(raw, project_dir)
    assert problem.startswith(f"kserve-stack:model.name: {name!r} is not allowed;")
    assert f"model.namespace {namespace!r}" in problem and f"{length} characters" in problem
    assert "at most 52 characters together" in problem
    raw["mode"] = "serverless"
    assert parse(raw, project_dir).models[0].name == name, "Knative's hosts put the namespace in a label of its own"


def test_standard_hosts_of_exactly_one_label_pass(raw, project_dir):
    raw["model"] = {**raw["model"], "name": "m" * 29, "namespace": "n" * 23}
    assert len(f"{'m' * 29}-predictor-{'n' * 23}") == 63
    assert parse(raw, project_dir).models[0].namespace == "n" * 23
