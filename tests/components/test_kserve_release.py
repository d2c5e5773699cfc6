"""Chart names, versions and values follow the chosen KServe release (v0.15 … v0.20)."""

from __future__ import annotations

import pytest

CASES = {
    # version: (controller chart, runtimes chart or None, standard mode string, serverless mode string)
    "v0.15.2": ("kserve", None, "RawDeployment", "Serverless"),
    "v0.16.0": ("kserve", None, "Standard", "Knative"),
    "v0.20.0": ("kserve-resources", "kserve-runtime-configs", "Standard", "Knative"),
}


def versions_for(kserve: str, run_stack) -> dict:
    from settings.versions import default_versions

    return default_versions(kserve)


@pytest.mark.parametrize("stack", ["standard", "serverless"])
@pytest.mark.parametrize("kserve", list(CASES))
def test_charts_and_mode_follow_the_version(run_stack, stack, kserve):
    controller_chart, runtimes_chart, standard_mode, serverless_mode = CASES[kserve]
    mode_string = standard_mode if stack == "standard" else serverless_mode
    run = run_stack(stack, versions=versions_for(kserve, run_stack))
    crds = run.named("kserve-crds")
    assert crds.inputs["chart"] == "oci://ghcr.io/kserve/charts/kserve-crd" and crds.inputs["version"] == kserve
    controller = run.named("kserve-controller")
    assert controller.inputs["chart"] == f"oci://ghcr.io/kserve/charts/{controller_chart}"
    assert controller.inputs["version"] == kserve
    ctl = controller.inputs["values"]["kserve"]["controller"]
    assert ctl["deploymentMode"] == mode_string
    runtimes = [r for r in run.of_type("helm.sh/v4:Chart") if r.name == "kserve-runtimes"]
    if runtimes_chart:
        [chart] = runtimes
        assert chart.inputs["chart"] == f"oci://ghcr.io/kserve/charts/{runtimes_chart}"
        assert chart.inputs["values"]["kserve"]["servingruntime"]["enabled"] is True
    else:
        assert not runtimes
    isvc = run.one("InferenceService")
    assert isvc.inputs["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode_string


def test_standard_values_use_the_gateway_api(run_stack):
    ctl = run_stack("standard").named("kserve-controller").inputs["values"]["kserve"]["controller"]
    assert ctl["gateway"]["domain"] == "example.com"
    assert ctl["gateway"]["ingressGateway"] == {
        "enableGatewayApi": True, "kserveGateway": "kserve/kserve-ingress-gateway",
        "createGateway": False, "className": "istio",
    }


def test_serverless_values_do_not_use_the_gateway_api(run_stack):
    ctl = run_stack("serverless").named("kserve-controller").inputs["values"]["kserve"]["controller"]
    assert ctl["gateway"]["ingressGateway"] == {"enableGatewayApi": False}
    assert not run_stack("serverless").of_type("gateway.networking.k8s.io/v1:Gateway")


def test_gateway_listeners_and_tls(run_stack):
    run = run_stack("standard", domain="models.corp.example", gateway={"serviceType": "NodePort"})
    gateway = run.one("gateway.networking.k8s.io/v1:Gateway")
    assert gateway.inputs["metadata"]["name"] == "kserve-ingress-gateway"
    assert gateway.inputs["metadata"]["namespace"] == "kserve"
    assert gateway.inputs["metadata"]["annotations"]["networking.istio.io/service-type"] == "NodePort"
    spec = gateway.inputs["spec"]
    assert spec["gatewayClassName"] == "istio"
    assert {(x["name"], x["protocol"], int(x["port"])) for x in spec["listeners"]} == {
        ("http", "HTTP", 80), ("https", "HTTPS", 443)}
    https = next(x for x in spec["listeners"] if x["name"] == "https")
    cert = run.one("cert-manager.io/v1:Certificate")
    assert https["tls"]["certificateRefs"][0]["name"] == cert.inputs["spec"]["secretName"]
    assert cert.inputs["spec"]["dnsNames"] == ["models.corp.example", "*.models.corp.example"]
    assert cert.inputs["spec"]["issuerRef"]["name"] == "kserve-stack-selfsigned"


def test_named_tls_issuer_replaces_the_self_signed_one(run_stack):
    run = run_stack("standard", gateway={"tlsIssuer": {"kind": "Issuer", "name": "corp-ca"}})
    ref = run.one("cert-manager.io/v1:Certificate").inputs["spec"]["issuerRef"]
    assert ref == {"group": "cert-manager.io", "kind": "Issuer", "name": "corp-ca"}


def test_local_chart_sources_override_the_registry(run_stack):
    run = run_stack("standard", sources={"kserve": {"path": "charts/kserve-resources"},
                                         "istiod": {"repo": "https://mirror.local/istio"}})
    controller = run.named("kserve-controller")
    assert controller.inputs["chart"] == "charts/kserve-resources" and "version" not in controller.inputs
    assert run.named("istio-istiod").inputs["repositoryOpts"] == {"repo": "https://mirror.local/istio"}


def test_webhook_gate_names_kserve_webhooks():
    from components.kserve_release import WEBHOOKS

    assert "inferenceservice.serving.kserve.io" in WEBHOOKS


def test_an_upgrade_past_the_chart_split_keeps_the_local_model_crds_under_their_old_identity():
    """v0.16's `kserve-crd` chart shipped the LocalModel CRDs, v0.17+'s does not: each is read from
    the cluster and applied as it is, aliased to the chart child it was, so the upgrade changes
    nothing about it (the engine test checks its UID survives)."""
    from settings.config import parse
    from settings.upgrades import LOCAL_MODEL_CRDS, Deployed
    from stack import build
    from tests.conftest import PROJECT_DIR, gateway_api_objects, stack_raw
    from tools.graph import capture

    raw = {**stack_raw("standard"), "versions": {"kserve": "v0.20.0"}}
    cfg = parse(raw, PROJECT_DIR, Deployed(mode="standard", kserve="v0.16.0"))
    regs = capture(lambda: build(cfg, load_manifest=lambda _: gateway_api_objects())).registrations.values()
    chart = next(r for r in regs if r.name == "kserve-crds")
    for crd in LOCAL_MODEL_CRDS:
        [read] = [r for r in regs if r.read and r.name == f"kserve-kept-{crd}-live"]
        [kept] = [r for r in regs if not r.read and r.name == f"kserve-kept-{crd}"]
        assert read.type == kept.type == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
        assert kept.aliases == [(f"kserve-crds:{crd}", chart.urn)]

    fresh = parse(raw, PROJECT_DIR, Deployed())
    regs = capture(lambda: build(fresh, load_manifest=lambda _: gateway_api_objects())).registrations.values()
    assert not [r for r in regs if "kept" in r.name], "a new stack keeps nothing"
