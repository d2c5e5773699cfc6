"""The program run the way a user runs it: the real Pulumi engine and kubernetes provider, the
real upstream Helm charts (from shared/upstream-charts, as released), a real kube-apiserver.

Per stack: `pulumi preview`, `up`, `preview --expect-no-changes`, what the API server then
holds, an upgrade in place (`versions.kserve` changed, then `up`) or one refused before anything
touches the cluster, `destroy`, what is left (exactly what the README says stays), and a second
`up` on the same API server, which must work after a destroy.

No pod can run here, so the API server runs with webhook admission off (the webhook
configurations the charts install are still created and validated; nothing is there to
answer them) and the stack with `readiness: skip` and `smokeTest: off`. The provider is the
4.25 build (see engine.py); 4.34 refuses to create an object that already exists where 4.25
adopts it, so before every `up` the objects the preview plans to create are looked up in the
API server and none may exist.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from components.cluster_check import CHART as CLUSTER_CHECK_CHART
from settings import versions
from tests.conftest import PROJECT_DIR, SHARED_DIR
from tests.integration.apiserver import LocalApiServer
from tests.integration.engine import Engine, Project, planned_objects, planned_states, state_objects

UPSTREAM_CHARTS = SHARED_DIR / "upstream-charts"
CASES = [("standard", "v0.20.0"), ("serverless", "v0.20.0"), ("standard", "v0.16.0"), ("serverless", "v0.15.2")]
"""Both modes on the newest release; the two older releases whose one `kserve` chart holds
the serving runtimes, one per mode (v0.15 also brings Istio 1.23 and Knative operator 1.15)."""
EXTRA_CONFIG = {("serverless", "v0.15.2"): {"kserve-stack:gateway": {"serviceType": "NodePort"},
                                            "kserve-stack:auth": {"type": "none"}}}
"""The Service type is set on the rendered Service, not through the chart's values. Auth is off
where the Istio is pinned to the charts in shared/ (1.27.1, refused with auth: settings/config/auth)."""
ISTIO_FROM = {"v0.15.2": "v0.20.0"}
"""KServe v0.15.2's own Istio 1.23.2 `gateway` chart fails its values schema under the provider's
Helm; v0.15 runs with an Istio release whose chart renders (its window is 1.25 to 1.27), and
1.27.1 is the one whose charts are in shared/."""
ISTIO_KEYS = ("istioBase", "istiod", "istioGateway")

UPGRADES = {("standard", "v0.16.0"): "v0.20.0"}
"""Upgraded in place after the first `up`: across the chart split (`kserve` → `kserve-resources` +
`kserve-runtime-configs`, the runtimes moving between charts, the LocalModel CRDs leaving
`kserve-crd`)."""
REFUSED = {("serverless", "v0.15.2"): ("v0.16.0", "v0.19.0 or later")}
"""An upgrade KServe itself cannot take in place (settings/upgrades): `up` fails before any write."""

REUSE = {("standard", "v0.20.0"): {"certManager": False, "istio": False}}
"""After the destroy, the second `up` meets a cluster whose cert-manager and Istio another program
installed (tests/integration/platform): the stack reuses them and leaves them as they are."""
PLATFORM = Path(__file__).parent / "platform"

UNTRACKED_KINDS = {"Event", "Lease", "EndpointSlice", "Endpoints", "ComponentStatus"}
"""Written by controllers as they go; not objects a stack owns."""


def stack_config(mode: str, release: str) -> dict:
    """The shipped stack file, pointed at the real charts of one KServe release."""
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{mode}.yaml").read_text())["config"]
    charts = UPSTREAM_CHARTS / release
    istio_charts = UPSTREAM_CHARTS / ISTIO_FROM.get(release, release)
    sources = {key: {"path": str((istio_charts if key in ISTIO_KEYS else charts) / key)}
               for key in versions.DEFAULT_CHARTS if (charts / key).is_dir()}
    sources["gatewayApiCrds"] = {"path": str(UPSTREAM_CHARTS / "v0.20.0" / "gatewayApiCrds")}
    pins = {"kserve": release}
    if release in ISTIO_FROM:
        pins["istio"] = yaml.safe_load((istio_charts / "istiod" / "Chart.yaml").read_text())["version"]
    return {
        **config,
        **EXTRA_CONFIG.get((mode, release), {}),
        "kserve-stack:readiness": "skip",
        "kserve-stack:smokeTest": "off",
        "kserve-stack:versions": pins,
        "kserve-stack:sources": sources,
    }


def inventory(api) -> set[tuple[str, str, str, str]]:
    """(apiVersion, kind, namespace, name) of every object the API server holds."""
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api)
    found = set()
    for resource in dyn.resources.search():
        if "list" not in (resource.verbs or []) or "/" in resource.name or resource.kind in UNTRACKED_KINDS:
            continue
        if not getattr(resource, "preferred", True) or resource.kind.endswith("List"):
            continue
        for item in resource.get().items:
            found.add((resource.group_version, resource.kind, item.metadata.namespace or "", item.metadata.name))
    return found


def existing(api, objects: list[dict]) -> list[str]:
    """Those of `objects` that the API server already holds."""
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    dyn = dynamic.DynamicClient(api)
    out = []
    for obj in objects:
        meta = obj["metadata"]
        if not meta.get("name"):
            continue
        try:
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except dynamic.exceptions.ResourceNotFoundError:
            continue  # its CRD is not installed yet
        try:
            if resource.namespaced:
                resource.get(name=meta["name"], namespace=meta.get("namespace") or "default")
            else:
                resource.get(name=meta["name"])
        except ApiException as err:
            if err.status == 404:
                continue
            raise
        except dynamic.exceptions.NotFoundError:
            continue
        out.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " "))
    return out


def up_without_adopting(project: Project, api) -> None:
    """`pulumi up`, after checking that no object it will create already exists (4.34's rule)."""
    planned = planned_objects(project.preview("--json").json())
    assert planned, "the preview plans to create nothing"
    taken = existing(api, planned)
    assert not taken, f"objects the stack would create already exist (a 4.34 provider refuses them): {taken}"
    project.up()


def owners(state: list[dict]) -> dict[tuple[str, str, str, str], list[str]]:
    """Live object → the URNs of the stack resources that manage it."""
    out: dict[tuple[str, str, str, str], list[str]] = {}
    for urn, obj in state_objects(state).items():
        group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
        key = (group, obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        out.setdefault(key, []).append(urn)
    return out


def check_installed(api, project: Project, mode: str, release: str, class_by_stack: bool = True) -> None:
    """What the API server holds after `up`. `class_by_stack`: False where the cluster's istiod
    runs, which makes the GatewayClass itself (none runs here)."""
    from kubernetes import client

    stack = yaml.safe_load((PROJECT_DIR / f"Pulumi.{mode}.yaml").read_text())["config"]["kserve-stack:model"]
    deploy_mode = versions.kserve_release(release).deployment_mode(mode)
    custom, core, apps = client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api)

    isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", "model")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == deploy_mode
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == stack["minReplicas"] and predictor["maxReplicas"] == stack["maxReplicas"]
    model = dict(predictor["model"])
    assert re.fullmatch(r"pvc://model-model-store/model/[0-9a-f]{12}", model.pop("storageUri")), \
        "the claim, and the model version's own directory on it"
    assert model == {
        "modelFormat": {"name": "sklearn"}, "protocolVersion": "v1", "runtime": "kserve-sklearnserver",
        "resources": stack["resources"],
    }
    deploy = json.loads(core.read_namespaced_config_map("inferenceservice-config", "kserve").data["deploy"])
    assert deploy["defaultDeploymentMode"] == deploy_mode

    runtime = custom.get_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterservingruntimes",
                                               "kserve-sklearnserver")
    assert not runtime["spec"].get("disabled"), "the sklearn runtime is disabled"
    assert any(f["name"] == "sklearn" for f in runtime["spec"]["supportedModelFormats"])

    deployments = {(d.metadata.namespace, d.metadata.name) for d in apps.list_deployment_for_all_namespaces().items}
    expected = {("cert-manager", "cert-manager"), ("cert-manager", "cert-manager-webhook"),
                ("cert-manager", "cert-manager-cainjector"), ("istio-system", "istiod"),
                ("kserve", "kserve-controller-manager")}
    if mode == "serverless":
        expected |= {("istio-system", "istio-ingressgateway"), ("knative-operator", "knative-operator"),
                     ("knative-operator", "operator-webhook")}
    assert expected <= deployments, f"missing deployments: {expected - deployments}"
    assert custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "kserve-stack-selfsigned")
    if mode == "standard":
        gateway = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", "kserve", "gateways",
                                                      "kserve-ingress-gateway")
        assert gateway["spec"]["gatewayClassName"] == "istio"
        classes = custom.list_cluster_custom_object("gateway.networking.k8s.io", "v1", "gatewayclasses")["items"]
        assert [c["metadata"]["name"] for c in classes] == (["istio"] if class_by_stack else [])
    else:
        serving = custom.get_namespaced_custom_object("operator.knative.dev", "v1beta1", "knative-serving",
                                                      "knativeservings", "knative-serving")
        assert serving["spec"]["config"]["domain"] == {"example.com": ""}
        assert serving["spec"]["ingress"]["istio"]["enabled"] is True
        assert serving["spec"]["version"] == versions.default_versions(release)["knativeServing"]
        service = core.read_namespaced_service("istio-ingressgateway", "istio-system")
        service_type = EXTRA_CONFIG.get((mode, release), {}).get("kserve-stack:gateway", {}).get("serviceType")
        assert service.spec.type == (service_type or "LoadBalancer")
        assert service.metadata.labels["istio"] == "ingressgateway", "Knative's net-istio selects this label"

    check_gateway_auth(api, project, mode, release, isvc)
    state = project.state()
    shared = {key: urns for key, urns in owners(state).items() if len(urns) > 1}
    assert not shared, f"objects managed by more than one resource: {shared}"
    if versions.kserve_release(release).runtimes_chart is None:
        check_runtimes_wait_for_their_webhook(state)


def check_gateway_auth(api, project: Project, mode: str, release: str, isvc: dict) -> None:
    """What the API server holds for auth at the gateway, as applied by the real engine: the token
    check and the model's policy where the gateway runs, the NetworkPolicy, the discovery binding,
    and istiod's extra CA as the real istiod chart rendered it, equal to the cluster's own.
    Envoy enforcing them cannot run here (.github/workflows/e2e.yml does, on kind)."""
    from kubernetes import client

    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    rbac, net = client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    policies = net.read_namespaced_network_policy("model-predictor-ingress", "default")
    assert policies.spec.pod_selector.match_labels == {"serving.kserve.io/inferenceservice": "model"}
    outputs = project.outputs()
    if EXTRA_CONFIG.get((mode, release), {}).get("kserve-stack:auth", {}).get("type") == "none":
        assert isvc["metadata"]["annotations"]["kserve-stack/auth"] == "none"
        assert "anyone who reaches the gateway" in outputs["auth_warning"]
        assert not custom.list_cluster_custom_object("security.istio.io", "v1", "requestauthentications")["items"]
        return
    namespace = "kserve" if mode == "standard" else "istio-system"
    tokens = custom.get_namespaced_custom_object("security.istio.io", "v1", namespace, "requestauthentications",
                                                 "kserve-stack-tokens")
    assert [r["issuer"] for r in tokens["spec"]["jwtRules"]] == [outputs["auth"]["issuer"]]
    policy = custom.get_namespaced_custom_object("security.istio.io", "v1", namespace, "authorizationpolicies",
                                                 "kserve-stack.default.model")
    assert policy["spec"]["action"] == "ALLOW" and ("targetRefs" in policy["spec"]) == (mode == "standard")
    binding = rbac.read_cluster_role_binding(f"kserve-stack-{mode}-issuer-discovery")
    assert binding.role_ref.name == "system:service-account-issuer-discovery"
    assert [s.name for s in binding.subjects] == ["system:unauthenticated"]
    if "istio" in outputs["installed_layers"]:  # else the cluster's istiod, whose CA is its owner's
        extra = core.read_namespaced_config_map("pilot-jwks-extra-cacerts", "istio-system").data["extra.pem"]
        cluster = core.read_namespaced_config_map("kube-root-ca.crt", "kube-system").data["ca.crt"]
        assert extra == cluster and "BEGIN CERTIFICATE" in cluster
    assert outputs["token_command"].endswith("create token default -n default --audience kserve-stack")


def check_runtimes_wait_for_their_webhook(state: list[dict]) -> None:
    """In the one-chart releases every ClusterServingRuntime waits for the controller that
    serves the webhook validating it, and for that webhook's configuration."""
    def one(kind: str, name: str) -> str:
        """By type and name: a ServiceAccount and a Deployment share the controller's name."""
        [urn] = [r["urn"] for r in state if r["type"].endswith(f":{kind}") and r["urn"].endswith(name)]
        return urn

    controller = one("Deployment", ":kserve/kserve-controller-manager")
    webhook = one("ValidatingWebhookConfiguration", ":clusterservingruntime.serving.kserve.io")
    runtimes = [r for r in state if r["type"] == "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"]
    assert len(runtimes) >= 8
    for runtime in runtimes:
        assert {controller, webhook} <= set(runtime.get("dependencies") or []), runtime["urn"]


def kept_objects(api) -> dict[str, str]:
    """What an upgrade must never delete or recreate: every KServe CRD, the InferenceService, the
    model's claim and the runtime it uses, by UID."""
    from kubernetes import client

    ext, custom, core = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api), client.CoreV1Api(api)
    out = {f"CustomResourceDefinition {c.metadata.name}": c.metadata.uid
           for c in ext.list_custom_resource_definition().items if c.spec.group == "serving.kserve.io"}
    isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", "model")
    runtime = custom.get_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterservingruntimes",
                                               "kserve-sklearnserver")
    claim = core.read_namespaced_persistent_volume_claim("model-model-store", "default")
    out |= {"InferenceService default/model": isvc["metadata"]["uid"],
            "ClusterServingRuntime kserve-sklearnserver": runtime["metadata"]["uid"],
            "PersistentVolumeClaim default/model-model-store": claim.metadata.uid}
    return out


AUDITED = {"CustomResourceDefinition": "customresourcedefinitions", "InferenceService": "inferenceservices",
           "ClusterServingRuntime": "clusterservingruntimes", "PersistentVolumeClaim": "persistentvolumeclaims"}


def deletes(events: list[dict], kept: dict[str, str]) -> list[str]:
    """Audit-log DELETEs of any of `kept`."""
    names = {(AUDITED[key.split(" ")[0]], key.split(" ")[1].rsplit("/", 1)[-1]) for key in kept}
    return [f"{e['objectRef']['resource']} {e['objectRef'].get('name')}" for e in events
            if e.get("verb") == "delete" and e.get("stage") == "ResponseComplete"
            and (e["objectRef"].get("resource"), e["objectRef"].get("name")) in names]


def events_by_pulumi(events: list[dict]) -> list[dict]:
    """The audit events of the engine's completed writes."""
    return [e for e in events if e.get("verb") in ("create", "update", "patch", "delete")
            and e.get("stage") == "ResponseComplete" and "pulumi" in (e.get("userAgent") or "").lower()]


def writes_by_pulumi(events: list[dict]) -> list[str]:
    return [f"{e['verb']} {e['objectRef'].get('resource')} {e['objectRef'].get('name')}"
            for e in events_by_pulumi(events)]


def check_upgrade_in_place(project: Project, cluster: LocalApiServer, mode: str, release: str, to: str) -> None:
    """`versions.kserve` changed on the deployed stack, then `up`: nothing a user depends on is
    deleted or recreated (same UIDs, no DELETE in the audit log), no object the upgrade creates
    exists already (the 4.34 provider refuses those), and the next preview is clean."""
    api = cluster.client()
    before = kept_objects(api)
    project.configure(stack_config(mode, to))
    plan = project.preview("--json").json()
    replaced = [s["urn"].rsplit("::", 1)[-1] for s in plan.get("steps") or []
                if s.get("op") in ("replace", "create-replacement", "delete-replaced", "delete")
                and (s.get("oldState") or {}).get("type", "").rsplit(":", 1)[-1] in AUDITED]
    assert not replaced, f"the upgrade would delete or replace: {replaced}"
    seen = len(cluster.audit())
    up_without_adopting(project, api)
    after = kept_objects(api)
    assert after == before, f"deleted or recreated by the upgrade: {set(before.items()) ^ set(after.items())}"
    assert not deletes(cluster.audit()[seen:], before)
    assert project.outputs()["kserve_version"] == to
    check_installed(api, project, mode, to)
    project.preview("--expect-no-changes", "--diff")


def check_upgrade_refused(project: Project, cluster: LocalApiServer, mode: str, release: str) -> None:
    """An upgrade KServe cannot take in place fails `up` with the key, the value and what is
    allowed, and the API server saw no write from the engine."""
    to, allowed = REFUSED[(mode, release)]
    project.configure(stack_config(mode, to))
    seen = len(cluster.audit())
    assert writes_by_pulumi(cluster.audit()[:seen]), "the provider's writes are not told apart: the check below is void"
    run = project.pulumi("up", "--yes", "--skip-preview", "-s", project.stack, check=False)
    assert run.returncode != 0, "the upgrade was not refused"
    output = run.stdout + run.stderr
    assert f"kserve-stack:versions.kserve: '{to}' is not allowed" in output and allowed in output, output[-3000:]
    assert not writes_by_pulumi(cluster.audit()[seen:])
    project.configure(stack_config(mode, release))


@pytest.fixture
def cluster(k8s_bin):
    with LocalApiServer(k8s_bin, admission_webhooks=False, audit=True) as api:
        yield api


@pytest.mark.parametrize(("mode", "release"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_preview_up_no_change_destroy_and_up_again(mode, release, cluster, pulumi_engine, tmp_path):
    api = cluster.client()
    engine = Engine(pulumi_engine.toolchain, pulumi_engine.home, cluster.kubeconfig, state=tmp_path / "state")
    project = engine.project(tmp_path / "project", mode, stack_config(mode, release))
    before = inventory(api)

    up_without_adopting(project, api)
    assert (engine.state / ".pulumi" / "stacks" / "kserve-stack" / f"{mode}.json").exists(), \
        "PULUMI_BACKEND_URL outranks the backend Pulumi.yaml names"
    project.preview("--expect-no-changes", "--diff")
    outputs = project.outputs()
    assert outputs["mode"] == mode and outputs["kserve_version"] == release
    sep = "-" if mode == "standard" else "."
    assert outputs["predict_url"] == f"http://model{sep}default.example.com/v1/models/model:predict"
    check_installed(api, project, mode, release)
    if (mode, release) in UPGRADES:
        check_upgrade_in_place(project, cluster, mode, release, UPGRADES[(mode, release)])
    if (mode, release) in REFUSED:
        check_upgrade_refused(project, cluster, mode, release)

    project.destroy()
    left = {obj for obj in inventory(api) - before}
    assert not left, f"left behind after destroy: {sorted(left)}"

    if (mode, release) in REUSE:
        check_layers_the_cluster_runs(project, engine, cluster, mode, release, tmp_path)
        return
    up_without_adopting(project, api)
    check_installed(api, project, mode, UPGRADES.get((mode, release), release))


def platform_project(engine: Engine, work: Path, release: str, stack: str, **config) -> Project:
    shutil.copytree(PLATFORM, work)
    charts = {key: str(UPSTREAM_CHARTS / release / key) for key in ("certManager", "istioBase", "istiod")}
    charts["clusterCheck"] = str(PROJECT_DIR / CLUSTER_CHECK_CHART)
    meta = yaml.safe_load((work / "Pulumi.yaml").read_text())
    meta["runtime"]["options"] = {"virtualenv": str(engine.venv)}
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    project = Project(engine, work, stack)
    project.pulumi("stack", "init", stack, "--secrets-provider", "passphrase", timeout=120)
    project.configure({"platform:charts": charts, **{f"platform:{k}": v for k, v in config.items()}})
    return project


def uids(api, objects: list[dict]) -> dict[str, str | None]:
    """kind namespace/name → the UID the API server holds now (None: gone)."""
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api)
    out = {}
    for obj in objects:
        meta = obj["metadata"]
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        key = f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}"
        try:
            live = resource.get(name=meta["name"], namespace=meta.get("namespace")) if resource.namespaced \
                else resource.get(name=meta["name"])
            out[key] = live.metadata.uid
        except dynamic.exceptions.NotFoundError:
            out[key] = None
    return out


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
CERTIFICATES = {"layer": "certManager", **CRD, "name": "certificates.cert-manager.io"}
VERDICTS = [
    ({"kubernetes": {"minimum": "1.99"}}, r"kserve-stack:mode: 'standard': a floor; this cluster runs Kubernetes "
                                          r"v1\.\d+\.\d+, allowed: 1\.99 or newer"),
    ({"objects": [{**CERTIFICATES, "servedVersions": ["v1"], "conditions": ["Established"]}],
      "absent": [{"layer": "istio", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "istio-system",
                  "name": "istiod-canary", "ownerNamespace": "istio-system"}]}, None),
    ({"objects": [{**CERTIFICATES, "name": "certificates.example.com"}]}, r"kserve-stack:install\.certManager: false, "
     r"but the cluster has no CustomResourceDefinition certificates\.example\.com; .*install\.certManager: true"),
    ({"objects": [{**CERTIFICATES, "servedVersions": ["v2"]}]},
     r"CustomResourceDefinition certificates\.cert-manager\.io does not serve v2"),
    ({"objects": [{**CERTIFICATES, "minimumBundleVersion": "1.2.0"}]},
     r"is from Gateway API \(no bundle-version\); needed: 1\.2\.0 or newer"),
    ({"objects": [{"layer": "certManager", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "cert-manager",
                   "name": "cert-manager-webhook", "conditions": ["Available"]}]},
     r"Deployment cert-manager/cert-manager-webhook is not Available"),
    ({"objects": [{"layer": "certManager", "apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingWebhookConfiguration", "name": "cert-manager-webhook", "caBundle": True}]},
     r"ValidatingWebhookConfiguration cert-manager-webhook has no CA bundle yet"),
    ({"objects": [{"layer": "istio", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "istio-system",
                   "name": "istio", "data": {"mesh": "enabled"}}]},
     r"ConfigMap istio-system/istio has mesh: \".*\"; needed: \"enabled\""),
    ({"absent": [{**CERTIFICATES, "ownerNamespace": "cert-manager"}]},
     r"kserve-stack:install\.certManager: true \(the default\), but the cluster already has CustomResourceDefinition "
     r"certificates\.cert-manager\.io, which this stack did not install; set kserve-stack:install\.certManager: false"),
]
"""(values, the refusal expected or None) for the cluster-check chart, against a cluster holding
cert-manager's and Istio's objects, installed by another program (their namespaces not the
stack's), with no pod running: no Deployment Available, no CA bundle injected."""


def check_each_verdict_of_the_cluster_check(engine: Engine, tmp_path: Path, release: str) -> None:
    """The check's template, each branch, rendered by the provider's Helm against the API server."""
    project = platform_project(engine, tmp_path / "verdicts", release, "verdicts")
    config = yaml.safe_load((project.dir / "Pulumi.verdicts.yaml").read_text())["config"]
    for values, refusal in VERDICTS:
        floor = {"minimum": "1.20", "key": "mode", "why": "'standard': a floor", **values.get("kubernetes", {})}
        project.configure({**config, "platform:check": {"objects": [], "absent": [], **values, "kubernetes": floor}})
        run = project.pulumi("preview", "-s", "verdicts", check=False)
        output = run.stdout + run.stderr
        if refusal is None:
            assert run.returncode == 0, output[-3000:]
        else:
            assert run.returncode != 0 and re.search(refusal, output), (refusal, output[-3000:])


def waits_for(state: list[dict], urn: str, target: str) -> bool:
    """True when the engine recorded that `urn` waits for `target`: directly, through what it
    waits for, or through its parent (a chart's objects wait for what the chart waits for)."""
    by_urn = {r["urn"]: r for r in state}
    seen, todo = set(), [urn]
    while todo:
        current = by_urn.get(todo.pop())
        if current is None or current["urn"] in seen:
            continue
        seen.add(current["urn"])
        deps = [*(current.get("dependencies") or []), *([current["parent"]] if current.get("parent") else [])]
        if target in deps:
            return True
        todo += deps
    return False


def check_layers_the_cluster_runs(project: Project, engine: Engine, cluster: LocalApiServer, mode: str,
                                  release: str, tmp_path: Path) -> None:
    """`install: false` layers: refused before any write while the cluster lacks them; once
    another program installed them, reused (no object of theirs planned, none in the stack's
    state), every write after the cluster check, and left exactly as they were by `destroy`."""
    api = cluster.client()
    reuse = REUSE[(mode, release)]
    project.configure({**stack_config(mode, release), "kserve-stack:install": reuse})
    seen = len(cluster.audit())
    run = project.pulumi("up", "--yes", "--skip-preview", "-s", project.stack, check=False)
    output = run.stdout + run.stderr
    assert run.returncode != 0, "up passed on a cluster without cert-manager"
    assert ("kserve-stack:install.certManager: false, but the cluster has no CustomResourceDefinition "
            "certificates.cert-manager.io") in output and "install.certManager: true" in output, output[-3000:]
    assert not writes_by_pulumi(cluster.audit()[seen:]), "written before the cluster check refused"

    platform = platform_project(engine, tmp_path / "platform", release, "platform")
    platform.up()
    theirs = list(state_objects(platform.state()).values())
    before = uids(api, theirs)
    assert len(before) > 20 and all(before.values())
    check_each_verdict_of_the_cluster_check(engine, tmp_path, release)

    up_without_adopting(project, api)
    check_installed(api, project, mode, release, class_by_stack=reuse.get("istio", True))
    state = project.state()
    layers = {r["type"].rsplit(":", 1)[-1] for r in state if r["type"].startswith("kserve-stack:layers:")}
    assert "IstioMesh" not in layers and "ClusterCheck" in layers
    assert not [urn for urn in state_objects(state) if "cert-manager-chart" in urn], "cert-manager in the state"
    assert project.outputs()["installed_layers"] == ["gatewayApi"]
    [check] = [r["urn"] for r in state if r["type"] == "kubernetes:helm.sh/v4:Chart"
               and r["urn"].endswith("::cluster-check-chart")]
    unchecked = [urn for urn in state_objects(state) if not waits_for(state, urn, check)]
    assert not unchecked, f"written without waiting for the cluster check: {unchecked[:5]}"
    project.preview("--expect-no-changes", "--diff")

    seen = len(cluster.audit())
    project.destroy()
    assert uids(api, theirs) == before, "destroy changed the layers the cluster ran"
    ids = {(f"{o['kind'].lower()}s", o["metadata"].get("namespace"), o["metadata"]["name"]) for o in theirs}
    touched = [f"{e['verb']} {e['objectRef']['resource']} {e['objectRef']['name']}"
               for e in events_by_pulumi(cluster.audit()[seen:])
               if (e["objectRef"].get("resource"), e["objectRef"].get("namespace"), e["objectRef"].get("name")) in ids]
    assert not touched, f"the stack's destroy wrote objects the cluster ran: {touched}"
    platform.destroy()


MIRROR = "mirror.example:5000/kserve-stack"


def images_in(obj: dict) -> list[str]:
    """Every image reference an object holds: in pod templates and runtimes, and in the JSON
    settings of ConfigMaps (the images KServe's controller and Istio's injector put into the
    pods they make). Istio names images by a bare name under its `global.hub`."""
    found: list[str] = []

    def walk(node, key="", hub=None):
        if isinstance(node, dict):
            hub = ((node.get("global") or {}).get("hub") if isinstance(node.get("global"), dict) else None) or hub
            for k, v in node.items():
                walk(v, k, hub)
        elif isinstance(node, list):
            for v in node:
                walk(v, key, hub)
        elif isinstance(node, str):
            if key == "image" or key.endswith("Image"):
                found.append(f"{hub}/{node}" if hub and "/" not in node else node)
            elif node[:1] in "{[":
                try:
                    walk(json.loads(node), key, hub)
                except ValueError:
                    pass

    walk(obj.get("spec") or {})
    if obj.get("kind") == "ConfigMap":
        walk(obj.get("data") or {})
    return found


@pytest.mark.parametrize("mode", ["standard", "serverless"])
def test_real_charts_with_a_mirror_render_only_mirrored_images_and_pass_the_policies(
        mode, cluster, pulumi_engine, tmp_path):
    """`pulumi preview` of the real charts with `imageRegistry`: every image any object names is
    in the mirror (Istio's `auto` placeholder aside: istiod fills it from its mirrored hub), and
    the policy pack's rules pass on every object the charts render."""
    sys.path.insert(0, str(PROJECT_DIR / "policy"))
    import rules

    engine = Engine(pulumi_engine.toolchain, pulumi_engine.home, cluster.kubeconfig, state=tmp_path / "state")
    config = {**stack_config(mode, "v0.20.0"), "kserve-stack:imageRegistry": MIRROR}
    project = engine.project(tmp_path / "project", mode, config)
    states = planned_states(project.preview("--json").json())
    objects = planned_objects({"steps": [{"op": "create", "newState": s} for s in states]})
    assert len(objects) > 100, "the charts rendered"

    images = {image for obj in objects for image in images_in(obj)}
    outside = sorted(i for i in images if not i.startswith(f"{MIRROR}/") and i != rules.ISTIO_INJECTED)
    assert not outside, f"images outside {MIRROR}: {outside}"
    assert any("kserve-controller" in i for i in images) and any("kube-rbac-proxy" in i for i in images)
    if mode == "serverless":
        serving = next(o for o in objects if o["kind"] == "KnativeServing")
        assert serving["spec"]["registry"]["default"].startswith(f"{MIRROR}/knative/${{NAME}}:v")
        assert serving["spec"]["config"]["deployment"]["queue-sidecar-image"].startswith(f"{MIRROR}/knative/")

    problems = []
    for state in states:
        if not (state.get("custom") and state["type"].startswith("kubernetes:")):
            continue
        props, urn, typ = state.get("inputs") or {}, state["urn"], state["type"]
        problems += [f"{urn}: {p}" for p in rules.missing_resources(typ, urn, props) + rules.unpinned_images(
            typ, props) + rules.host_paths(typ, props) + rules.tls_secret_not_secret(typ, props, [])]
    mode_string = rules.deployment_mode_of((s["type"], s.get("inputs") or {}) for s in states)
    assert mode_string == versions.kserve_release("v0.20.0").deployment_mode(mode)
    for obj in objects:
        if obj["kind"] == "InferenceService":
            problems += rules.mode_annotation_problems(obj, mode_string)
    assert not problems, "\n".join(problems)
