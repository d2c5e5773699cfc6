"""The layer graph, captured from the real program through a recording mock monitor:
which layers exist per mode, and which resource waits for which."""

from __future__ import annotations

import pytest

from tools.graph import critical_path, is_gate, layer_edges

ALL_LAYERS = {"ClusterCheck", "CertManager", "IstioMesh", "GatewayLayer", "KnativeLayer", "KServeRelease",
              "GatewayAuth", "ModelService"}
LAYERS = {
    "standard": ALL_LAYERS - {"KnativeLayer"},
    "serverless": ALL_LAYERS - {"GatewayLayer"},
}
CHECKED = {(layer, "ClusterCheck") for layer in ALL_LAYERS - {"ClusterCheck"}}
"""Every layer waits for the cluster check before its first write."""
EDGES = {
    "standard": {
        ("IstioMesh", "GatewayLayer"),
        ("KServeRelease", "CertManager"),
        ("KServeRelease", "GatewayLayer"),
        ("KServeRelease", "IstioMesh"),
        ("ModelService", "KServeRelease"),
        ("ModelService", "IstioMesh"),
        ("GatewayAuth", "KServeRelease"),
        ("GatewayAuth", "IstioMesh"),
        ("ModelService", "GatewayAuth"),
    },
    "serverless": {
        ("KnativeLayer", "IstioMesh"),
        ("KServeRelease", "CertManager"),
        ("KServeRelease", "KnativeLayer"),
        ("ModelService", "KServeRelease"),
        ("ModelService", "IstioMesh"),
        ("GatewayAuth", "KServeRelease"),
        ("GatewayAuth", "IstioMesh"),
        ("ModelService", "GatewayAuth"),
    },
}


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_layers_present_per_mode(run_stack, stack):
    run = run_stack(stack)
    layers = {r.type.rsplit(":", 1)[-1] for r in run.regs.values() if r.type.startswith("kserve-stack:layers:")}
    assert layers == LAYERS[stack]


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_layer_edges_are_exactly_the_readiness_constraints(run_stack, stack):
    assert layer_edges(run_stack(stack).regs) == EDGES[stack] | {e for e in CHECKED if e[0] in LAYERS[stack]}


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_nothing_is_written_before_the_cluster_check(run_stack, stack):
    """Each object waits for the check directly, or through what it waits for, or through its chart."""
    run = run_stack(stack)
    check = run.named("cluster-check-chart")
    writes = [r for r in run.regs.values() if (r.custom or r.type.startswith("kubernetes:")) and not r.read
              and r.layer not in ("ClusterCheck", None)]
    assert len(writes) > 10
    assert not [r.name for r in writes if not reaches(run, r, check)]


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_independent_layers_start_in_parallel(run_stack, stack):
    run = run_stack(stack)
    starters = [run.named("cert-manager-namespace"), run.named("istio-namespace"), run.named("istio-base"),
                run.named("kserve-namespace"), run.named("kserve-crds")]
    if stack == "standard":
        starters.append(run.named("gateway-api-crds"))
    for reg in starters:
        foreign = [d for d in reg.dependencies if run.regs[d].layer not in (reg.layer, "ClusterCheck")]
        assert not foreign, f"{reg.name} waits for another layer: {foreign}"


def test_standard_resource_edges(run_stack):
    run = run_stack("standard")
    w = run.waits_for
    istiod, base = run.named("istio-istiod"), run.named("istio-base")
    assert w(istiod, base) and w(istiod, run.named("gateway-api-crds")) and w(istiod, run.named("gateway-api-class"))
    assert w(run.named("gateway-api-class"), run.named("gateway-api-crds"))
    controller, issuer = run.named("kserve-controller"), run.named("cert-manager-selfsigned-issuer")
    assert w(controller, run.named("kserve-crds"))
    assert w(controller, run.named("cert-manager-chart"))
    assert not w(controller, issuer), "the controller chart brings its own Issuer"
    assert w(controller, run.named("gateway-api-crds"))
    assert not w(controller, istiod), "the controller does not need istiod in standard mode"
    assert w(run.named("kserve-runtimes"), controller)
    gateway, certificate = run.named("kserve-gateway"), run.named("kserve-gateway-certificate")
    assert w(gateway, istiod) and w(gateway, run.named("gateway-api-crds"))
    assert not w(gateway, certificate), "Istio accepts a Gateway before its TLS secret exists"
    assert w(certificate, run.named("cert-manager-chart"))
    assert not w(certificate, issuer), "cert-manager issues it once the issuer is Ready"
    assert w(issuer, run.named("cert-manager-chart"))
    kserve = [r for r in run.regs.values() if r.layer == "KServeRelease" and r.name != "kserve"]
    assert len(kserve) >= 5 and not [r.name for r in kserve if w(r, issuer)]
    isvc = run.named("model-isvc")
    for dep in ("model-copy", "kserve-controller", "kserve-runtimes", "kserve-gateway"):
        assert w(isvc, run.named(dep)), dep
    assert w(run.named("model-copy"), run.named("model-claim")) and w(run.named("model-copy"), run.named("model-files"))
    assert w(run.named("model-smoke-test"), isvc)


def test_serverless_resource_edges(run_stack):
    run = run_stack("serverless")
    w = run.waits_for
    serving = run.named("knative-serving")
    assert w(serving, run.named("knative-operator")) and w(serving, run.named("istio-istiod"))
    assert not w(serving, run.named("istio-ingressgateway")), "net-istio does not need the gateway's pods"
    assert not w(serving, run.named("istio-ingress-class"))
    assert not w(run.named("istio-istiod"), run.named("cert-manager-chart"))
    assert w(run.named("kserve-controller"), serving)
    assert w(run.named("kserve-controller"), run.named("cert-manager-chart"))
    assert not w(run.named("kserve-controller"), run.named("cert-manager-selfsigned-issuer"))
    assert w(run.named("model-isvc"), run.named("kserve-runtimes"))
    assert w(run.named("model-isvc"), run.named("istio-ingressgateway"))


def reaches(run, later, earlier) -> bool:
    """True when `later` waits for `earlier`, directly or through other resources."""
    seen, todo = set(), [later.urn]
    while todo:
        reg = run.regs[todo.pop()]
        if run.waits_for(reg, earlier):
            return True
        for dep in reg.dependencies - seen:
            seen.add(dep)
            todo += [u for u in run.regs if u == dep or run.regs[u].parent == dep]
    return False


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_critical_path_is_a_chain_of_gates_ending_at_the_model(run_stack, stack):
    run = run_stack(stack)
    path = [run.regs[u] for u in critical_path(run.regs)]
    assert path[-1].name == "model-smoke-test"
    assert path[-2].name in ("model-isvc", "model-serving"), "the two model waits run side by side"
    assert all(is_gate(r) for r in path), [r.name for r in path if not is_gate(r)]
    for earlier, later in zip(path, path[1:], strict=False):
        assert reaches(run, later, earlier), (earlier.name, later.name)


def test_standard_critical_path_has_at_most_five_gates(run_stack):
    path = [run_stack("standard").regs[u].name for u in critical_path(run_stack("standard").regs)]
    assert len(path) <= 5, path


def test_readiness_skip_leaves_no_gate(run_stack):
    run = run_stack("standard", readiness="skip")
    assert critical_path(run.regs) == []


def test_istiod_keeps_the_webhook_fields_it_owns():
    """istiod writes failurePolicy and caBundle of its validating webhooks (an Update); the stack
    applies neither, so a refresh shows no diff and a later apply meets no conflict."""
    from components.istio_mesh import _leave_webhook_to_istiod

    rendered = {"metadata": {"name": "istiod-default-validator"}, "webhooks": [{
        "name": "validation.istio.io", "failurePolicy": "Ignore", "sideEffects": "None",
        "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}, "caBundle": ""}}]}
    patched = _leave_webhook_to_istiod("ValidatingWebhookConfiguration", rendered)
    assert patched["webhooks"] == [{"name": "validation.istio.io", "sideEffects": "None",
                                    "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}}}]
    assert rendered["webhooks"][0]["failurePolicy"] == "Ignore", "the rendered object is left as it was"
    assert _leave_webhook_to_istiod("MutatingWebhookConfiguration", rendered) is None


def test_the_previous_outputs_are_read_again_while_the_backend_writes_its_checkpoint(monkeypatch):
    """The file backend may be mid-write when the program starts (seen as `failed to load
    checkpoint: EOF` under the real engine); a later read finds the checkpoint whole."""
    import pulumi

    import stack

    calls = []

    class Result:
        value = {"outputs": {"kserve_version": "v0.20.0"}}

    def invoke(tok, props):
        calls.append((tok, props["name"]))
        if len(calls) < 3:
            raise Exception("invocation of pulumi:pulumi:readStackOutputs returned an error: EOF")
        return Result()

    monkeypatch.setattr(pulumi.runtime, "invoke", invoke)
    monkeypatch.setattr(pulumi, "get_organization", lambda: "organization")
    monkeypatch.setattr(pulumi, "get_project", lambda: "kserve-stack")
    monkeypatch.setattr(pulumi, "get_stack", lambda: "standard")
    assert stack.deployed_outputs(pause=0) == {"kserve_version": "v0.20.0"}
    assert calls == [("pulumi:pulumi:readStackOutputs", "organization/kserve-stack/standard")] * 3

    calls.clear()
    def unreachable(tok, props):
        calls.append(tok)
        raise Exception("backend unreachable")

    monkeypatch.setattr(pulumi.runtime, "invoke", unreachable)
    with pytest.raises(RuntimeError, match="cannot read the outputs of organization/kserve-stack/standard"):
        stack.deployed_outputs(attempts=2, pause=0)
    assert len(calls) == 2


# Issue 16: small clusters (profile), mirrors and pod affinity in serverless.

SMALL = {"cpu": "5m", "memory": "32Mi"}


def _istio_args(mode="standard", **kw):
    from components.istio_mesh import IstioMeshArgs
    from settings.versions import DEFAULT_CHARTS

    return IstioMeshArgs(mode=mode, version="1.27.1", charts=DEFAULT_CHARTS, waits=True, **kw)


def _knative_args(**kw):
    from components.knative_layer import KnativeLayerArgs
    from settings.versions import DEFAULT_CHARTS

    return KnativeLayerArgs(version="v1.21.1", serving_version="1.21.1", chart=DEFAULT_CHARTS["knativeOperator"],
                            domain="example.com", waits=True, **kw)


def test_small_profile_lowers_the_istio_requests_and_default_keeps_the_charts():
    """istiod asks 500m/2Gi by default; small asks what KServe's CI gives istiod and the gateway
    (requests only: the charts' limits stay)."""
    from components.istio_mesh import gateway_values, istiod_values

    assert istiod_values(_istio_args()) == {} and gateway_values(_istio_args("serverless")) == {}
    assert istiod_values(_istio_args(profile="small")) == {
        "resources": {"requests": SMALL}, "global": {"proxy": {"resources": {"requests": SMALL}}}}
    assert istiod_values(_istio_args(profile="small", image_registry="mirror.local:5000")) == {
        "resources": {"requests": SMALL},
        "global": {"hub": "mirror.local:5000/istio", "proxy": {"resources": {"requests": SMALL}}}}
    assert gateway_values(_istio_args("serverless", profile="small")) == {"resources": {"requests": SMALL}}


def _real_values(chart_dir):
    """values.yaml with Istio's defaults wrapper taken off (users set those keys at the top)."""
    import yaml

    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    return {**values.pop("_internal_defaults_do_not_set", {}), **values}


def _at(values, path):
    for part in path.split("."):
        values = values[part]
    return values


@pytest.mark.parametrize(("chart", "path", "template", "default"), [
    ("istiod", "resources.requests", "templates/deployment.yaml", {"cpu": "500m", "memory": "2048Mi"}),
    ("istiod", "global.proxy.resources.requests", "files/kube-gateway.yaml", {"cpu": "100m", "memory": "128Mi"}),
    ("istioGateway", "resources.requests", "templates/deployment.yaml", {"cpu": "100m", "memory": "128Mi"}),
])
def test_small_profile_values_are_what_the_real_charts_read(chart, path, template, default):
    """Each value small sets is a key of the released chart, read by the template that sizes the pod
    (kube-gateway.yaml: the Deployment istiod makes for a Gateway API Gateway)."""
    from tests.conftest import SHARED_DIR

    chart_dir = SHARED_DIR / "upstream-charts" / "v0.20.0" / chart
    assert _at(_real_values(chart_dir), path) == default
    assert f".Values.{path.rsplit('.', 1)[0]}" in (chart_dir / template).read_text()


def _knative_serving(spec):
    return {"apiVersion": "operator.knative.dev/v1beta1", "kind": "KnativeServing",
            "metadata": {"name": "knative-serving", "namespace": "knative-serving"}, "spec": spec}


def test_small_profile_lowers_every_knative_workload_request():
    """KServe's own KnativeServing gives every Knative workload 5m/32Mi (its limits are left to the
    operator's manifests, which it merges per resource); default leaves Knative's own."""
    from components.knative_layer import knative_serving_spec
    from tests.conftest import UPSTREAM_CRDS
    from tests.schema.crd_schemas import CrdSchemas

    assert "workloads" not in knative_serving_spec(_knative_args())
    spec = knative_serving_spec(_knative_args(profile="small"))
    by_name = {w["name"]: w["resources"] for w in spec["workloads"]}
    assert by_name == {
        name: [{"container": container, "requests": SMALL}] for name, container in (
            ("activator", "activator"), ("autoscaler", "autoscaler"), ("autoscaler-hpa", "autoscaler-hpa"),
            ("controller", "controller"), ("webhook", "webhook"),
            ("net-istio-controller", "controller"), ("net-istio-webhook", "webhook"))}
    assert CrdSchemas(UPSTREAM_CRDS).errors(_knative_serving(spec)) == []


@pytest.mark.parametrize(("registry", "host"), [
    ("registry.local:5000/mirror", "registry.local:5000"),
    ("mirror.local", "mirror.local"),
    ("localhost:5000/upstream", "localhost:5000"),
    ("docker.io/corp", "index.docker.io"),
    ("corp", "index.docker.io"),
])
def test_registry_host_is_what_knative_compares(registry, host):
    from components.knative_layer import registry_host

    assert registry_host(registry) == host


def test_knative_skips_tag_resolution_for_kserves_registries_and_the_mirror(run_stack):
    """Knative resolves tags to digests with its own client, which a private mirror refuses; the
    value replaces Knative's default, so that stays in it."""
    from components.knative_layer import skipped_registries

    upstream = "kind.local,ko.local,dev.local,nvcr.io,index.docker.io"
    deployment = run_stack("serverless").named("knative-serving").inputs["spec"]["config"]["deployment"]
    assert deployment == {"registries-skipping-tag-resolving": upstream}
    mirrored = run_stack("serverless", imageRegistry="registry.local:5000/mirror")
    deployment = mirrored.named("knative-serving").inputs["spec"]["config"]["deployment"]
    assert deployment["registries-skipping-tag-resolving"] == f"{upstream},registry.local:5000"
    assert deployment["queue-sidecar-image"] == "registry.local:5000/mirror/knative/queue:v1.21.1"
    assert skipped_registries("docker.io/corp") == upstream.split(","), "Docker Hub is in it already"


@pytest.mark.parametrize("overrides", [{}, {"imageRegistry": "mirror.local:5000"}])
def test_knative_allows_pod_affinity_in_a_service(run_stack, overrides):
    """The predictor's pod affinity (readers of a ReadWriteOnce claim on one node) reaches the Knative
    Service; its webhook refuses it unless config-features enables it (knative/serving
    config/core/configmaps/features.yaml)."""
    from components.knative_layer import knative_serving_spec

    features = run_stack("serverless", **overrides).named("knative-serving").inputs["spec"]["config"]["features"]
    assert features == {"kubernetes.podspec-affinity": "enabled", "kubernetes.podspec-nodeselector": "enabled",
                        "kubernetes.podspec-tolerations": "enabled"}
    assert knative_serving_spec(_knative_args(profile="small"))["config"]["features"] == features


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_profile_reaches_the_layers(run_stack, stack):
    small = {"requests": {"cpu": "5m", "memory": "32Mi"}}
    run = run_stack(stack, profile="small")
    assert run.named("istio-istiod").inputs["values"]["resources"] == small
    if stack == "serverless":
        assert run.named("istio-ingressgateway").inputs["values"] == {"resources": small}
        assert len(run.named("knative-serving").inputs["spec"]["workloads"]) == 7
