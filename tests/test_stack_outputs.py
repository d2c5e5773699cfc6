"""The `curl` output's port-forward runs on the stack's cluster (`kubernetes:context`, as the
provider uses it), not on whichever context kubectl has current."""

from __future__ import annotations

import shlex

import pytest

from components.model_service import curl_command
from settings import config
from settings.config import AuthConfig
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
    curl = curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, None, "kind-kserve stack", cfg.auth)
    assert port_forward(curl) == ["kubectl", "--context", "kind-kserve stack", "-n", "kserve", "port-forward",
                                  "svc/kserve-ingress-gateway-istio", "8080:80"]
    assert "-H 'Host: model-default.example.com'" in curl and "http://127.0.0.1:8080/v1/models/model:predict" in curl


def test_without_a_context_kubectl_keeps_its_own(cfg):
    assert port_forward(curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, None, None, cfg.auth)) == [
        "kubectl", "-n", "kserve", "port-forward", "svc/kserve-ingress-gateway-istio", "8080:80"]


def test_a_load_balancer_address_needs_no_port_forward(cfg):
    curl = curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, "192.0.2.10", "kind-kserve", cfg.auth)
    assert "port-forward" not in curl and curl.endswith(" http://192.0.2.10/v1/models/model:predict")


def test_curl_sends_a_token_minted_on_the_stack_context_for_the_audience(cfg):
    curl = curl_command(cfg.models[0], HOST, PREDICT_URL, GATEWAY, "192.0.2.10", "kind-kserve", cfg.auth)
    assert ('-H "Authorization: Bearer $(kubectl --context kind-kserve create token default -n default '
            '--audience kserve-stack)"') in curl


def test_curl_of_a_jwt_stack_sends_the_callers_token_and_an_open_stack_none():
    jwt = AuthConfig(type="jwt", issuer="https://idp.example", jwks_uri="https://idp.example/keys")
    model = config.parse(stack_raw("standard"), PROJECT_DIR).models[0]
    assert '-H "Authorization: Bearer $TOKEN"' in curl_command(model, HOST, PREDICT_URL, GATEWAY, None, None, jwt)
    assert "Authorization" not in curl_command(model, HOST, PREDICT_URL, GATEWAY, None, None, AuthConfig(type="none"))


def test_https_curl_checks_the_certificate_against_the_host_with_the_stacks_ca(cfg):
    url = PREDICT_URL.replace("http://", "https://")
    curl = curl_command(cfg.models[0], HOST, url, GATEWAY, None, None, cfg.auth, "kserve/kserve-ingress-gateway-certs")
    fetch, rest = curl.split("; ", 1)
    assert shlex.split(fetch)[:8] == ["kubectl", "-n", "kserve", "get", "secret", "kserve-ingress-gateway-certs", "-o",
                                      "jsonpath={.data.ca\\.crt}"]
    assert port_forward(rest)[-1] == "8443:443"
    assert f"--cacert ca.crt --resolve {HOST}:8443:127.0.0.1" in rest and f" https://{HOST}:8443/v1/" in rest
    assert "-H 'Host:" not in rest, "the host is the URL's: the certificate is checked against it"
    direct = curl_command(cfg.models[0], HOST, url, GATEWAY, "192.0.2.10", None, cfg.auth, None)
    assert "kubectl create token" in direct and "--cacert" not in direct, "a real issuer: the system store"
    assert f"--resolve {HOST}:443:192.0.2.10" in direct and direct.endswith(f" {url}")


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
