"""The layer graph, captured from the real program through a recording mock monitor:
which layers exist per mode, and which resource waits for which."""

from __future__ import annotations

import pytest

from tools.graph import critical_path, is_gate, layer_edges

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
