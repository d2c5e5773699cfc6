"""Tokens at the gateway: the RequestAuthentication every call is checked against, what istiod
needs to fetch the cluster's keys, and, in serverless mode, Knative's probes let through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kserve_release import GATEWAY
from components.kserve_release import NAMESPACE as KSERVE_NAMESPACE
from settings.config import AuthConfig, Layers
from settings.versions import Mode

POLICY_API = "security.istio.io/v1"
TOKENS = "kserve-stack-tokens"
PROBES = "kserve-stack-knative-probes"
ISSUER_DISCOVERY_ROLE = "system:service-account-issuer-discovery"
"""Bootstrap ClusterRole for /.well-known/openid-configuration and /openid/v1/jwks (kubernetes
plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), bound by default to authenticated
service accounts only."""


@dataclass(frozen=True)
class Attachment:
    """Where gateway policies live and which proxies they apply to. Standard mode: the KServe
    Gateway, by `targetRefs` from its own namespace; Istio 1.27 binds a policy with targetRefs
    only to Gateways of the policy's namespace (pilot/pkg/model/policyattachment.go). Serverless:
    the ingress gateway's pods, by `selector`, from their namespace (a selector reaches the
    workloads of the policy's namespace only)."""

    namespace: str
    target: dict

    def spec(self, **rest) -> dict:
        return {**self.target, **rest}


def attachment(mode: Mode, layers: Layers) -> Attachment:
    if mode == "standard":
        return Attachment(KSERVE_NAMESPACE, {"targetRefs": [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY}]})
    return Attachment(layers.istio_namespace, {"selector": {"matchLabels": ingress_pod_labels(layers)}})


def ingress_pod_labels(layers: Layers) -> dict[str, str]:
    """Istio's `gateway` chart labels its pods `istio: <release name without istio->`
    (manifests/charts/gateway/templates/_helpers.tpl, gateway.selectorLabels); Knative's net-istio
    selects `istio: ingressgateway`."""
    return {"istio": layers.ingress_gateway.removeprefix("istio-")}


def jwt_rules(auth: AuthConfig) -> list[dict]:
    """The cluster's issuer always (the smoke test's projected token comes from it), the identity
    provider's too for `jwt`. `forwardOriginalToken`: the JWT filter strips the Authorization
    header once checked (Envoy jwt_authn `forward: false`), and in serverless mode a call passes
    the same gateway pods twice, the second time as a cluster-local host (KServe's VirtualService
    routes the external host to knative-local-gateway)."""
    rules = [{"issuer": auth.kubernetes_issuer, "jwksUri": auth.kubernetes_jwks_uri,
              "audiences": list(auth.audiences), "forwardOriginalToken": True}]
    if auth.type == "jwt":
        rules.append({"issuer": auth.issuer, "jwksUri": auth.jwks_uri, "audiences": list(auth.audiences),
                      "forwardOriginalToken": True})
    return rules


def knative_probe_rule() -> dict:
    """net-istio's prober asks every gateway pod for `GET /healthz` with `K-Network-Probe: probe`
    before it marks a route ready (knative/networking pkg/status/status.go); it sends no token,
    and a route never ready takes no traffic (knative/serving#6793)."""
    return {"to": [{"operation": {"methods": ["GET"], "paths": ["/healthz"]}}],
            "when": [{"key": "request.headers[K-Network-Probe]", "values": ["probe"]}]}


@dataclass(frozen=True)
class GatewayAuthArgs:
    mode: Mode
    auth: AuthConfig
    stack: str
    layers: Layers = Layers()
    after: Sequence[pulumi.Resource] = ()
    """KServe (its Gateway) and Istio (the policy CRDs and istiod)."""


class GatewayAuth(pulumi.ComponentResource):
    """Every call through the gateway shows a token the mesh can check; which tokens may call which
    model is each ModelService's AuthorizationPolicy. Istio denies a call no ALLOW policy matches
    once one exists for the workload (security/v1 AuthorizationPolicy docs, `ALLOW`), so a model
    the stack does not publish is closed too."""

    def __init__(self, name: str, args: GatewayAuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:GatewayAuth", name, None, opts)
        where = attachment(args.mode, args.layers)
        after = list(args.after)
        # istiod fetches the JWKS itself, without credentials (pilot/pkg/model/jwks_resolver.go).
        self.issuer_discovery = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-issuer-discovery",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"kserve-stack-{args.stack}-issuer-discovery"),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                             name=ISSUER_DISCOVERY_ROLE),
            subjects=[k8s.rbac.v1.SubjectArgs(api_group="rbac.authorization.k8s.io", kind="Group",
                                              name="system:unauthenticated")],
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self.tokens = k8s.apiextensions.CustomResource(
            f"{name}-tokens",
            api_version=POLICY_API,
            kind="RequestAuthentication",
            metadata={"name": TOKENS, "namespace": where.namespace},
            spec=where.spec(jwtRules=jwt_rules(args.auth)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self.probes = None
        if args.mode == "serverless":
            self.probes = k8s.apiextensions.CustomResource(
                f"{name}-knative-probes",
                api_version=POLICY_API,
                kind="AuthorizationPolicy",
                metadata={"name": PROBES, "namespace": where.namespace},
                spec=where.spec(action="ALLOW", rules=[knative_probe_rule()]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.register_outputs({"issuer": args.auth.issuer, "audience": args.auth.audience})

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [r for r in (self.issuer_discovery, self.tokens, self.probes) if r is not None]
