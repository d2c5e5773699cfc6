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
    """net-istio programs the Istio ingress gateway, so Istio comes first."""
    timeout_seconds: int = 900


def knative_serving_spec(args: KnativeLayerArgs) -> dict:
    return {
        "version": args.serving_version,
        "ingress": {"istio": {"enabled": True}},
        "config": {"domain": {args.domain: ""}},
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
