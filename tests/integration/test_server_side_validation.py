"""Every object the program creates, sent to a real kube-apiserver (server-side apply,
dry run, strict field validation) with the real upstream CRDs installed: a misspelled or
misplaced field, a wrong type or a missing required field is rejected by Kubernetes itself."""

from __future__ import annotations

import copy
import json
import time

import pytest
import yaml

from settings import config
from tests.conftest import UPSTREAM_CRDS, VARIANTS

NAMESPACES = ("cert-manager", "istio-system", "kserve", "knative-operator", "knative-serving", "ml")


@pytest.fixture(scope="module")
def cluster(apiserver):
    """The API server with every upstream CRD from shared/ established and our namespaces present."""
    from kubernetes import client, dynamic

    api = apiserver.client()
    crds = [d for path in sorted(UPSTREAM_CRDS.rglob("*.yaml")) if path.name != "README.md"
            for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]
    ext = client.ApiextensionsV1Api(api)
    for crd in crds:
        ext.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 120
    pending = {c["metadata"]["name"] for c in crds}
    while pending and time.monotonic() < deadline:
        for crd in ext.list_custom_resource_definition().items:
            if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
                pending.discard(crd.metadata.name)
        time.sleep(0.2)
    assert not pending, f"CRDs not established: {pending}"
    core = client.CoreV1Api(api)
    for ns in NAMESPACES:
        core.create_namespace({"metadata": {"name": ns}})
    return api, dynamic.DynamicClient(api)


def apply(cluster, obj: dict, dry_run: bool = True) -> tuple[int, str]:
    """Server-side apply (in dry-run mode unless told) with strict field validation; (HTTP status, message)."""
    from kubernetes.client.exceptions import ApiException

    api, dyn = cluster
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    meta = obj["metadata"]
    path = resource.path(name=meta["name"], namespace=meta.get("namespace") if resource.namespaced else None)
    if resource.namespaced and "namespace" not in meta:
        path = resource.path(name=meta["name"], namespace="default")
    try:
        api.call_api(
            path, "PATCH",
            query_params=[*([("dryRun", "All")] if dry_run else []), ("fieldManager", "kserve-stack"),
                          ("fieldValidation", "Strict"), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=obj, auth_settings=["BearerToken"], _preload_content=False,
        )
    except ApiException as err:
        return err.status, json.loads(err.body or "{}").get("message", str(err.body))
    return 200, ""


@pytest.mark.parametrize(("stack", "overrides"), VARIANTS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(VARIANTS)])
def test_every_object_is_accepted_by_the_api_server(cluster, run_stack, stack, overrides):
    objects = run_stack(stack, **overrides).objects()
    kinds = {o["kind"] for o in objects}
    assert "InferenceService" in kinds
    for obj in objects:
        status, message = apply(cluster, obj)
        assert status == 200, f"{obj['kind']} {obj['metadata'].get('name')}: {message}"


def test_every_kind_the_program_makes_was_sent(run_stack):
    kinds = set()
    for stack, overrides in VARIANTS:
        kinds |= {o["kind"] for o in run_stack(stack, **overrides).objects()}
    assert kinds >= {
        "Namespace", "ClusterIssuer", "CustomResourceDefinition", "GatewayClass", "Gateway", "Certificate",
        "IngressClass", "KnativeServing", "InferenceService", "PersistentVolume",
        "PersistentVolumeClaim", "ConfigMap", "Job", "Secret", "ServiceAccount", "RequestAuthentication",
        "AuthorizationPolicy", "NetworkPolicy", "ClusterRoleBinding",
    }


def _isvc(run_stack) -> dict:
    return next(o for o in run_stack("standard").objects() if o["kind"] == "InferenceService")


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda o: o["spec"]["predictor"]["model"].update(storageUrl=o["spec"]["predictor"]["model"].pop("storageUri")),
     "storageUrl"),
    (lambda o: o["spec"]["predictor"].update(modelFormat=o["spec"]["predictor"]["model"].pop("modelFormat")),
     "modelFormat"),
    (lambda o: o["spec"]["predictor"].update(minReplicas="one"), "minReplicas"),
])
def test_a_broken_inference_service_is_rejected(cluster, run_stack, mutate, expected):
    assert apply(cluster, _isvc(run_stack))[0] == 200
    broken = copy.deepcopy(_isvc(run_stack))
    mutate(broken)
    status, message = apply(cluster, broken)
    assert status >= 400 and expected in message, (status, message)


def test_a_broken_gateway_and_job_are_rejected(cluster, run_stack):
    objects = run_stack("standard").objects()
    gateway = copy.deepcopy(next(o for o in objects if o["kind"] == "Gateway"))
    gateway["spec"]["listeners"][0]["protocl"] = gateway["spec"]["listeners"][0].pop("protocol")
    status, message = apply(cluster, gateway)
    assert status >= 400 and "protocl" in message, message
    job = copy.deepcopy(next(o for o in objects if o["kind"] == "Job"))
    pod = job["spec"]["template"]["spec"]
    pod["volumeMounts"] = pod["containers"][0].pop("volumeMounts")
    status, message = apply(cluster, job)
    assert status >= 400 and "volumeMounts" in message, message
    claim = copy.deepcopy(next(o for o in objects if o["kind"] == "PersistentVolumeClaim"))
    claim["spec"]["accesModes"] = claim["spec"].pop("accessModes")
    status, message = apply(cluster, claim)
    assert status >= 400 and "accesModes" in message, message


def _first(objects: list[dict], kind: str, name_part: str = "") -> dict:
    return copy.deepcopy(next(o for o in objects if o["kind"] == kind and name_part in o["metadata"]["name"]))


@pytest.mark.parametrize(("kind", "name_part", "mutate", "expected"), [
    ("RequestAuthentication", "", lambda o: o["spec"]["jwtRules"][0].update(jwks_uri="x"), "jwks_uri"),
    ("AuthorizationPolicy", "kserve-stack.", lambda o: o["spec"]["rules"][0]["from"][0]["source"].update(
        requestPrincipal=["*"]), "requestPrincipal"),
    ("AuthorizationPolicy", "kserve-stack.", lambda o: o["spec"].update(action="PERMIT"), "action"),
    ("NetworkPolicy", "", lambda o: o["spec"].update(policyType=["Ingress"]), "policyType"),
    ("NetworkPolicy", "", lambda o: o["spec"]["ingress"][0]["from"][0].update(namespaceSelector="kserve"),
     "namespaceSelector"),
    ("ClusterRoleBinding", "", lambda o: o["roleRef"].update(kind="Role", name=""), "roleRef"),
])
def test_broken_access_objects_are_rejected(cluster, run_stack, kind, name_part, mutate, expected):
    """Both Istio policy kinds against Istio's own CRDs (shared/upstream-crds/istio), the
    NetworkPolicy and the binding against Kubernetes."""
    obj = _first(run_stack("standard").objects(), kind, name_part)
    assert apply(cluster, obj)[0] == 200
    mutate(obj)
    status, message = apply(cluster, obj)
    assert status >= 400 and expected in message, (status, message)


def test_canonical_quantities_are_the_api_servers_own(cluster):
    """The spelling `canonical_quantity` gives is the one the API server stores: a Pod's resources
    go through apimachinery's Quantity, as an InferenceService's do through KServe's defaulter.
    Memory, not CPU: Pods alone round CPU up to whole millicores."""
    from kubernetes import client

    from tests.settings.test_config import CANONICAL_QUANTITIES

    api, _ = cluster
    spellings = list(CANONICAL_QUANTITIES)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quantities", "namespace": "default"},
           "spec": {"containers": [{"name": f"c{i}", "image": "busybox:1.37.0",
                                    "resources": {"requests": {"memory": q}}} for i, q in enumerate(spellings)]}}
    created = client.CoreV1Api(api).create_namespaced_pod("default", pod, dry_run="All")
    stored = {q: c.resources.requests["memory"] for q, c in zip(spellings, created.spec.containers, strict=True)}
    assert stored == {q: config.canonical_quantity(q) for q in spellings}


STORAGE_VARIANTS = [
    ("standard", {"model": {"name": "iris", "namespace": "ml", "image": "registry.local/iris:1.0",
                            "storage": {"hostPath": "/srv/models", "node": "worker-1", "size": "2Gi"}}}),
    ("serverless", {"model": {"name": "iris", "path": "model", "storage": {"accessMode": "ReadWriteMany"},
                              "minReplicas": 0, "maxReplicas": 3}}),
    ("serverless", {"model": {"name": "iris", "namespace": "ml", "path": "model", "maxReplicas": 3}}),
]
"""Each storage kind: a hostPath volume on its node, a ReadWriteMany claim, and a ReadWriteOnce
claim whose pods share a node (the predictor's affinity and labels in the real CRD's schema)."""


@pytest.mark.parametrize(("stack", "overrides"), STORAGE_VARIANTS, ids=["host-path", "rwx", "rwo"])
def test_every_storage_kind_is_accepted_by_the_api_server(cluster, run_stack, stack, overrides):
    objects = [o for o in run_stack(stack, **overrides).objects()
               if o["kind"] in ("PersistentVolume", "PersistentVolumeClaim", "Job", "InferenceService", "ConfigMap")]
    assert {"PersistentVolumeClaim", "Job", "InferenceService"} <= {o["kind"] for o in objects}
    for obj in objects:
        status, message = apply(cluster, obj)
        assert status == 200, f"{obj['kind']} {obj['metadata'].get('name')}: {message}"


def test_a_host_path_volume_takes_its_node_in_place_and_keeps_it(cluster, run_stack):
    """A stack whose hostPath volume predates `model.storage.node` gets the node affinity as an
    update; the API server then refuses to move it (PV nodeAffinity is immutable once set)."""
    from kubernetes import client

    stack, overrides = STORAGE_VARIANTS[0]
    pv = next(o for o in run_stack(stack, **overrides).objects() if o["kind"] == "PersistentVolume")
    pv = {**pv, "metadata": {**pv["metadata"], "name": "node-affinity-update"}}
    before = copy.deepcopy(pv)
    del before["spec"]["nodeAffinity"]
    try:
        assert apply(cluster, before, dry_run=False) == (200, "")
        assert apply(cluster, pv, dry_run=False) == (200, "")
        moved = copy.deepcopy(pv)
        moved["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = ["w2"]
        status, message = apply(cluster, moved)
        assert status == 422 and "field is immutable" in message, (status, message)
    finally:
        client.CoreV1Api(cluster[0]).delete_persistent_volume("node-affinity-update")


def wait_for(condition, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_scheduler_keeps_a_read_write_once_claims_pods_on_one_node(kwok_cluster, run_stack):
    """The real kube-scheduler (v1.34) with the copy Job and predictor pods as the program renders
    them, on two nodes: the first pod of the claim schedules though nothing matches its required
    term (it matches itself); a finished copy Job pins nothing; every later pod joins the running
    ones, though pulled to the empty node as hard as a preference can (a preferred node affinity,
    which outweighs the preferred pod affinity). Volumes are left out: the scheduler does not keep
    a ReadWriteOnce claim's pods to one node, the affinity does."""
    from kubernetes import client

    from tests.integration.apiserver import NODE

    api = kwok_cluster.client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    other = "kwok-node-1"
    core.create_node({"metadata": {"name": other, "labels": {"kubernetes.io/hostname": other,
                                                             "kubernetes.io/os": "linux"}}})
    room = {"cpu": "8", "memory": "16Gi", "pods": "110"}
    core.patch_node_status(other, {"status": {"capacity": room, "allocatable": room}})

    objects = run_stack("standard").objects()
    job = copy.deepcopy(next(o for o in objects if o["kind"] == "Job" and "model-copy" in o["metadata"]["name"]))
    predictor = next(o for o in objects if o["kind"] == "InferenceService")["spec"]["predictor"]
    template = job["spec"]["template"]
    template["spec"].pop("volumes")
    for container in template["spec"]["containers"]:
        container.pop("volumeMounts")
    pull = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
        "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}}]}

    def node_of(name: str) -> str:
        return wait_for(lambda: core.read_namespaced_pod(name, "default").spec.node_name, f"pod {name} scheduled")

    def create_pod(name: str, metadata: dict, spec: dict) -> str:
        core.create_namespaced_pod("default", {"metadata": {**metadata, "name": name}, "spec": spec})
        return node_of(name)

    def predictor_pod(name: str, placement: dict) -> str:
        return create_pod(name, {"labels": {**predictor["labels"], "serving.kserve.io/inferenceservice": "model"}}, {
            **placement, "affinity": {**predictor["affinity"], **placement.get("affinity", {})},
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0",
                            "resources": predictor["model"]["resources"]}]})

    template["spec"]["nodeSelector"] = {"kubernetes.io/hostname": NODE}
    batch.create_namespaced_job("default", job)
    wait_for(lambda: any(c.type == "Complete" and c.status == "True"
                         for c in batch.read_namespaced_job(job["metadata"]["name"], "default").status.conditions
                         or []), "the copy Job to complete on the node KWOK runs")
    assert predictor_pod("predictor-0", {"nodeSelector": {"kubernetes.io/hostname": other}}) == other, \
        "the finished copy pod does not pin the predictor"
    assert [predictor_pod(f"predictor-{i}", {"affinity": {"nodeAffinity": pull}}) for i in (1, 2, 3)] == [other] * 3
    del template["spec"]["nodeSelector"]
    spec = {**template["spec"], "affinity": {**template["spec"]["affinity"], "nodeAffinity": pull}}
    assert create_pod("next-copy", template["metadata"], spec) == other, "the next copy Job joins the predictor"
