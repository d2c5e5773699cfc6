"""The `curl` output's port-forward runs on the stack's cluster (`kubernetes:context`, as the
provider uses it), not on whichever context kubectl has current."""

from __future__ import annotations

import shlex

import pytest

from components.model_service import curl_command
from settings import config
from stack import build
from tests.conftest import PROJECT_DIR, gateway_api_objects, stack_raw
from tools.graph import capture

CONTEXT_ENV = "PULUMI_CONFIG_KUBERNETES_CONTEXT"
"""Where the Pulumi SDK finds `kubernetes:context` when no engine set the config."""
HOST = "model-default.example.com"
PREDICT_URL = "http://model-default.example.com/v1/models/model:predict"
GATEWAY = ("kserve", "kserve-ingress-gateway-istio")


@pytest.fixture
def cfg() -> config.StackConfig:
    return config.parse(stack_raw("standard"), PROJECT_DIR)


def port_forward(curl: str) -> list[str]:
    return shlex.split(curl.split(" & ", 1)[0])


def test_port_forward_on_the_stack_context(cfg):
    curl = curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, None, "kind-kserve stack")
    assert port_forward(curl) == ["kubectl", "--context", "kind-kserve stack", "-n", "kserve", "port-forward",
                                  "svc/kserve-ingress-gateway-istio", "8080:80"]
    assert "-H 'Host: model-default.example.com'" in curl and "http://127.0.0.1:8080/v1/models/model:predict" in curl


def test_without_a_context_kubectl_keeps_its_own(cfg):
    assert port_forward(curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, None, None)) == [
        "kubectl", "-n", "kserve", "port-forward", "svc/kserve-ingress-gateway-istio", "8080:80"]


def test_a_load_balancer_address_needs_no_kubectl(cfg):
    curl = curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, "192.0.2.10", "kind-kserve")
    assert "kubectl" not in curl and curl.endswith(" http://192.0.2.10/v1/models/model:predict")


def test_program_output_carries_the_context(monkeypatch):
    """Through the whole program (no gateway address when readiness is skipped); not cached
    with the shared captures, whose config has no context."""
    monkeypatch.setenv(CONTEXT_ENV, "kind-kserve")
    cfg = config.parse({**stack_raw("serverless"), "readiness": "skip"}, PROJECT_DIR)
    outputs = capture(lambda: build(cfg, load_manifest=lambda _: gateway_api_objects()), stack="serverless").outputs
    assert port_forward(outputs["curl"])[:6] == ["kubectl", "--context", "kind-kserve", "-n", "istio-system",
                                                 "port-forward"]


@pytest.mark.parametrize(("stack", "service"), [("standard", "kserve/kserve-ingress-gateway-istio"),
                                                ("serverless", "istio-system/istio-ingressgateway")])
def test_gateway_service_output_is_what_tools_predict_port_forwards_to(run_stack, stack, service):
    """tools.predict reads it; its own per-mode table only serves stacks deployed before it."""
    from tools.predict import GATEWAY_SERVICES

    assert run_stack(stack).outputs["gateway_service"] == service == GATEWAY_SERVICES[stack]
