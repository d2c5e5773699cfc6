"""KServe: CRDs, the controller with its webhooks, the serving runtimes and, in standard
mode, the ingress Gateway its HTTPRoutes attach to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import depends_on_ref, install_chart, namespace, registry_image
from components.readiness import await_annotations
from settings.config import Layers, ServiceType, TlsIssuer
from settings.versions import ChartSource, Mode
from settings.versions import KServeRelease as Release

NAMESPACE = "kserve"
GATEWAY = "kserve-ingress-gateway"
GATEWAY_TLS_SECRET = "kserve-ingress-gateway-certs"
GATEWAY_SERVICE = f"{GATEWAY}-istio"
"""istiod names the Deployment and Service it makes for a Gateway `<gateway>-istio`."""
WEBHOOKS = (
    "inferenceservice.serving.kserve.io",
    "trainedmodel.serving.kserve.io",
    "inferencegraph.serving.kserve.io",
    "clusterservingruntime.serving.kserve.io",
    "servingruntime.serving.kserve.io",
)
"""cert-manager injects these CA bundles; KServe objects created before that are refused
(kserve#5037, #4182)."""


@dataclass(frozen=True)
class KServeReleaseArgs:
    mode: Mode
    release: Release
    charts: Mapping[str, ChartSource]
    domain: str
    waits: bool
    tls_issuer: TlsIssuer
    service_type: ServiceType = "LoadBalancer"
    image_registry: str | None = None
    cert_manager: Sequence[pulumi.Resource] = ()
    """The cert-manager chart: its webhook refuses every Issuer and Certificate until it has its
    CA bundle. Not the ClusterIssuer: the controller chart brings its own Issuer, and cert-manager
    issues a Certificate whose issuer is not Ready yet once it is (it watches issuers)."""
    ingress_api: Sequence[pulumi.Resource] = ()
    """Gateway API CRDs (standard) or Knative Serving (serverless): the controller probes
    for them once, when it starts."""
    istio: Sequence[pulumi.Resource] = ()
    """Standard mode: istiod must be up before the Gateway it programs."""
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of this layer is written before the cluster passed it."""
    layers: Layers = Layers()
    """Where the layers the cluster runs itself keep the parts KServe's config names."""
    kept_crds: Sequence[str] = ()
    """CRDs an earlier release's `kserve-crd` chart installed and this release's does not ship
    (settings/upgrades): kept as they are, so an upgrade never deletes them or their objects."""


def controller_values(args: KServeReleaseArgs) -> dict:
    standard = args.mode == "standard"
    ingress: dict = {"enableGatewayApi": standard}
    if standard:
        ingress |= {"kserveGateway": f"{NAMESPACE}/{GATEWAY}", "createGateway": False,
                    "className": args.layers.gateway_class}
    else:
        ingress |= knative_gateways(args.layers)
    kserve: dict = {
        "controller": {
            "deploymentMode": args.release.deployment_mode(args.mode),
            "gateway": {"domain": args.domain, "ingressGateway": ingress,
                        **({"localGateway": local} if (local := knative_local_gateway(args)) else {})},
        },
    }
    if args.image_registry:
        # Images the controller puts into the pods it makes (from its ConfigMap); the chart's own
        # pods and runtimes take theirs from the registry by the chart transform.
        for key, image in (("storage", "storage-initializer"), ("agent", "agent"), ("router", "router")):
            kserve[key] = {"image": registry_image(args.image_registry, f"kserve/{image}")}
        kserve["servingruntime"] = {"art": {"image": registry_image(args.image_registry, "kserve/art-explainer")}}
        if args.release.controller_chart == "kserve-resources":  # v0.15/v0.16 hard-code it (feature off)
            kserve["localmodel"] = {"defaultJobImage": registry_image(args.image_registry,
                                                                      "kserve/storage-initializer")}
    return {"kserve": kserve}


def knative_gateways(layers: Layers) -> dict:
    """Serverless: the Knative gateway KServe routes through, where the cluster's Knative keeps it
    (only when that is not the chart's default, so default stacks render as before)."""
    if layers.knative_namespace == Layers().knative_namespace:
        return {}
    return {"gateway": f"{layers.knative_namespace}/knative-ingress-gateway"}


def knative_local_gateway(args: KServeReleaseArgs) -> dict:
    layers, default = args.layers, Layers()
    if args.mode != "serverless" or (layers.knative_namespace, layers.istio_namespace) == (
            default.knative_namespace, default.istio_namespace):
        return {}
    return {"gateway": f"{layers.knative_namespace}/knative-local-gateway",
            "gatewayService": f"knative-local-gateway.{layers.istio_namespace}.svc.cluster.local"}


RUNTIMES_WAIT_FOR = ",".join((
    depends_on_ref("Deployment", "kserve-controller-manager", "apps", NAMESPACE),
    depends_on_ref("ValidatingWebhookConfiguration", "clusterservingruntime.serving.kserve.io",
                   "admissionregistration.k8s.io"),
))
"""In v0.15/v0.16 one chart holds the ClusterServingRuntimes and the webhook that validates
them (failurePolicy Fail): the runtimes wait for the controller that serves it and for the
webhook's CA bundle."""


RUNTIMES_VALUES = {"kserve": {"servingruntime": {"enabled": True, "vllmserver": {"disabled": True}}}}
"""`kserve-runtime-configs` renders no runtime unless told to. Its vLLM runtime is released as
`vllm/vllm-openai:latest`: no pinned image, so it stays disabled (it still renders)."""


class KServeRelease(pulumi.ComponentResource):
    """The CRD chart waits for nothing. The controller waits for the cert-manager chart (its
    webhook certificate) and the ingress API; the runtimes wait for the controller's webhooks,
    which validate ClusterServingRuntimes. The gateway Certificate and the Gateway do not wait
    for each other; each gates `pulumi up` through its own wait."""

    namespace: k8s.core.v1.Namespace
    crds: k8s.helm.v4.Chart
    controller: k8s.helm.v4.Chart
    runtimes: k8s.helm.v4.Chart | None
    """None where the controller chart holds the runtimes (v0.15, v0.16)."""
    certificate: k8s.apiextensions.CustomResource | None
    gateway: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: KServeReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:KServeRelease", name, None, opts)
        version = args.release.version
        self.namespace = namespace(f"{name}-namespace", NAMESPACE, parent=self, depends_on=args.after)
        self.crds = install_chart(
            f"{name}-crds", args.charts["kserveCrd"], version, NAMESPACE, {},
            waits=args.waits, parent=self, depends_on=[self.namespace], release_name="kserve-crd",
        )
        self.controller = install_chart(
            f"{name}-controller", args.charts["kserve"], version, NAMESPACE, controller_values(args),
            waits=args.waits, parent=self, release_name="kserve", webhooks=WEBHOOKS,
            depends_on=[self.crds, *args.cert_manager, *args.ingress_api],
            depends_on_within=None if args.release.runtimes_chart else {"ClusterServingRuntime": RUNTIMES_WAIT_FOR},
            image_registry=args.image_registry,
        )
        self.runtimes = None
        if args.release.runtimes_chart:
            self.runtimes = install_chart(
                f"{name}-runtimes", args.charts["kserveRuntimes"], version, NAMESPACE, RUNTIMES_VALUES,
                waits=args.waits, parent=self, depends_on=[self.controller], release_name="kserve-runtime-configs",
                image_registry=args.image_registry,
                transforms=[moved_from(f"{name}-runtimes", f"{name}-controller", self.controller)],
            )
        self.kept_crds = [self._keep_crd(name, crd, args.after) for crd in args.kept_crds]
        self.certificate = None
        self.gateway = None
        if args.mode == "standard":
            self.certificate = k8s.apiextensions.CustomResource(
                f"{name}-gateway-certificate",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={
                    "name": GATEWAY_TLS_SECRET,
                    "namespace": NAMESPACE,
                    "annotations": await_annotations(args.waits, "condition=Ready"),
                },
                spec={
                    "secretName": GATEWAY_TLS_SECRET,
                    "commonName": f"*.{args.domain}",
                    "dnsNames": [args.domain, f"*.{args.domain}"],
                    "issuerRef": {
                        "group": "cert-manager.io", "kind": args.tls_issuer.kind, "name": args.tls_issuer.name,
                    },
                },
                # Not after the issuer: cert-manager issues the certificate once the issuer is Ready,
                # and its own Ready wait still holds `pulumi up` until then.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *args.cert_manager]),
            )
            self.gateway = k8s.apiextensions.CustomResource(
                f"{name}-gateway",
                api_version="gateway.networking.k8s.io/v1",
                kind="Gateway",
                metadata={
                    "name": GATEWAY,
                    "namespace": NAMESPACE,
                    "annotations": {
                        # Accepted, not Programmed: Istio keeps a Gateway Programmed=False while a
                        # load-balancer address is pending (clusters without one never get it), and
                        # nothing downstream needs the address: KServe's routes attach regardless.
                        **await_annotations(args.waits, "condition=Accepted"),
                        # Read by istiod from the Gateway's own metadata only.
                        "networking.istio.io/service-type": args.service_type,
                    },
                },
                spec=gateway_spec(args.layers.gateway_class),
                # Not after the Certificate: Istio accepts a Gateway whose TLS secret does not exist
                # yet (the HTTPS listener picks it up when it appears), and the HTTP listener KServe's
                # routes use does not need it.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.namespace, *args.ingress_api, *args.istio],
                ),
            )
        self.register_outputs({"namespace": NAMESPACE, "version": version, "mode": args.mode})

    def _keep_crd(self, name: str, crd: str, after: Sequence[pulumi.Resource],
                  ) -> k8s.apiextensions.v1.CustomResourceDefinition:
        """A CRD the chart no longer ships, applied as the cluster holds it, under the URN the chart
        gave it: the upgrade neither deletes it nor changes it, and `destroy` removes it."""
        live = k8s.apiextensions.v1.CustomResourceDefinition.get(
            f"{name}-kept-{crd}-live", crd, opts=pulumi.ResourceOptions(parent=self))
        return k8s.apiextensions.v1.CustomResourceDefinition(
            f"{name}-kept-{crd}",
            metadata=live.metadata.apply(lambda m: {"name": crd, "labels": m and m.labels,
                                                     "annotations": m and m.annotations}),
            spec=live.spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after), aliases=[
                pulumi.Alias(name=f"{name}-crds:{crd}", parent=self.crds)]),
        )

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What an InferenceService waits for: the controller, its runtimes and the ingress."""
        return [r for r in (self.controller, self.runtimes, self.gateway) if r is not None]


def moved_from(chart: str, old_chart: str, old_parent: pulumi.Resource) -> pulumi.ResourceTransform:
    """From v0.17 the runtimes live in their own chart: each keeps the identity it had as a child
    of the controller chart (v0.15, v0.16), so an upgrade updates it in place instead of creating a
    second copy beside it and then deleting the object both describe."""
    prefix = f"{chart}:"

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not args.name.startswith(prefix):
            return None
        alias = pulumi.Alias(name=f"{old_chart}:{args.name.removeprefix(prefix)}", parent=old_parent)
        return pulumi.ResourceTransformResult(props=args.props, opts=pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(aliases=[alias])))

    return transform


def gateway_spec(gateway_class: str = "istio") -> dict:
    routes = {"namespaces": {"from": "All"}}
    return {
        "gatewayClassName": gateway_class,
        # With infrastructure annotations set, istiod copies these, and not the Gateway's own
        # (Pulumi's await annotations among them), onto the Deployment and Service it makes.
        "infrastructure": {
            "labels": {"serving.kserve.io/gateway": GATEWAY},
            "annotations": {"kserve-stack/gateway": f"{NAMESPACE}/{GATEWAY}"},
        },
        "listeners": [
            {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": routes},
            {
                "name": "https",
                "protocol": "HTTPS",
                "port": 443,
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": GATEWAY_TLS_SECRET}]},
                "allowedRoutes": routes,
            },
        ],
    }
