"""The readiness gates under the real engine: `pulumi up` with `readiness: wait` (the default),
on a cluster whose pods turn Ready, returns only once the platform works, in the order users
rely on.

The cluster is the local control plane with kube-scheduler and KWOK (the Kubernetes SIG's
kubelet stand-in, with its own upstream pod stages): Deployments turn Available, Services get
endpoints and Jobs complete. What the upstream controllers would write (CA bundles, Ready
conditions, the Gateway's Service) is played by `controllers.UpstreamControllers`, each write
only once its own preconditions hold. Admission webhooks stay off: nothing serves them.

The order is read from the API server's own audit log (`LocalApiServer(audit=True)`): the
moment each object was first written, and each controller write, to the microsecond.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from collections.abc import Iterable

import pytest
import yaml

from components.kserve_release import WEBHOOKS as KSERVE_WEBHOOKS
from components.model_service import SERVING_LABEL
from tests.integration.apiserver import NODE, LocalApiServer
from tests.integration.controllers import USER_AGENT, UpstreamControllers
from tests.integration.engine import Engine, Project, planned_objects, state_objects
from tests.integration.test_engine import existing, stack_config
from tools.graph import REMOTE

DELAY = 1.0
"""Every controller write comes this long after its preconditions hold: long enough that a
dependent created too early would show in the audit log, short enough for CI."""
HOST_PATH = "/var/lib/kserve-stack/models"
"""The model's claim binds to a hostPath volume: no storage provisioner runs here."""
CERT_MANAGER_WEBHOOK = "cert-manager-webhook"


def readiness_config(mode: str) -> dict:
    """The shipped stack on the real v0.20.0 charts, with every readiness wait on."""
    config = stack_config(mode, "v0.20.0")
    config["kserve-stack:readiness"] = "wait"
    config["kserve-stack:smokeTest"] = "on"
    model = config["kserve-stack:model"]
    config["kserve-stack:model"] = {**model, "storage": {"size": "1Gi", "hostPath": HOST_PATH, "node": NODE}}
    return config


class AuditLog:
    """The API server's record of writes, in order: who wrote what, when."""

    def __init__(self, events: list[dict]):
        self.events = [e for e in events if e.get("stage") == "ResponseComplete"
                       and e.get("verb") in ("create", "update", "patch")
                       and 200 <= (e.get("responseStatus") or {}).get("code", 0) < 300]

    def _matching(self, resource: str, name: str, namespace: str | None, subresource: str | None,
                  controller_only: bool) -> Iterable[dict]:
        for e in self.events:
            ref = e.get("objectRef") or {}
            if (ref.get("resource"), ref.get("name"), ref.get("namespace"), ref.get("subresource")) != \
                    (resource, name, namespace, subresource):
                continue
            if controller_only and e.get("userAgent") != USER_AGENT:
                continue
            yield e

    def created(self, resource: str, name: str, namespace: str | None = None) -> datetime.datetime:
        """The first successful write of the object: a server-side apply that creates is a patch."""
        event = next(iter(self._matching(resource, name, namespace, None, False)), None)
        assert event, f"no write of {resource} {namespace or ''}/{name} in the audit log"
        return at(event)

    def _first_played(self, resource: str, name: str, namespace: str | None = None,
                      subresource: str | None = None) -> dict | None:
        return next(iter(self._matching(resource, name, namespace, subresource, True)), None)

    def played(self, resource: str, name: str, namespace: str | None = None,
               subresource: str | None = None) -> datetime.datetime:
        """The first write the stand-in controllers made to the object."""
        event = self._first_played(resource, name, namespace, subresource)
        assert event, f"the controllers never wrote {resource} {namespace or ''}/{name}"
        return at(event)

    def ca_injected(self, name: str) -> datetime.datetime:
        """When the stand-in cainjector had filled the CA bundles of every webhook configuration
        (mutating, validating) of that name."""
        firsts = [self._first_played(r, name)
                  for r in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")]
        assert any(firsts), f"no CA bundle was ever injected into {name}"
        return max(at(e) for e in firsts if e)

    def condition_set(self, resource: str, name: str, namespace: str | None, condition: str) -> datetime.datetime:
        """The status write (by whichever controller) that first set `condition` True."""
        for e in self._matching(resource, name, namespace, "status", False):
            conditions = ((e.get("requestObject") or {}).get("status") or {}).get("conditions") or []
            if any(c.get("type") == condition and c.get("status") == "True" for c in conditions):
                return at(e)
        raise AssertionError(f"{resource} {namespace or ''}/{name} never turned {condition}")


def at(event: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))


def stack_objects(state: list[dict], api) -> list[dict]:
    """Every Kubernetes object in the stack's state: the chart (or resource) that made it, the
    API resource (plural), its name and namespace."""
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api)
    parents = {r["urn"]: r.get("parent") or "" for r in state}
    plurals: dict[tuple[str, str], str] = {}
    out = []
    for urn, obj in state_objects(state).items():
        key = (obj["apiVersion"], obj["kind"])
        if key not in plurals:
            plurals[key] = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).name
        types = urn.split("::")[2].split("$")
        in_chart = len(types) > 1 and types[-2].startswith(REMOTE)
        owner = (parents[urn] if in_chart else urn).rsplit("::", 1)[-1]
        out.append({"owner": owner,
                    "kind": obj["kind"], "resource": plurals[key], "name": obj["metadata"]["name"],
                    "namespace": obj["metadata"].get("namespace") or None})
    return out


def check_recorded_dependencies(state: list[dict], mode: str) -> None:
    """The engine's own record of what each gate's dependent waited for. Some orders the audit log
    shows would hold here by timing alone (a copy Job completes in a second on KWOK), so the
    dependencies that enforce them are checked too."""
    deps = {r["urn"].rsplit("::", 1)[-1]: {d.rsplit("::", 1)[-1] for d in r.get("dependencies") or []}
            for r in state}
    ingress = "gateway-api-crds" if mode == "standard" else "knative-serving"
    assert {"cert-manager-chart", ingress, "kserve-crds"} <= deps["kserve-controller"]
    assert "kserve-controller" in deps["kserve-runtimes"]
    assert {"model-copy", "kserve-controller", "kserve-runtimes"} <= deps["model-isvc"]
    assert "model-isvc" in deps["model-smoke-test"]
    if mode == "standard":
        assert {"model-copy", "kserve-controller"} <= deps["model-serving"]
        assert "model-serving" in deps["model-smoke-test"]


def check_order(audit: AuditLog, objects: list[dict], mode: str, returned: datetime.datetime) -> None:
    def created(o: dict) -> datetime.datetime:
        return audit.created(o["resource"], o["name"], o["namespace"])

    def of(owner: str) -> list[dict]:
        found = [o for o in objects if o["owner"] == owner]
        assert found, f"no objects of {owner} in the state"
        return found

    # cert-manager's webhook intercepts every cert-manager object, KServe's charts hold some.
    cert_manager_ca = audit.ca_injected(CERT_MANAGER_WEBHOOK)
    kserve_objects = [*of("kserve-controller"), *of("kserve-runtimes"), *of("model-isvc"),
                      *of("cert-manager-selfsigned-issuer")]
    if mode == "standard":
        kserve_objects += [*of("kserve-gateway-certificate"), *of("kserve-gateway")]
    early = [f"{o['kind']} {o['name']}" for o in kserve_objects if created(o) <= cert_manager_ca]
    assert not early, f"created before cert-manager's webhook had its CA bundle: {early}"

    controller = audit.created("deployments", "kserve-controller-manager", "kserve")
    if mode == "standard":
        crds = [o for o in of("gateway-api-crds") if o["kind"] == "CustomResourceDefinition"]
        assert len(crds) >= 5
        late = [o["name"] for o in crds
                if audit.condition_set(o["resource"], o["name"], None, "Established") >= controller]
        assert not late, f"the KServe controller started before the Gateway API CRDs: {late}"
    else:
        serving_ready = audit.played("knativeservings", "knative-serving", "knative-serving", "status")
        assert serving_ready < controller, "the KServe controller started before KnativeServing was Ready"

    kserve_ca = max(audit.ca_injected(name) for name in KSERVE_WEBHOOKS)
    runtimes = [o for o in of("kserve-runtimes") if o["kind"] == "ClusterServingRuntime"]
    assert len(runtimes) >= 5
    early = [o["name"] for o in runtimes if created(o) <= kserve_ca]
    assert not early, f"runtimes created before KServe's webhooks had their CA bundles: {early}"

    isvc = audit.created("inferenceservices", "model", "default")
    copied = audit.condition_set("jobs", of("model-copy")[0]["name"], "default", "Complete")
    assert copied < isvc, "the InferenceService came before its files"

    smoke = of("model-smoke-test")[0]
    if mode == "serverless":
        ready = audit.condition_set("inferenceservices", "model", "default", "Ready")
        assert ready < returned, "`pulumi up` returned before the InferenceService was Ready"
        assert ready < audit.created("jobs", smoke["name"], "default"), "the smoke test ran before the model was Ready"
    else:  # no wait on a raw-mode InferenceService: a Ready pod of the version is the gate
        serving = of("model-serving")[0]
        ready = audit.condition_set(serving["resource"], serving["name"], "default", "DisruptionAllowed")
        assert ready < audit.created("jobs", smoke["name"], "default"), "the smoke test ran before a pod was Ready"


def deploy(kwok_cluster, pulumi_engine, tmp_path, mode: str) -> tuple[Project, UpstreamControllers]:
    engine = Engine(pulumi_engine.toolchain, pulumi_engine.home, kwok_cluster.kubeconfig, state=tmp_path / "state")
    return engine.project(tmp_path / "project", mode, readiness_config(mode)), UpstreamControllers(
        kwok_cluster.client(), delay=DELAY, ca_bundle=kwok_cluster.ca_bundle())


@pytest.mark.parametrize("mode", ["standard", "serverless"])
def test_up_waits_for_every_gate_in_order(mode, kwok_cluster, pulumi_engine, tmp_path):
    project, controllers = deploy(kwok_cluster, pulumi_engine, tmp_path, mode)
    with controllers:
        project.up()
        returned = datetime.datetime.now(datetime.UTC)
        outputs = project.outputs()
        assert outputs["smoke_test"].startswith("passed: job default/model-smoke-test-")
        state = project.state()
        check_recorded_dependencies(state, mode)
        check_order(AuditLog(kwok_cluster.audit()), stack_objects(state, kwok_cluster.client()), mode, returned)
        project.preview("--expect-no-changes", "--diff")
        check_refresh_is_clean(project, controllers)
        if mode == "standard":
            assert not outputs.get("gateway_address"), "no load balancer here: the address stays pending"
            assert outputs["curl"].startswith("kubectl -n kserve port-forward svc/kserve-ingress-gateway-istio ")
            check_scaling_and_model_updates(project, kwok_cluster)
            check_a_version_that_never_serves(project, kwok_cluster)
            check_an_interrupted_up_converges(project, kwok_cluster)
        else:
            check_several_models(project, controllers, kwok_cluster)


ISTIOD_WEBHOOKS = ("istio-validator-istio-system", "istiod-default-validator")
"""The validating webhook configurations istiod rewrites (CA bundle, failurePolicy Fail)."""


def check_refresh_is_clean(project: Project, controllers: UpstreamControllers) -> None:
    """After the controllers' own writes (istiod's webhooks among them), `pulumi refresh` reads
    them into the state, and a no-change preview must still be clean: nothing the stack applies
    fights a field a controller owns."""
    for name in ISTIOD_WEBHOOKS:
        assert controllers.written(f"ValidatingWebhookConfiguration {name}"), f"istiod never rewrote {name}"
    project.pulumi("refresh", "--yes", "--skip-preview", "-s", project.stack)
    project.preview("--expect-no-changes", "--diff")


def set_model(project: Project, **changes) -> None:
    stack_file = project.dir / f"Pulumi.{project.stack}.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["kserve-stack:model"] = {**stack["config"]["kserve-stack:model"], **changes}
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))


def predictor_pods(api, serving: str | None = None) -> list:
    from kubernetes import client

    selector = "serving.kserve.io/inferenceservice=model" + (f",{SERVING_LABEL}={serving}" if serving else "")
    return client.CoreV1Api(api).list_namespaced_pod("default", label_selector=selector).items


def check_scaling_and_model_updates(project: Project, cluster: LocalApiServer) -> None:
    """Day two in Standard mode. A `maxReplicas` change reaches only the HPA: the predictor
    Deployment stays as it was, so the InferenceService's observedGeneration (the Deployment's)
    stays behind its generation for good, and `up` must still return (after a smoke test that
    failed once, see `up_after_a_job_failed_once`). Then a change that rolls the predictor: `up`
    returns once a pod of the new version is Ready (the real Deployment controller rolls it, KWOK
    runs the pods), and the smoke test calls that version."""
    from kubernetes import client

    api = cluster.client()
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    set_model(project, maxReplicas=2, readyTimeoutSeconds=60)
    up_after_a_job_failed_once(project, cluster)
    isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", "model")
    assert isvc["spec"]["predictor"]["maxReplicas"] == 2
    assert isvc["status"]["observedGeneration"] < isvc["metadata"]["generation"], \
        "the Deployment did not change, so KServe's copy of its observedGeneration stays behind"
    generation = apps.read_namespaced_deployment("model-predictor", "default").metadata.generation
    project.preview("--expect-no-changes", "--diff")

    before = project.outputs()["smoke_test"]
    resources = {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    set_model(project, resources=resources)
    project.up()
    assert apps.read_namespaced_deployment("model-predictor", "default").metadata.generation > generation
    serving = isvc_serving_label(custom)
    ready = [p for p in predictor_pods(api, serving)
             if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    assert ready, f"up returned with no Ready pod of version {serving}"
    after = project.outputs()["smoke_test"]
    assert after != before, "a new version, a new smoke test"
    project.preview("--expect-no-changes", "--diff")


def up_after_a_job_failed_once(project: Project, cluster: LocalApiServer) -> None:
    """The smoke-test Job of a change fails once: its pod finds no node (the node is cordoned, as
    while a cluster scales up) until the Job's activeDeadlineSeconds pass, and the real Job
    controller fails it (DeadlineExceeded); `up` fails naming it. With the node back and nothing
    changed in the config, the next `up` replaces the failed Job (`pulumi.com/replaceUnready`)
    instead of awaiting the same failed Job again, and passes."""
    from kubernetes import client

    api = cluster.client()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.patch_node(NODE, {"spec": {"unschedulable": True}})
    try:
        run = project.pulumi("up", "--yes", "--skip-preview", "-s", project.stack, check=False)
    finally:
        core.patch_node(NODE, {"spec": {"unschedulable": False}})
    assert run.returncode != 0, "up passed although the smoke test never ran"
    assert any("model-smoke-test" in line for line in (run.stdout + run.stderr).splitlines())
    [failed] = [j for j in batch.list_namespaced_job("default").items
                if any(c.type == "Failed" and c.status == "True" for c in j.status.conditions or [])]
    assert failed.metadata.name.startswith("model-smoke-test-")

    project.up()
    job = batch.read_namespaced_job(failed.metadata.name, "default")
    assert job.metadata.uid != failed.metadata.uid, "the failed Job was replaced, not awaited again"
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])


def isvc_serving_label(custom) -> str:
    isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", "model")
    return isvc["spec"]["predictor"]["labels"][SERVING_LABEL]


def check_a_version_that_never_serves(project: Project, cluster: LocalApiServer) -> None:
    """A new version whose pods never turn Ready (here: the node is cordoned, so no node takes
    them) while the old pod keeps the Deployment Available: `up` fails once the model's ready
    timeout has passed since the gate that waits for a Ready pod of the new version was created
    (the audit log's time: the engine's own work before it, rendering every chart, is not the
    wait), naming it."""
    from kubernetes import client

    api = cluster.client()
    core = client.CoreV1Api(api)
    timeout = 30
    core.patch_node(NODE, {"spec": {"unschedulable": True}})
    try:
        resources = {"requests": {"cpu": "300m", "memory": "256Mi"}, "limits": {"cpu": "3", "memory": "1Gi"}}
        set_model(project, resources=resources, readyTimeoutSeconds=timeout)
        run = project.pulumi("up", "--yes", "--skip-preview", "-s", project.stack, check=False)
        returned = datetime.datetime.now(datetime.UTC)
    finally:
        core.patch_node(NODE, {"spec": {"unschedulable": False}})
    assert run.returncode != 0, "up succeeded although the new version never served"
    gate = f"model-v{isvc_serving_label(client.CustomObjectsApi(api))}"
    waited = (returned - AuditLog(cluster.audit()).created("poddisruptionbudgets", gate, "default")).total_seconds()
    assert timeout <= waited < timeout + 60, f"up gave up {waited:.0f} s after creating {gate}"
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "model-serving" in line]
    assert lines, (run.stdout + run.stderr)[-3000:]
    old = [p for p in predictor_pods(api) if p.status.phase == "Running"]
    assert old, "the old version keeps serving"


def set_models(project: Project, *models: dict) -> None:
    """The stack publishes `models` instead of its one `model`."""
    stack_file = project.dir / f"Pulumi.{project.stack}.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    config = stack["config"]
    config["kserve-stack:models"] = list(models)
    config.pop("kserve-stack:model", None)
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))


def isvc_uids(api) -> dict[str, str]:
    from kubernetes import client

    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", "default", "inferenceservices")["items"]
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in items}


def model_objects(api, name: str) -> list[str]:
    """What a model leaves in the cluster: its InferenceService, claim, volume, files and Jobs."""
    from kubernetes import client

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    found = [f"InferenceService {n}" for n in isvc_uids(api) if n == name]
    found += [f"PersistentVolumeClaim {c.metadata.name}" for c in core.list_namespaced_persistent_volume_claim(
        "default").items if c.metadata.name == f"{name}-model-store"]
    found += [f"PersistentVolume {v.metadata.name}" for v in core.list_persistent_volume().items
              if v.metadata.name == f"default-{name}-model-store"]
    found += [f"ConfigMap {c.metadata.name}" for c in core.list_namespaced_config_map("default").items
              if c.metadata.name == f"{name}-model-files"]
    found += [f"Job {j.metadata.name}" for j in batch.list_namespaced_job("default").items
              if j.metadata.name.startswith((f"{name}-model-copy-", f"{name}-smoke-test-"))]
    return found


def check_several_models(project: Project, controllers: UpstreamControllers, cluster: LocalApiServer) -> None:
    """Several models in one stack, day two included. The one `model` becomes the first of three
    `models` (moved, not replaced); each InferenceService comes after its own copy Job and waits
    for no other model, and `up` returns once all three are Ready. A model that never turns
    Ready fails `up` once its `readyTimeoutSeconds` have passed, naming it, while a model added
    beside it still turns Ready and passes its smoke test. Removing models from the list removes
    their objects and nothing of the others."""
    api = cluster.client()
    stack = yaml.safe_load((project.dir / f"Pulumi.{project.stack}.yaml").read_text())["config"]
    first = stack["kserve-stack:model"]
    storage = first["storage"]
    second = {"name": "second", "format": "xgboost", "protocol": "v2", "path": "samples/xgboost",
              "storage": storage}
    third = {"name": "third", "format": "lightgbm", "protocol": "v2", "path": "samples/lightgbm",
             "storage": storage}
    before = isvc_uids(api)
    set_models(project, first, second, third)
    project.up()
    returned = datetime.datetime.now(datetime.UTC)
    assert isvc_uids(api)["model"] == before["model"], "the one model became the first of several: kept"
    audit = AuditLog(cluster.audit())
    deps = {r["urn"].rsplit("::", 1)[-1]: {d.rsplit("::", 1)[-1] for d in r.get("dependencies") or []}
            for r in project.state()}
    for name in ("second", "third"):
        [copy] = [j for j in model_objects(api, name) if j.startswith(f"Job {name}-model-copy-")]
        copied = audit.condition_set("jobs", copy.split()[1], "default", "Complete")
        assert copied < audit.created("inferenceservices", name, "default"), f"{name} came before its files"
        assert audit.condition_set("inferenceservices", name, "default", "Ready") < returned
        others = {f"{o}-{r}" for o in ("model", "second", "third") if o != name for r in ("copy", "isvc")}
        assert f"{name}-copy" in deps[f"{name}-isvc"] and not deps[f"{name}-isvc"] & others
    outputs = project.outputs()
    assert {k: v["smoke_test"].split(" ")[-1].rsplit("-", 1)[0] for k, v in outputs["models"].items()} == {
        n: f"default/{n}-smoke-test" for n in ("model", "second", "third")}
    assert "predict_url" not in outputs, "with several models, each has its URLs under `models`"
    project.preview("--expect-no-changes", "--diff")

    timeout = 30
    broken = {**first, "name": "broken", "readyTimeoutSeconds": timeout}
    fourth = {**first, "name": "fourth"}
    controllers.never_ready = frozenset({"InferenceService default/broken"})
    set_models(project, first, second, third, broken, fourth)
    run = project.pulumi("up", "--yes", "--skip-preview", "-s", project.stack, check=False)
    returned = datetime.datetime.now(datetime.UTC)
    output = run.stdout + run.stderr
    assert run.returncode != 0, "up succeeded although the InferenceService never turned Ready"
    audit = AuditLog(cluster.audit())
    waited = (returned - audit.created("inferenceservices", "broken", "default")).total_seconds()
    assert timeout <= waited < timeout + 60, f"up gave up {waited:.0f} s after creating the InferenceService"
    lines = [line for line in output.splitlines() if "broken-isvc" in line and "InferenceService" in line]
    assert any("timed out waiting for the condition" in line for line in lines), "\n".join(lines[-20:])
    assert any("Resource has condition Ready=False (want True)" in line for line in lines), "\n".join(lines[-20:])
    assert controllers.written("InferenceService default/broken") is None
    failed = [line for line in output.splitlines() if "error" in line.lower() and "fourth" in line]
    assert not failed, failed
    assert audit.condition_set("inferenceservices", "fourth", "default", "Ready") < returned
    [smoke] = [j for j in model_objects(api, "fourth") if j.startswith("Job fourth-smoke-test-")]
    assert audit.condition_set("jobs", smoke.split()[1], "default", "Complete") < returned, \
        "one model that never turns Ready holds back no other"

    kept = {n: u for n, u in isvc_uids(api).items() if n in ("model", "second", "fourth")}
    controllers.never_ready = frozenset()
    set_models(project, first, second, fourth)
    project.up()
    for name in ("third", "broken"):
        assert not model_objects(api, name), f"{name} left behind: {model_objects(api, name)}"
    assert {n: u for n, u in isvc_uids(api).items() if n in kept} == kept
    assert set(project.outputs()["models"]) == {"model", "second", "fourth"}
    project.preview("--expect-no-changes", "--diff")


def check_an_interrupted_up_converges(project: Project, cluster: LocalApiServer) -> None:
    """The engine killed while `up` waits for a new version's pods (the node cordoned, so they
    wait): the stack stays locked and the state keeps a pending create of the gate, which the
    cluster already holds. As the README says, `pulumi cancel` lifts the lock and `pulumi refresh
    --import-pending-creates` adopts the object; then `up`, with no object it
    creates already in the cluster (the 4.34 provider refuses those), converges: a Ready pod of the
    version, the smoke test passed, a clean preview."""
    from kubernetes import client

    api = cluster.client()
    core, policy = client.CoreV1Api(api), client.PolicyV1Api(api)
    before = {b.metadata.name for b in policy.list_namespaced_pod_disruption_budget("default").items}
    core.patch_node(NODE, {"spec": {"unschedulable": True}})
    try:
        resources = {"requests": {"cpu": "400m", "memory": "256Mi"}, "limits": {"cpu": "4", "memory": "1Gi"}}
        set_model(project, resources=resources, readyTimeoutSeconds=300)
        run = project.start("up", "--yes", "--skip-preview", "-s", project.stack)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None and not (
                {b.metadata.name for b in policy.list_namespaced_pod_disruption_budget("default").items} - before):
            time.sleep(1)
        time.sleep(3)
        assert run.poll() is None, f"up ended before it waited:\n{run.stdout.read()[-3000:]}"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    finally:
        core.patch_node(NODE, {"spec": {"unschedulable": False}})
    deployment = project.pulumi("stack", "export", "-s", project.stack).json()["deployment"]
    creates = [op["resource"] for op in deployment.get("pending_operations") or [] if op["type"] == "creating"]
    assert any(r["urn"].endswith("::model-serving") for r in creates), deployment.get("pending_operations")
    ids = [(r["urn"], f"{r['inputs']['metadata']['namespace']}/{r['inputs']['metadata']['name']}") for r in creates]
    pairs = [arg for urn, id_ in ids for arg in ("--import-pending-creates", urn, "--import-pending-creates", id_)]
    project.pulumi("cancel", "--yes", "-s", project.stack)  # the killed run's lock
    project.pulumi("refresh", "--yes", "--skip-preview", "-s", project.stack, *pairs)
    planned = planned_objects(project.preview("--json").json())
    taken = existing(api, planned)
    assert not taken, f"objects the next up would create already exist (a 4.34 provider refuses them): {taken}"
    project.up()
    assert not project.pulumi("stack", "export", "-s", project.stack).json()["deployment"].get("pending_operations")
    assert project.outputs()["smoke_test"].startswith("passed: job default/model-smoke-test-")
    project.preview("--expect-no-changes", "--diff")
