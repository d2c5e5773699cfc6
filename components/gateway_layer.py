"""Gateway API: the standard-channel CRDs and the `istio` GatewayClass (standard mode)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.readiness import annotate_object, await_annotations

GATEWAY_CLASS = "istio"
ISTIO_CONTROLLER = "istio.io/gateway-controller"


@dataclass(frozen=True)
class GatewayLayerArgs:
    version: str
    crds: Sequence[Mapping[str, Any]]
    """The release's standard-install objects, already fetched and checksum-verified."""
    waits: bool
    gateway_class: bool = True
    """False where the cluster's istiod already runs: it makes the class `istio` itself as soon as
    the CRDs appear, and a create of ours would then meet it."""
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of this layer is written before the cluster passed it."""


class GatewayLayer(pulumi.ComponentResource):
    """The KServe controller looks for these CRDs once, at start-up, so they must be Established
    first. istiod picks them up whenever they appear (Istio 1.27 kclient.NewDelayedInformer and
    the CRD watcher) and then makes a class named `istio` itself when none exists
    (gateway/gatewayclass.go reconcileClass): the stack's class is created before the istiod it
    installs, which then only writes its status; a running istiod of the cluster's makes its own."""

    crds: k8s.yaml.v2.ConfigGroup
    gateway_class: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: GatewayLayerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:GatewayLayer", name, None, opts)
        self.crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds",
            objs=[annotate_object(obj, args.waits) for obj in args.crds],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        # With waits on there is nothing to wait for, and then no annotation map at all: the
        # provider keeps no empty one, so `annotations: {}` would be a diff on every preview.
        annotations = await_annotations(args.waits)
        self.gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": GATEWAY_CLASS, **({"annotations": annotations} if annotations else {})},
            spec={"controllerName": ISTIO_CONTROLLER},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds]),
        ) if args.gateway_class else None
        self.register_outputs({"version": args.version, "gateway_class": GATEWAY_CLASS})
