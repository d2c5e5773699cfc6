"""Who may call a model, as the program renders it per mode: the token check at the gateway, each
model's AuthorizationPolicy, the NetworkPolicy around its predictor, the smoke test's identity.
Field by field against Istio's semantics (security.istio.io/v1; Istio 1.27 sources cited where a
behaviour is relied on). What cannot run here, Envoy enforcing them, is left to
.github/workflows/e2e.yml on kind."""

from __future__ import annotations

import pytest

from components.gateway_auth import ISSUER_DISCOVERY_ROLE, PROBES, TOKENS
from components.model_service.access import KNATIVE_PORTS, SMOKE_TEST_LABEL
from components.model_service.jobs import TOKEN_DIR, TOKEN_FILE
from settings.config.auth import KUBERNETES_ISSUER, KUBERNETES_JWKS_URI
from tools.graph import CLUSTER_CA

STANDARD_TARGET = {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                   "name": "kserve-ingress-gateway"}]}
SERVERLESS_TARGET = {"selector": {"matchLabels": {"istio": "ingressgateway"}}}
CLUSTER_RULE = {"issuer": KUBERNETES_ISSUER, "jwksUri": KUBERNETES_JWKS_URI, "audiences": ["kserve-stack"],
                "forwardOriginalToken": True}
SMOKE = f"{KUBERNETES_ISSUER}/system:serviceaccount:default:model-smoke-test"


def policy(run, name: str = "model-callers"):
    return run.named(name).inputs


@pytest.mark.parametrize(("stack", "namespace", "target"), [
    ("standard", "kserve", STANDARD_TARGET), ("serverless", "istio-system", SERVERLESS_TARGET)])
def test_tokens_are_checked_where_the_gateway_runs(run_stack, stack, namespace, target):
    """Standard: targetRefs to the KServe Gateway, from its namespace (a targetRef binds only within
    the policy's namespace, pilot/pkg/model/policyattachment.go). Serverless: the ingress pods."""
    tokens = run_stack(stack).named("gateway-auth-tokens").inputs
    assert tokens["apiVersion"] == "security.istio.io/v1" and tokens["kind"] == "RequestAuthentication"
    assert tokens["metadata"] == {"name": TOKENS, "namespace": namespace}
    assert tokens["spec"] == {**target, "jwtRules": [CLUSTER_RULE]}


def test_an_identity_providers_tokens_and_the_clusters_for_the_smoke_test(run_stack):
    auth = {"type": "jwt", "issuer": "https://idp.example.com", "jwksUri": "https://idp.example.com/keys",
            "audiences": ["models", "api"]}
    rules = run_stack("standard", auth=auth).named("gateway-auth-tokens").inputs["spec"]["jwtRules"]
    assert rules == [{**CLUSTER_RULE, "audiences": ["models", "api"]},
                     {"issuer": "https://idp.example.com", "jwksUri": "https://idp.example.com/keys",
                      "audiences": ["models", "api"], "forwardOriginalToken": True}]


def test_istiod_may_fetch_the_clusters_keys_and_trusts_its_ca(run_stack):
    """istiod fetches the JWKS without credentials (pilot/pkg/model/jwks_resolver.go), over TLS
    signed by the cluster's CA: the discovery role for anonymous callers, and the CA as the chart's
    jwksResolverExtraRootCA (templates/configmap-jwks.yaml, mounted at /cacerts)."""
    run = run_stack("standard")
    binding = run.named("gateway-auth-issuer-discovery").inputs
    assert binding["metadata"]["name"] == "kserve-stack-standard-issuer-discovery"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": ISSUER_DISCOVERY_ROLE}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:unauthenticated"}]
    assert run.named("istio-istiod").inputs["values"]["jwksResolverExtraRootCA"] == CLUSTER_CA
    read = run.named("cluster-ca")
    assert read.read and read.inputs.get("metadata", {}).get("name") in (None, "kube-root-ca.crt")


def test_without_auth_nothing_checks_tokens_and_the_stack_says_so(run_stack):
    run = run_stack("standard", auth={"type": "none"})
    assert not [r for r in run.regs.values() if r.type.startswith("kubernetes:security.istio.io")]
    assert "GatewayAuth" not in {r.type.rsplit(":", 1)[-1] for r in run.regs.values()}
    assert "jwksResolverExtraRootCA" not in run.named("istio-istiod").inputs["values"]
    assert "anyone who reaches the gateway can call every model" in run.outputs["auth_warning"]
    assert run.outputs["auth"] == {"type": "none"} and "token_command" not in run.outputs
    annotations = run.named("model-isvc").inputs["metadata"]["annotations"]
    assert annotations["kserve-stack/auth"] == "none"
    assert run.named("model-predictor-ingress"), "nobody goes around the gateway, open or not"
    command = run.named("model-smoke-test").inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "Authorization" not in command and "refused without a token" not in command


def test_serverless_lets_knatives_probes_through_without_a_token(run_stack):
    """net-istio's prober: GET /healthz with K-Network-Probe: probe, no token (knative/serving#6793)."""
    probes = run_stack("serverless").named("gateway-auth-knative-probes").inputs
    assert probes["metadata"] == {"name": PROBES, "namespace": "istio-system"}
    assert probes["spec"] == {**SERVERLESS_TARGET, "action": "ALLOW", "rules": [{
        "to": [{"operation": {"methods": ["GET"], "paths": ["/healthz"]}}],
        "when": [{"key": "request.headers[K-Network-Probe]", "values": ["probe"]}]}]}
    with pytest.raises(AssertionError):
        run_stack("standard").named("gateway-auth-knative-probes")


def test_a_model_without_callers_takes_any_token_of_the_audience_on_its_hosts_only(run_stack):
    spec = policy(run_stack("standard"))
    meta = policy(run_stack("standard"))["metadata"]
    assert meta == {"name": "kserve-stack.default.model", "namespace": "kserve",
                    "annotations": {"kserve-stack/inference-service": "default/model"}}
    to = [{"operation": {"hosts": ["model-default.example.com", "model-default.example.com:*"]}}]
    assert spec["spec"] == {**STANDARD_TARGET, "action": "ALLOW", "rules": [
        {"from": [{"source": {"requestPrincipals": ["*"]}}], "to": to},
        {"from": [{"source": {"requestPrincipals": [SMOKE]}}], "to": to},
    ]}


def test_serverless_policy_covers_the_cluster_hosts_of_the_second_pass(run_stack):
    """KServe's VirtualService sends the external host on to knative-local-gateway (the same pods)
    as the predictor's cluster host; in-cluster callers use the cluster hosts too."""
    hosts = policy(run_stack("serverless"))["spec"]["rules"][0]["to"][0]["operation"]["hosts"]
    names = ["model.default.example.com", "model.default.svc.cluster.local",
             "model-predictor.default.svc.cluster.local", "model-predictor.default.svc", "model-predictor.default"]
    assert hosts == [h for n in names for h in (n, f"{n}:*")]


def test_callers_become_request_principals_and_claims(run_stack):
    callers = ["apps/client", "batch/*", {"claim": ["kubernetes.io", "namespace"], "values": ["ml"]}]
    run = run_stack("standard", model={"name": "model", "path": "model", "callers": callers})
    rules = policy(run)["spec"]["rules"]
    assert [r["from"] for r in rules] == [
        [{"source": {"requestPrincipals": [f"{KUBERNETES_ISSUER}/system:serviceaccount:apps:client"]}}],
        [{"source": {"requestPrincipals": [f"{KUBERNETES_ISSUER}/system:serviceaccount:batch:*"]}}],
        [{"source": {"requestPrincipals": ["*"]}}],
        [{"source": {"requestPrincipals": [SMOKE]}}],
    ]
    assert rules[2]["when"] == [{"key": "request.auth.claims[kubernetes.io][namespace]", "values": ["ml"]}]
    assert all("when" not in r for i, r in enumerate(rules) if i != 2), "a claim narrows its own rule only"


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_the_model_waits_for_its_policies(run_stack, stack):
    run = run_stack(stack)
    isvc = run.named("model-isvc")
    for name in ("model-callers", "model-predictor-ingress", "gateway-auth-tokens"):
        assert run.waits_for(isvc, run.named(name)), name
    assert run.waits_for(run.named("model-callers"), run.named("gateway-auth-tokens"))


def test_standard_predictor_admits_the_gateway_and_its_own_smoke_test_only(run_stack):
    net = run_stack("standard").named("model-predictor-ingress").inputs
    assert net["metadata"] == {"name": "model-predictor-ingress", "namespace": "default"}
    assert net["spec"] == {
        "podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "model"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kserve"}},
             "podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "kserve-ingress-gateway"}}},
            {"podSelector": {"matchLabels": {SMOKE_TEST_LABEL: "model"}}},
        ]}],
    }


def test_serverless_predictor_admits_the_gateway_and_knative_on_queue_proxys_ports(run_stack):
    ingress = run_stack("serverless").named("model-predictor-ingress").inputs["spec"]["ingress"]
    assert ingress == [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
         "podSelector": {"matchLabels": {"istio": "ingressgateway"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "knative-serving"}}},
    ], "ports": [{"protocol": "TCP", "port": p} for p in KNATIVE_PORTS]}]
    assert KNATIVE_PORTS == (8012, 8013, 9090)


def test_the_smoke_test_calls_with_a_projected_token_of_its_own_account(run_stack):
    run = run_stack("standard")
    job = run.named("model-smoke-test").inputs["spec"]["template"]
    pod = job["spec"]
    account = run.named("model-smoke-test-account").inputs
    assert account["metadata"] == {"name": "model-smoke-test", "namespace": "default"}
    assert pod["serviceAccountName"] == "model-smoke-test" and pod["automountServiceAccountToken"] is False
    assert job["metadata"]["labels"][SMOKE_TEST_LABEL] == "model"
    assert pod["volumes"] == [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "kserve-stack", "expirationSeconds": 600, "path": "token"}}]}}]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [{"name": "token", "mountPath": TOKEN_DIR, "readOnly": True}]
    script = container["command"][-1]
    assert f'Authorization: Bearer $(cat {TOKEN_FILE})' in script and "the models are open" in script
    assert script.index("Authorization") < script.index("the models are open"), "answered first, then refused"
    assert run.waits_for(run.named("model-smoke-test"), run.named("model-smoke-test-account"))


def test_outputs_say_how_to_call(run_stack):
    out = run_stack("standard").outputs
    assert out["auth"] == {"type": "kubernetes", "issuer": KUBERNETES_ISSUER, "audiences": ["kserve-stack"]}
    assert out["token_command"] == "kubectl create token default -n default --audience kserve-stack"
    assert "$(kubectl create token default -n default --audience kserve-stack)" in out["curl"]
    assert "ca_secret" not in out


def test_https_urls_and_the_ca_of_the_stacks_own_issuer(run_stack):
    out = run_stack("standard", gateway={"scheme": "https"}).outputs
    assert out["predict_url"] == "https://model-default.example.com/v1/models/model:predict"
    assert out["ca_secret"] == "kserve/kserve-ingress-gateway-certs"
    assert "--resolve model-default.example.com:443:192.0.2.10" in out["curl"] and "--cacert ca.crt" in out["curl"]
    real = run_stack("standard", gateway={"scheme": "https", "tlsIssuer": {"name": "corp-ca"}}).outputs
    assert "ca_secret" not in real and "--cacert" not in real["curl"]
