"""One way to install a Helm chart, shared by every layer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import chart_order
from components.readiness import chart_transform
from settings.versions import ChartSource


def install_chart(
    resource_name: str,
    source: ChartSource,
    version: str,
    namespace: str,
    values: Mapping[str, Any],
    *,
    waits: bool,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    release_name: str | None = None,
    webhooks: Iterable[str] = (),
    transforms: Sequence[pulumi.ResourceTransform] = (),
    depends_on_within: Mapping[str, str] | None = None,
    image_registry: str | None = None,
) -> k8s.helm.v4.Chart:
    """helm.v4.Chart renders in the provider and registers each object as its own
    resource, so previews show per-object diffs and readiness gates apply per object.
    `depends_on_within` maps a kind to the objects of the same chart it must wait for
    (see chart_order)."""
    return k8s.helm.v4.Chart(
        resource_name,
        chart=source.reference(),
        version=None if source.path else version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=source.repo) if source.repo and not source.path else None,
        name=release_name,
        namespace=namespace,
        values=dict(values),
        skip_await=not waits,
        post_renderer=order_within(depends_on_within) if depends_on_within else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            transforms=[chart_transform(waits, webhooks), leave_to_controllers, delete_on_destroy,
                        *([registry_images(image_registry)] if image_registry else []), *transforms],
        ),
    )


def order_within(rules: Mapping[str, str]) -> k8s.helm.v4.PostRendererArgs:
    """The chart_order post-renderer, passed as source (not a path) so the Chart's inputs are
    the same on every machine."""
    source = Path(chart_order.__file__).read_text()
    return k8s.helm.v4.PostRendererArgs(command="python3", args=["-c", source, *(f"{k}={v}" for k, v in rules.items())])


def depends_on_ref(kind: str, name: str, group: str = "", namespace: str | None = None) -> str:
    """An object reference in the depends-on annotation's format."""
    return f"{group}/namespaces/{namespace}/{kind}/{name}" if namespace else f"{group}/{kind}/{name}"


STACK_LABEL = {"app.kubernetes.io/part-of": "kserve-stack"}
"""On every namespace the stack creates; the cluster check (components/cluster-check) reads it to
tell the stack's own layers from the cluster's."""


def namespace(resource_name: str, name: str, parent: pulumi.Resource,
              depends_on: Sequence[pulumi.Resource] = ()) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=dict(STACK_LABEL)),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def registry_image(registry: str | None, image: str) -> str:
    """Rewrite an image reference to a private registry, keeping its path and tag."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else image
    return f"{registry}/{path}"


ObjectPatch = Callable[[str, dict[str, Any]], dict[str, Any] | None]
"""(kind, rendered object properties) → new properties, or None to keep them."""


def patch_objects(patch: ObjectPatch) -> pulumi.ResourceTransform:
    """A chart transform from a function over one rendered Kubernetes object."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not args.type_.startswith("kubernetes:"):
            return None
        props = patch(args.type_.rsplit(":", 1)[-1], dict(args.props))
        return None if props is None else pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def _without_aggregated_rules(kind: str, props: dict[str, Any]) -> dict[str, Any] | None:
    """The aggregation controller owns the `rules` of a ClusterRole with an `aggregationRule`;
    a chart's `rules: []` for it would be a diff on every preview and wipe them on every up."""
    if kind == "ClusterRole" and props.get("aggregationRule") and "rules" in props:
        return {k: v for k, v in props.items() if k != "rules"}
    return None


leave_to_controllers = patch_objects(_without_aggregated_rules)


RESOURCE_POLICY = "helm.sh/resource-policy"


def delete_on_destroy(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """The stack removes everything it installed. A chart object marked `helm.sh/resource-policy:
    keep` (Istio's CRDs) would outlive `pulumi destroy` and make the next install meet an object
    that already exists, which the kubernetes provider refuses to create."""
    if not args.custom or not args.type_.startswith("kubernetes:"):
        return None
    metadata = args.props.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if RESOURCE_POLICY not in annotations:
        return None
    kept = {k: v for k, v in annotations.items() if k != RESOURCE_POLICY}
    props = {**args.props, "metadata": {**metadata, "annotations": kept}}
    return pulumi.ResourceTransformResult(props=props, opts=pulumi.ResourceOptions.merge(
        args.opts, pulumi.ResourceOptions(retain_on_delete=False)))


INJECTED_IMAGE = "auto"
"""Istio's placeholder: its injector fills in the gateway's image from istiod's `global.hub`."""


def _pod_specs(kind: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs (or runtime specs, which hold containers the same way) inside an object's spec."""
    if kind == "Pod":
        return [spec]
    if kind.endswith("ServingRuntime"):  # a multi-node runtime has a worker pod spec too
        return [spec, *([spec["workerSpec"]] if isinstance(spec.get("workerSpec"), dict) else [])]
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = (spec.get("template") or {}).get("spec")
    return [template] if isinstance(template, dict) else []


def registry_images(registry: str) -> pulumi.ResourceTransform:
    """Every container image of a chart's workloads and serving runtimes, from the mirror: one
    rule for every chart, whatever keys (if any) its values give for each image."""

    def image(ref: str) -> str:
        return ref if ref == INJECTED_IMAGE or ref.startswith(f"{registry}/") else registry_image(registry, ref)

    def patch(kind: str, props: dict[str, Any]) -> dict[str, Any] | None:
        spec = props.get("spec")
        if not isinstance(spec, dict):
            return None
        pods = _pod_specs(kind, spec)
        if not pods:
            return None
        for pod in pods:  # props are this transform's own copy
            for key in ("containers", "initContainers"):
                for container in pod.get(key) or []:
                    if container.get("image"):
                        container["image"] = image(container["image"])
        return props

    return patch_objects(patch)
