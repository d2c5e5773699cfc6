"""What the cluster must already have before the stack writes anything: a Kubernetes release the
mode runs on, and each shared layer the stack does not install (`install.<layer>: false`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import NAMESPACE as CERT_MANAGER_NS
from components.istio_mesh import NAMESPACE as ISTIO_NS
from components.knative_layer import SERVING_NAMESPACE as KNATIVE_NS
from components.kserve_release import NAMESPACE as KSERVE_NS
from settings.config import Install, Layers
from settings.versions import Mode, kubernetes_floor

CHART = Path("components") / "cluster-check"
"""A chart of this project that renders nothing: Helm runs its template against the live cluster
(`.Capabilities.KubeVersion`, `lookup`), in `preview` as in `up`, and `fail`s with the reason.
Relative to the project directory, where the engine starts the provider, so the Chart's inputs
are the same on every machine."""

CERT_MANAGER_DEPLOYMENTS = ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector")
CERT_MANAGER_WEBHOOK = "cert-manager-webhook"
ISTIOD = "istiod"
KNATIVE_DEPLOYMENTS = ("activator", "autoscaler", "controller", "webhook", "net-istio-controller",
                       "net-istio-webhook")
"""Knative Serving's and net-istio's Deployments (serving-core.yaml, net-istio.yaml)."""
GATEWAY_API_CRDS = ("gatewayclasses", "gateways", "httproutes")
CRD_API = "apiextensions.k8s.io/v1"



@dataclass(frozen=True)
class ClusterCheckArgs:
    mode: Mode
    install: Install
    layers: Layers
    knative_serving: str
    gateway_api_minimum: str
    """The oldest Gateway API release KServe and Istio work with (the compatibility window)."""
    waits: bool
    """Readiness checks too (Deployments Available, CA bundles, the class Accepted); without waits
    (render-and-apply, no pods) only that the layers are there."""
    knative_features: tuple[str, ...] = ()
    """The config-features flags the models' pods need (knative_layer.features_needed): a pod
    affinity for a ReadWriteOnce claim, a node selector, tolerations. A Knative the cluster runs
    must have them enabled."""


def _crd(layer: str, name: str, version: str, **extra: Any) -> dict:
    return {"layer": layer, "apiVersion": CRD_API, "kind": "CustomResourceDefinition", "name": name,
            "servedVersions": [version], "conditions": ["Established"], **extra}


def _deployment(layer: str, namespace: str, name: str) -> dict:
    return {"layer": layer, "apiVersion": "apps/v1", "kind": "Deployment", "namespace": namespace, "name": name,
            "conditions": ["Available"]}


def required_objects(args: ClusterCheckArgs) -> list[dict]:
    """The objects each layer the cluster runs must hold, and what must be true of them."""
    where, out = args.layers, []
    ready: list[dict] = []
    if not args.install.cert_manager:
        out += [_crd("certManager", f"{kind}.cert-manager.io", "v1")
                for kind in ("certificates", "issuers", "clusterissuers")]
        ready += [_deployment("certManager", where.cert_manager_namespace, d) for d in CERT_MANAGER_DEPLOYMENTS]
        ready.append({"layer": "certManager", "apiVersion": "admissionregistration.k8s.io/v1",
                      "kind": "ValidatingWebhookConfiguration", "name": CERT_MANAGER_WEBHOOK, "caBundle": True})
    if args.mode == "standard" and not args.install.gateway_api:
        out += [_crd("gatewayApi", f"{kind}.gateway.networking.k8s.io", "v1",
                     minimumBundleVersion=f"{args.gateway_api_minimum}.0") for kind in GATEWAY_API_CRDS]
        if not args.install.istio or where.gateway_class != Layers().gateway_class:
            out.append({"layer": "gatewayApi", "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                        "name": where.gateway_class})
            ready.append({**out[-1], "conditions": ["Accepted"]})
    if not args.install.istio:
        out.append(_crd("istio", "virtualservices.networking.istio.io", "v1beta1"))
        ready.append(_deployment("istio", where.istio_namespace, ISTIOD))
        if args.mode == "serverless":
            out.append({"layer": "istio", "apiVersion": "v1", "kind": "Service", "namespace": where.istio_namespace,
                        "name": where.ingress_gateway})
            ready.append(_deployment("istio", where.istio_namespace, where.ingress_gateway))
    if args.mode == "serverless" and not args.install.knative:
        out.append(_crd("knative", "services.serving.knative.dev", "v1"))
        if args.knative_features:
            out.append({"layer": "knative", "apiVersion": "v1", "kind": "ConfigMap", "name": "config-features",
                        "namespace": where.knative_namespace,
                        "data": dict.fromkeys(args.knative_features, "enabled")})
        ready += [_deployment("knative", where.knative_namespace, d) for d in KNATIVE_DEPLOYMENTS]
    return out + (ready if args.waits else [])


def foreign_objects(args: ClusterCheckArgs) -> list[dict]:
    """For each layer the stack installs: an object that shows the cluster already runs it, unless
    the layer's namespace is the stack's own (`charts.STACK_LABEL`: an earlier `up`, or one that
    failed half-way). Without this, the first `up` on such a cluster fails mid-way on an object that
    already exists (the 4.34 provider refuses to create one). The Gateway API CRDs have no
    namespace: the `kserve` namespace stands for the stack there. What `destroy` leaves behind
    (Knative Serving's CRDs, README) is no sign: the markers are Deployments and chart CRDs."""
    out = []

    def marker(layer, api_version, kind, name, owner, namespace=None):
        out.append({"layer": layer, "apiVersion": api_version, "kind": kind, "name": name, "ownerNamespace": owner,
                    **({"namespace": namespace} if namespace else {})})

    if args.install.cert_manager:
        marker("certManager", CRD_API, "CustomResourceDefinition", "certificates.cert-manager.io", CERT_MANAGER_NS)
    if args.install.istio:
        marker("istio", "apps/v1", "Deployment", ISTIOD, ISTIO_NS, ISTIO_NS)
    if args.mode == "standard" and args.install.gateway_api:
        marker("gatewayApi", CRD_API, "CustomResourceDefinition", "gateways.gateway.networking.k8s.io", KSERVE_NS)
    if args.mode == "serverless" and args.install.knative:
        marker("knative", "apps/v1", "Deployment", "controller", KNATIVE_NS, KNATIVE_NS)
    return out


def check_values(args: ClusterCheckArgs) -> dict:
    # The stack's own Knative sets the floor; a Knative the cluster already runs has met it.
    serving = args.knative_serving if args.mode == "serverless" and args.install.knative else ""
    minimum, key, why = kubernetes_floor(args.mode, serving)
    return {"kubernetes": {"minimum": minimum, "why": why, "key": key}, "objects": required_objects(args),
            "absent": foreign_objects(args)}


class ClusterCheck(pulumi.ComponentResource):
    """Registered first; every layer waits for it, so a cluster that cannot take the stack fails
    `preview` (and `up`) before anything is written."""

    chart: k8s.helm.v4.Chart

    def __init__(self, name: str, args: ClusterCheckArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:ClusterCheck", name, None, opts)
        values = check_values(args)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart", chart=f"./{CHART.as_posix()}", values=values, skip_await=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"objects": len(values["objects"])})

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [self.chart]
