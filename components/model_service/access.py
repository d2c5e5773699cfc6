"""Who may call one model: its AuthorizationPolicy at the gateway, the NetworkPolicy that keeps
everyone else off its predictor pods, and the smoke test's own identity."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.gateway_auth import POLICY_API, Attachment, ingress_pod_labels
from components.kserve_release import GATEWAY
from components.kserve_release import NAMESPACE as KSERVE_NAMESPACE
from components.model_service.storage import ISVC_POD_LABEL
from settings.config import AuthConfig, Caller, Layers, ModelConfig
from settings.versions import Mode

SMOKE_TEST_LABEL = "kserve-stack/smoke-test"
"""On the smoke test's pods: the NetworkPolicy lets them reach the new version's pods directly."""
POLICY_ANNOTATION = "kserve-stack/inference-service"
GATEWAY_POD_LABEL = "gateway.networking.k8s.io/gateway-name"
"""Istio labels the pods it deploys for a Gateway with the Gateway's name (Istio 1.27
manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml)."""
KNATIVE_PORTS = (8012, 8013, 9090)
"""queue-proxy's http and h2c ports (the gateway and the activator call them) and the metrics port
the autoscaler scrapes (knative/serving pkg/networking/constants.go)."""


def smoke_account(model: ModelConfig) -> str:
    return f"{model.name}-smoke-test"


def principal(issuer: str, namespace: str, account: str) -> str:
    """Istio's request principal is `<iss>/<sub>`; a service account's `sub` is
    `system:serviceaccount:<ns>:<name>` (kubernetes pkg/serviceaccount/claims.go). A trailing `*`
    matches by prefix."""
    return f"{issuer}/system:serviceaccount:{namespace}:{account}"


def claim_key(path: tuple[str, ...]) -> str:
    return "request.auth.claims" + "".join(f"[{p}]" for p in path)


def caller_rules(model: ModelConfig, auth: AuthConfig) -> list[dict]:
    """One `from` per caller (rules are ORed); none given: any token the gateway accepted. The
    smoke test's account is always let in: it proves the policy on every `up`."""
    if not model.callers:
        sources: list[dict] = [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]
    else:
        sources = [caller_rule(c, auth) for c in model.callers]
    smoke = principal(auth.kubernetes_issuer, model.namespace, smoke_account(model))
    return [*sources, {"from": [{"source": {"requestPrincipals": [smoke]}}]}]


def caller_rule(caller: Caller, auth: AuthConfig) -> dict:
    if caller.service_account is not None:
        ns, name = caller.service_account
        return {"from": [{"source": {"requestPrincipals": [principal(auth.kubernetes_issuer, ns, name)]}}]}
    return {"from": [{"source": {"requestPrincipals": ["*"]}}],
            "when": [{"key": claim_key(caller.claim), "values": list(caller.values)}]}


def policy_hosts(model: ModelConfig, mode: Mode, host: str) -> list[str]:
    """The Host (`:authority`) values a call to this model arrives with, with and without a port.
    In serverless mode KServe's VirtualService sends an external call on to knative-local-gateway,
    the same pods, as the predictor's cluster host, and cluster callers use the cluster hosts."""
    names = [host]
    if mode == "serverless":
        ns = model.namespace
        names += [f"{model.name}.{ns}.svc.cluster.local", f"{model.name}-predictor.{ns}.svc.cluster.local",
                  f"{model.name}-predictor.{ns}.svc", f"{model.name}-predictor.{ns}"]
    return [h for name in names for h in (name, f"{name}:*")]


def policy_spec(model: ModelConfig, mode: Mode, host: str, auth: AuthConfig, where: Attachment) -> dict:
    to = [{"operation": {"hosts": policy_hosts(model, mode, host)}}]
    return where.spec(action="ALLOW", rules=[{**rule, "to": to} for rule in caller_rules(model, auth)])


def authorization_policy(name: str, model: ModelConfig, mode: Mode, host: str, auth: AuthConfig,
                         where: Attachment, parent: pulumi.Resource,
                         after: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
    """In the gateway's namespace (where policies attach), named after the model's namespace and name."""
    return k8s.apiextensions.CustomResource(
        f"{name}-callers",
        api_version=POLICY_API,
        kind="AuthorizationPolicy",
        metadata={"name": f"kserve-stack.{model.namespace}.{model.name}", "namespace": where.namespace,
                  "annotations": {POLICY_ANNOTATION: f"{model.namespace}/{model.name}"}},
        spec=policy_spec(model, mode, host, auth, where),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def ingress_rules(model: ModelConfig, mode: Mode, layers: Layers) -> list[dict]:
    """Standard: the Gateway's pods, and the model's smoke test (it checks the new version's pods
    directly mid-rollout). Serverless: the ingress gateway (external and cluster-local) and
    Knative's activator and autoscaler, on queue-proxy's ports."""
    def namespace(name: str) -> dict:
        return {"kubernetes.io/metadata.name": name}

    if mode == "standard":
        return [{"from": [
            {"namespaceSelector": {"matchLabels": namespace(KSERVE_NAMESPACE)},
             "podSelector": {"matchLabels": {GATEWAY_POD_LABEL: GATEWAY}}},
            {"podSelector": {"matchLabels": {SMOKE_TEST_LABEL: model.name}}},
        ]}]
    ports = [{"protocol": "TCP", "port": p} for p in KNATIVE_PORTS]
    return [{"from": [
        {"namespaceSelector": {"matchLabels": namespace(layers.istio_namespace)},
         "podSelector": {"matchLabels": ingress_pod_labels(layers)}},
        {"namespaceSelector": {"matchLabels": namespace(layers.knative_namespace)}},
    ], "ports": ports}]


def network_policy(name: str, model: ModelConfig, mode: Mode, layers: Layers, parent: pulumi.Resource,
                   after: list[pulumi.Resource]) -> k8s.networking.v1.NetworkPolicy:
    """Nobody calls the predictor around the gateway. The kubelet's probes come from the node,
    which a NetworkPolicy always admits (Kubernetes docs, Network Policies: "traffic to and from
    the node where a Pod is running is always allowed")."""
    return k8s.networking.v1.NetworkPolicy(
        f"{name}-predictor-ingress",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{model.name}-predictor-ingress", namespace=model.namespace),
        spec={"podSelector": {"matchLabels": {ISVC_POD_LABEL: model.name}}, "policyTypes": ["Ingress"],
              "ingress": ingress_rules(model, mode, layers)},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def smoke_service_account(name: str, model: ModelConfig, parent: pulumi.Resource,
                          after: list[pulumi.Resource]) -> k8s.core.v1.ServiceAccount:
    """The smoke test's identity: its token is projected for the stack's audience only."""
    return k8s.core.v1.ServiceAccount(
        f"{name}-smoke-test-account",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=smoke_account(model), namespace=model.namespace),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
