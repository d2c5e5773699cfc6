"""Istio: CRDs (base), the control plane (istiod) and, in serverless mode, the ingress gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import install_chart, namespace, patch_objects
from components.readiness import SKIP_AWAIT
from settings.config import Profile, ServiceType
from settings.versions import SMALL_REQUESTS, ChartSource, Mode

NAMESPACE = "istio-system"
INGRESS_GATEWAY = "istio-ingressgateway"
"""Knative's net-istio routes through the gateway with the label istio=ingressgateway."""


@dataclass(frozen=True)
class IstioMeshArgs:
    mode: Mode
    version: str
    charts: Mapping[str, ChartSource]
    waits: bool
    service_type: ServiceType = "LoadBalancer"
    image_registry: str | None = None
    gateway_api: pulumi.Resource | None = None
    """Standard mode: istiod watches Gateway API types only if their CRDs exist when it starts."""
    profile: Profile = "default"
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of this layer is written before the cluster passed it."""
    jwks_root_ca: pulumi.Input[str] | None = None
    """A CA istiod trusts when it fetches a JWKS (the cluster's, for its service-account issuer)."""


def istiod_values(args: IstioMeshArgs) -> dict:
    """`profile: small` lowers istiod's 500m/2Gi request (`resources`) and that of the gateway pods
    istiod makes for a Gateway API Gateway in standard mode (`global.proxy.resources`, its kube-gateway
    template); the stack injects no sidecar, which that value also sizes."""
    global_values: dict = {"hub": f"{args.image_registry}/istio"} if args.image_registry else {}
    values: dict = {}
    if args.jwks_root_ca is not None:
        # A top-level value of the 1.24+ chart (values.yaml `_internal_defaults_do_not_set`):
        # templates/configmap-jwks.yaml, mounted at /cacerts, read by pilot/pkg/model/jwks_resolver.go.
        values["jwksResolverExtraRootCA"] = args.jwks_root_ca
    if args.profile == "small":
        values["resources"] = {"requests": dict(SMALL_REQUESTS)}
        global_values["proxy"] = {"resources": {"requests": dict(SMALL_REQUESTS)}}
    return {**values, "global": global_values} if global_values else values


def gateway_values(args: IstioMeshArgs) -> dict:
    """Serverless: the `gateway` chart's pods. A top-level value is safe here: serverless refuses an
    Istio whose gateway chart fails its own schema (settings/versions, ISTIO_GATEWAY_CHART_FIXED)."""
    return {"resources": {"requests": dict(SMALL_REQUESTS)}} if args.profile == "small" else {}


def gateway_service_type(service_type: ServiceType) -> pulumi.ResourceTransform:
    """Sets the type on the chart's Service. Not through the chart's `service.type` value: the
    `gateway` charts of Istio 1.22 to 1.27.0 fail their own values schema on any top-level
    value with the Helm inside the provider (istio/istio#57354).

    The Service does not wait for a load-balancer address either: clusters without a load
    balancer never assign one, and the gateway's Deployment becoming Available already says
    its pods serve (the smoke test calls them through the Service)."""

    def patch(kind: str, props: dict) -> dict | None:
        if kind != "Service":
            return None
        metadata = props.get("metadata") or {}
        annotations = {**(metadata.get("annotations") or {}), SKIP_AWAIT: "true"}
        return {**props, "metadata": {**metadata, "annotations": annotations},
                "spec": {**(props.get("spec") or {}), "type": service_type}}

    return patch_objects(patch)


def _leave_webhook_to_istiod(kind: str, props: dict) -> dict | None:
    """istiod owns `failurePolicy` and `caBundle` of its validating webhooks: it writes Ignore and
    its CA, then Fail once a dry run of an invalid Gateway is refused (istio 1.27.1
    pkg/webhooks/validation/controller/controller.go, updateValidatingWebhookConfiguration, an
    Update). The charts render `Ignore` and an empty bundle; applied by the stack, they would diff
    after every `pulumi refresh` and conflict on every later apply. Left out, the API server's
    default (Fail) holds until istiod's first write, and istiod alone manages them."""
    if kind != "ValidatingWebhookConfiguration":
        return None
    webhooks = []
    for webhook in props.get("webhooks") or []:
        config = {k: v for k, v in (webhook.get("clientConfig") or {}).items() if k != "caBundle"}
        webhooks.append({**{k: v for k, v in webhook.items() if k != "failurePolicy"}, "clientConfig": config})
    return {**props, "webhooks": webhooks}


leave_webhook_to_istiod = patch_objects(_leave_webhook_to_istiod)


class IstioMesh(pulumi.ComponentResource):
    """Istio's base chart waits for nothing; istiod waits for base (its CRDs) and, in
    standard mode, for the Gateway API layer. In serverless mode the `gateway` chart adds
    `istio-system/istio-ingressgateway`, which Knative routes through. In standard mode
    istiod deploys the gateway itself for the KServe Gateway object."""

    namespace: k8s.core.v1.Namespace
    base: k8s.helm.v4.Chart
    istiod: k8s.helm.v4.Chart
    ingress_gateway: k8s.helm.v4.Chart | None
    ingress_class: k8s.networking.v1.IngressClass | None

    def __init__(self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:IstioMesh", name, None, opts)
        self.namespace = namespace(f"{name}-namespace", NAMESPACE, parent=self, depends_on=args.after)
        self.base = install_chart(
            f"{name}-base", args.charts["istioBase"], args.version, NAMESPACE,
            {"defaultRevision": "default"}, waits=args.waits, parent=self,
            depends_on=[self.namespace], release_name="istio-base", transforms=[leave_webhook_to_istiod],
        )
        self.istiod = install_chart(
            f"{name}-istiod", args.charts["istiod"], args.version, NAMESPACE, istiod_values(args),
            waits=args.waits, parent=self, release_name="istiod", image_registry=args.image_registry,
            transforms=[leave_webhook_to_istiod],
            depends_on=[self.base, *([args.gateway_api] if args.gateway_api else [])],
        )
        self.ingress_gateway = None
        self.ingress_class = None
        if args.mode == "serverless":
            # The release name gives the chart's name and its `istio=ingressgateway` label.
            self.ingress_gateway = install_chart(
                f"{name}-ingressgateway", args.charts["istioGateway"], args.version, NAMESPACE, gateway_values(args),
                waits=args.waits, parent=self, depends_on=[self.istiod], release_name=INGRESS_GATEWAY,
                transforms=[gateway_service_type(args.service_type)], image_registry=args.image_registry,
            )
            self.ingress_class = k8s.networking.v1.IngressClass(
                f"{name}-ingress-class",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="istio"),
                spec=k8s.networking.v1.IngressClassSpecArgs(controller="istio.io/ingress-controller"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.istiod]),
            )
        self.register_outputs({"namespace": NAMESPACE, "mode": args.mode})

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What a dependent layer waits for: the control plane and, when present, the ingress."""
        return [r for r in (self.istiod, self.ingress_gateway, self.ingress_class) if r is not None]
