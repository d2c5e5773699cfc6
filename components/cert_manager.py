"""cert-manager: webhook certificates for KServe and the gateway's TLS certificate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import install_chart, namespace, registry_image
from components.readiness import await_annotations
from settings.versions import ChartSource

NAMESPACE = "cert-manager"
SELF_SIGNED_ISSUER = "kserve-stack-selfsigned"
WEBHOOKS = ("cert-manager-webhook",)
"""cainjector fills these CA bundles; until then every Issuer or Certificate is refused."""


@dataclass(frozen=True)
class CertManagerArgs:
    version: str
    source: ChartSource
    waits: bool
    image_registry: str | None = None
    install: bool = True
    """False: the cluster runs cert-manager (the cluster check stands for it); the stack adds only
    its issuer."""
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of this layer is written before the cluster passed it."""


def chart_values(args: CertManagerArgs) -> dict:
    """The chart's pods take their images from the registry by the chart transform; the ACME
    solver's image is only an argument of the controller, so it is a value."""
    values: dict = {"crds": {"enabled": True, "keep": False}}
    if args.image_registry:
        solver = registry_image(args.image_registry, "quay.io/jetstack/cert-manager-acmesolver")
        values["acmesolver"] = {"image": {"repository": solver}}
    return values


class CertManager(pulumi.ComponentResource):
    """The cert-manager chart, and a self-signed ClusterIssuer created only once the
    webhook has its CA bundle (cert-manager#2908: issuers created earlier are refused).
    Other layers wait for `chart` only: a Certificate may name an issuer that is not Ready
    yet, cert-manager issues it once the issuer is."""

    namespace: k8s.core.v1.Namespace | None
    chart: k8s.helm.v4.Chart | None
    self_signed_issuer: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:CertManager", name, None, opts)
        self.namespace = self.chart = None
        if args.install:
            self.namespace = namespace(f"{name}-namespace", NAMESPACE, parent=self, depends_on=args.after)
            self.chart = install_chart(
                f"{name}-chart", args.source, args.version, NAMESPACE, chart_values(args),
                waits=args.waits, parent=self, depends_on=[self.namespace],
                release_name="cert-manager", webhooks=WEBHOOKS, image_registry=args.image_registry,
            )
        self.self_signed_issuer = k8s.apiextensions.CustomResource(
            f"{name}-selfsigned-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": SELF_SIGNED_ISSUER, "annotations": await_annotations(args.waits, "condition=Ready")},
            spec={"selfSigned": {}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.ready, *args.after]),
        )
        self.register_outputs({"namespace": NAMESPACE, "self_signed_issuer": SELF_SIGNED_ISSUER})

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What an Issuer or Certificate waits for: the chart's webhook with its CA bundle, or,
        where the cluster runs cert-manager, nothing more than the cluster check (which every
        object waits for)."""
        return [self.chart] if self.chart is not None else []
