"""Knative Serving through the Knative Operator, with Istio networking (serverless mode)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import install_chart, namespace
from components.readiness import await_annotations
from settings.config import Profile
from settings.versions import SMALL_REQUESTS, ChartSource

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
    profile: Profile = "default"
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of this layer is written before the cluster passed it."""


def knative_serving_spec(args: KnativeLayerArgs) -> dict:
    deployment = {"registries-skipping-tag-resolving": ",".join(skipped_registries(args.image_registry))}
    spec: dict = {
        "version": args.serving_version,
        "ingress": {"istio": {"enabled": True}},
        "config": {"domain": {args.domain: ""}, "deployment": deployment, "features": dict(FEATURES)},
    }
    if args.image_registry:
        spec["registry"] = serving_registry(args.image_registry, args.serving_version)
        deployment["queue-sidecar-image"] = knative_image(args.image_registry, "queue", args.serving_version)
    if args.profile == "small":
        spec["workloads"] = small_workloads()
    return spec


AFFINITY, NODE_SELECTOR, TOLERATIONS = (
    "kubernetes.podspec-affinity", "kubernetes.podspec-nodeselector", "kubernetes.podspec-tolerations")
FEATURES = {AFFINITY: "enabled", NODE_SELECTOR: "enabled", TOLERATIONS: "enabled"}
"""config-features (knative/serving config/core/configmaps/features.yaml): without them Knative's
webhook refuses the predictor's pod affinity (which keeps the readers of a ReadWriteOnce claim
on one node), node selector and tolerations (a model's placement). Upstream warns they cannot
safely be disabled once enabled, so they are always on."""


def features_needed(shares_a_node: bool, node_selector: bool, tolerations: bool) -> tuple[str, ...]:
    """The flags a Knative the cluster runs must have on for the models' pods."""
    return tuple(f for f, needed in ((AFFINITY, shares_a_node), (NODE_SELECTOR, node_selector),
                                     (TOLERATIONS, tolerations)) if needed)

SKIP_TAG_RESOLVING = ("kind.local", "ko.local", "dev.local", "nvcr.io", "index.docker.io")
"""Registries whose image tags Knative does not resolve to digests: Knative's own default
(pkg/deployment/config.go), which setting the key replaces, and KServe's (kserve v0.20.0
hack/setup/infra/knative/templates/knative-serving-istio.yaml)."""


def skipped_registries(image_registry: str | None) -> list[str]:
    """Plus the mirror's host: Knative resolves a tag with its own client, which a private mirror
    (credentials, self-signed TLS) refuses, and the revision fails "failed to resolve image to digest"."""
    host = registry_host(image_registry) if image_registry else None
    return [*SKIP_TAG_RESOLVING, *([host] if host and host not in SKIP_TAG_RESOLVING else [])]


def registry_host(image_registry: str) -> str:
    """The registry part of `host[:port][/path]`, as Knative compares it (go-containerregistry's
    RegistryStr): a first part without a dot or port that is not localhost names Docker Hub."""
    first = image_registry.split("/", 1)[0]
    if first == "docker.io" or not ("." in first or ":" in first or first == "localhost"):
        return "index.docker.io"
    return first


SERVING_CONTAINERS = {
    "activator": "activator", "autoscaler": "autoscaler", "autoscaler-hpa": "autoscaler-hpa",
    "controller": "controller", "webhook": "webhook",
    "net-istio-controller": "controller", "net-istio-webhook": "webhook",
}
"""Every Deployment the operator installs for Serving with net-istio (and its container), the same
in the 1.15, 1.16 and 1.21 manifests it bundles. Together they request 680m CPU by default."""


def small_workloads() -> list[dict]:
    """`profile: small`: the requests KServe's own KnativeServing gives every Knative workload
    (knative-serving-istio.yaml, `workloads:`), here for autoscaler-hpa too. Limits are left out:
    the operator merges per resource, so the upstream limits stay."""
    return [{"name": name, "resources": [{"container": container, "requests": dict(SMALL_REQUESTS)}]}
            for name, container in SERVING_CONTAINERS.items()]


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
        self.operator_namespace = namespace(f"{name}-operator-namespace", OPERATOR_NAMESPACE, parent=self,
                                            depends_on=args.after)
        self.operator = install_chart(
            f"{name}-operator", args.chart, args.version, OPERATOR_NAMESPACE, {},
            waits=args.waits, parent=self, depends_on=[self.operator_namespace], release_name="knative-operator",
            image_registry=args.image_registry,
        )
        self.serving_namespace = namespace(f"{name}-serving-namespace", SERVING_NAMESPACE, parent=self,
                                           depends_on=args.after)
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
