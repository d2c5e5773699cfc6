"""The layer graph, captured from the real program through a recording mock monitor:
which layers exist per mode, and which resource waits for which."""

from __future__ import annotations

import pytest

from tools.graph import layer_edges

ALL_LAYERS = {"CertManager", "IstioMesh", "GatewayLayer", "KnativeLayer", "KServeRelease", "ModelService"}
LAYERS = {
    "standard": ALL_LAYERS - {"KnativeLayer"},
    "serverless": ALL_LAYERS - {"GatewayLayer"},
}
EDGES = {
    "standard": {
        ("IstioMesh", "GatewayLayer"),
        ("KServeRelease", "CertManager"),
        ("KServeRelease", "GatewayLayer"),
        ("KServeRelease", "IstioMesh"),
        ("ModelService", "KServeRelease"),
        ("ModelService", "IstioMesh"),
    },
    "serverless": {
        ("KnativeLayer", "IstioMesh"),
        ("KServeRelease", "CertManager"),
        ("KServeRelease", "KnativeLayer"),
        ("ModelService", "KServeRelease"),
        ("ModelService", "IstioMesh"),
    },
}


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_layers_present_per_mode(run_stack, stack):
    run = run_stack(stack)
    layers = {r.type.rsplit(":", 1)[-1] for r in run.regs.values() if r.type.startswith("kserve-stack:layers:")}
    assert layers == LAYERS[stack]


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_layer_edges_are_exactly_the_readiness_constraints(run_stack, stack):
    assert layer_edges(run_stack(stack).regs) == EDGES[stack]


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_independent_layers_start_in_parallel(run_stack, stack):
    run = run_stack(stack)
    starters = [run.named("cert-manager-namespace"), run.named("istio-namespace"), run.named("istio-base"),
                run.named("kserve-namespace"), run.named("kserve-crds")]
    if stack == "standard":
        starters.append(run.named("gateway-api-crds"))
    for reg in starters:
        foreign = [d for d in reg.dependencies if run.regs[d].layer != reg.layer]
        assert not foreign, f"{reg.name} waits for another layer: {foreign}"


def test_standard_resource_edges(run_stack):
    run = run_stack("standard")
    w = run.waits_for
    istiod, base = run.named("istio-istiod"), run.named("istio-base")
    assert w(istiod, base) and w(istiod, run.named("gateway-api-crds")) and w(istiod, run.named("gateway-api-class"))
    assert w(run.named("gateway-api-class"), run.named("gateway-api-crds"))
    controller = run.named("kserve-controller")
    assert w(controller, run.named("kserve-crds"))
    assert w(controller, run.named("cert-manager-chart")) and w(controller, run.named("cert-manager-selfsigned-issuer"))
    assert w(controller, run.named("gateway-api-crds"))
    assert not w(controller, istiod), "the controller does not need istiod in standard mode"
    assert w(run.named("kserve-runtimes"), controller)
    gateway = run.named("kserve-gateway")
    assert w(gateway, istiod) and w(gateway, run.named("kserve-gateway-certificate"))
    assert w(run.named("kserve-gateway-certificate"), run.named("cert-manager-selfsigned-issuer"))
    assert w(run.named("cert-manager-selfsigned-issuer"), run.named("cert-manager-chart"))
    isvc = run.named("model-isvc")
    for dep in ("model-copy", "kserve-controller", "kserve-runtimes", "kserve-gateway"):
        assert w(isvc, run.named(dep)), dep
    assert w(run.named("model-copy"), run.named("model-claim")) and w(run.named("model-copy"), run.named("model-files"))
    assert w(run.named("model-smoke-test"), isvc)


def test_serverless_resource_edges(run_stack):
    run = run_stack("serverless")
    w = run.waits_for
    serving = run.named("knative-serving")
    assert w(serving, run.named("knative-operator")) and w(serving, run.named("istio-ingressgateway"))
    assert not w(run.named("istio-istiod"), run.named("cert-manager-chart"))
    assert w(run.named("kserve-controller"), serving)
    assert w(run.named("model-isvc"), run.named("kserve-runtimes"))
    assert w(run.named("model-isvc"), run.named("istio-ingressgateway"))


def test_critical_path_ends_at_the_model(run_stack):
    from tools.graph import critical_path

    run = run_stack("standard")
    path = [run.regs[u].name for u in critical_path(run.regs)]
    assert path[-2:] == ["model-isvc", "model-smoke-test"]
    for earlier, later in zip(path, path[1:], strict=False):
        assert run.waits_for(run.named(later), run.named(earlier)), (earlier, later)
