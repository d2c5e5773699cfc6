"""One way to install a Helm chart, shared by every layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

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
) -> k8s.helm.v4.Chart:
    """helm.v4.Chart renders in the provider and registers each object as its own
    resource, so previews show per-object diffs and readiness gates apply per object."""
    return k8s.helm.v4.Chart(
        resource_name,
        chart=source.reference(),
        version=None if source.path else version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=source.repo) if source.repo and not source.path else None,
        name=release_name,
        namespace=namespace,
        values=dict(values),
        skip_await=not waits,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            transforms=[chart_transform(waits, webhooks)],
        ),
    )


def namespace(resource_name: str, name: str, parent: pulumi.Resource,
              depends_on: Sequence[pulumi.Resource] = ()) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={"app.kubernetes.io/part-of": "kserve-stack"}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def registry_image(registry: str | None, image: str) -> str:
    """Rewrite an image reference to a private registry, keeping its path and tag."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else image
    return f"{registry}/{path}"
