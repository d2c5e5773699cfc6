"""Knative Serving through the Knative Operator, with Istio networking (serverless mode)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import install_chart, namespace
from components.readiness import await_annotations
from settings.versions import ChartSource

OPERATOR_NAMESPACE = "knative-operator"
SERVING_NAMESPACE = "knative-serving"


@dataclass(frozen=True)
class KnativeLayerArgs:
    version: str
    """The Knative Operator release."""
    serving_version: str
    """The Serving release (or minor) the operator installs; it must be one the operator bundles."""
    chart: ChartSource
    domain: str
    waits: bool
    istio: Sequence[pulumi.Resource] = ()
    """istiod (after Istio's CRDs): net-istio needs both to become ready. Not the ingress
    gateway's pods: net-istio only writes the Gateway objects that select them; the model,
    which is called through them, waits for them instead."""
    timeout_seconds: int = 900
    image_registry: str | None = None


def knative_serving_spec(args: KnativeLayerArgs) -> dict:
    spec: dict = {
        "version": args.serving_version,
        "ingress": {"istio": {"enabled": True}},
        "config": {"domain": {args.domain: ""}},
    }
    if args.image_registry:
        spec["registry"] = serving_registry(args.image_registry, args.serving_version)
        spec["config"]["deployment"] = {"queue-sidecar-image": knative_image(args.image_registry, "queue",
                                                                             args.serving_version)}
    return spec


def knative_image(registry: str, name: str, serving_version: str) -> str:
    """Where a mirror keeps a Knative image: `<registry>/knative/<name>:v<Serving version>`, the
    flat layout the operator's `${NAME}` placeholder gives."""
    return f"{registry}/knative/{name}:v{serving_version}"


def serving_registry(registry: str, serving_version: str) -> dict:
    """KnativeServing.spec.registry. The operator names an image by the last part of its path,
    so Serving's and net-istio's `controller` and `webhook` would meet: net-istio's get their
    own names. The queue-proxy image is a ConfigMap setting, not a registry one (see spec.config)."""
    return {
        "default": knative_image(registry, "${NAME}", serving_version),
        "override": {
            "net-istio-controller/controller": knative_image(registry, "net-istio-controller", serving_version),
            "net-istio-webhook/webhook": knative_image(registry, "net-istio-webhook", serving_version),
            "queue-proxy": knative_image(registry, "queue", serving_version),
        },
    }


class KnativeLayer(pulumi.ComponentResource):
    """The operator installs Serving and its CRDs; the KnativeServing resource turning
    Ready is the gate for KServe, whose controller looks for the Knative Service CRD once,
    at start-up."""

    operator_namespace: k8s.core.v1.Namespace
    operator: k8s.helm.v4.Chart
    serving_namespace: k8s.core.v1.Namespace
    serving: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KnativeLayerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:KnativeLayer", name, None, opts)
        self.operator_namespace = namespace(f"{name}-operator-namespace", OPERATOR_NAMESPACE, parent=self)
        self.operator = install_chart(
            f"{name}-operator", args.chart, args.version, OPERATOR_NAMESPACE, {},
            waits=args.waits, parent=self, depends_on=[self.operator_namespace], release_name="knative-operator",
            image_registry=args.image_registry,
        )
        self.serving_namespace = namespace(f"{name}-serving-namespace", SERVING_NAMESPACE, parent=self)
        self.serving = k8s.apiextensions.CustomResource(
            f"{name}-serving",
            api_version="operator.knative.dev/v1beta1",
            kind="KnativeServing",
            metadata={
                "name": "knative-serving",
                "namespace": SERVING_NAMESPACE,
                "annotations": await_annotations(args.waits, "condition=Ready", args.timeout_seconds),
            },
            spec=knative_serving_spec(args),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.operator, self.serving_namespace, *args.istio],
            ),
        )
        self.register_outputs({"namespace": SERVING_NAMESPACE, "domain": args.domain})
