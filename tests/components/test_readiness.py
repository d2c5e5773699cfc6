"""Readiness gates on chart-rendered objects, and their switch for render-and-apply environments."""

import pulumi
import pytest

from components.readiness import CA_BUNDLE, SKIP_AWAIT, WAIT_FOR, annotate_object, await_annotations, chart_transform


def transformed(transform, type_, name, annotations=None):
    args = pulumi.ResourceTransformArgs(
        custom=True, type_=type_, name=f"chart:{name}",
        props={"metadata": {"name": name, "annotations": annotations or {}}}, opts=pulumi.ResourceOptions(),
    )
    result = transform(args)
    return None if result is None else result.props["metadata"]["annotations"]


def test_crds_wait_for_established_and_named_webhooks_for_ca_bundle():
    t = chart_transform(True, ["cert-manager-webhook"])
    crd = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    assert transformed(t, crd, "certificates.cert-manager.io") == {WAIT_FOR: "condition=Established"}
    vwc = "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration"
    assert transformed(t, vwc, "cert-manager-webhook", {"keep": "me"}) == {"keep": "me", WAIT_FOR: CA_BUNDLE}
    assert transformed(t, vwc, "istio-validator") is None, "only the webhooks named wait"
    assert transformed(t, "kubernetes:apps/v1:Deployment", "cert-manager") is None


def test_skip_turns_every_await_off():
    t = chart_transform(False, ["cert-manager-webhook"])
    assert transformed(t, "kubernetes:apps/v1:Deployment", "x") == {SKIP_AWAIT: "true"}
    assert annotate_object({"kind": "CustomResourceDefinition", "metadata": {"name": "a"}}, False)[
        "metadata"]["annotations"] == {SKIP_AWAIT: "true"}
    assert await_annotations(False, "condition=Ready", 30) == {SKIP_AWAIT: "true"}


def test_annotate_object_does_not_mutate_its_input():
    obj = {"kind": "CustomResourceDefinition", "metadata": {"name": "a"}}
    out = annotate_object(obj, True)
    assert out["metadata"]["annotations"] == {WAIT_FOR: "condition=Established"}
    assert obj == {"kind": "CustomResourceDefinition", "metadata": {"name": "a"}}


def test_gateway_api_crds_carry_the_established_gate(run_stack):
    run = run_stack("standard")
    objs = run.named("gateway-api-crds").inputs["objs"]
    assert objs and all(o["metadata"]["annotations"][WAIT_FOR] == "condition=Established" for o in objs)


def test_standard_gateway_gate_does_not_need_a_load_balancer(run_stack):
    gateway = run_stack("standard").one("gateway.networking.k8s.io/v1:Gateway").inputs
    assert gateway["metadata"]["annotations"][WAIT_FOR] == "condition=Accepted"
    assert gateway["spec"]["infrastructure"]["annotations"], "set, so istiod copies no Pulumi annotation"


def test_serverless_gateway_service_gets_its_type_and_waits_for_no_address():
    from components.istio_mesh import gateway_service_type

    t = gateway_service_type("NodePort")
    args = pulumi.ResourceTransformArgs(
        custom=True, type_="kubernetes:core/v1:Service", name="istio-ingressgateway",
        props={"metadata": {"name": "istio-ingressgateway", "annotations": {"a": "b"}},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        opts=pulumi.ResourceOptions(),
    )
    props = t(args).props
    assert props["spec"] == {"type": "NodePort", "ports": [{"port": 80}]}
    assert props["metadata"]["annotations"] == {"a": "b", SKIP_AWAIT: "true"}
    deployment = pulumi.ResourceTransformArgs(custom=True, type_="kubernetes:apps/v1:Deployment", name="d",
                                              props={"metadata": {"name": "d"}}, opts=pulumi.ResourceOptions())
    assert t(deployment) is None


@pytest.mark.parametrize("readiness", ["wait", "skip"])
@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_no_object_carries_an_empty_annotation_map(run_stack, stack, readiness):
    """The provider keeps no empty `annotations: {}` in its state, so one in the program would be
    a diff in every `pulumi preview` (the engine's no-change preview with waits on found one)."""
    empty = [f"{o['kind']} {o['metadata'].get('name')}" for o in run_stack(stack, readiness=readiness).objects()
             if "annotations" in (o.get("metadata") or {}) and not o["metadata"]["annotations"]]
    assert not empty
