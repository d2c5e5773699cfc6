"""The models' namespaces: one Namespace per namespace the stack creates, however many models
it holds, so that removing a model never takes the namespace (and the other models in it) along."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from settings.config import ModelConfig

MODEL_SERVICE_TYPE = "kserve-stack:layers:ModelService"


@dataclass(frozen=True)
class ModelNamespacesArgs:
    models: tuple[ModelConfig, ...]
    after: Sequence[pulumi.Resource] = ()


def created(models: tuple[ModelConfig, ...]) -> list[str]:
    """The namespaces the stack makes: not `default`, and not one a model says exists already."""
    return sorted({m.namespace for m in models if m.namespace != "default" and m.create_namespace})


class ModelNamespaces(pulumi.ComponentResource):
    """Before several models, the one model made its own namespace as `<model>-namespace` under
    its ModelService, named as the model: the aliases carry such a Namespace over to this one
    instead of deleting it."""

    namespaces: dict[str, k8s.core.v1.Namespace]

    def __init__(self, name: str, args: ModelNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:ModelNamespaces", name, None, opts)
        self.namespaces = {}
        for ns in created(args.models):
            owners = [m.name for m in args.models if m.namespace == ns]
            self.namespaces[ns] = k8s.core.v1.Namespace(
                f"{name}-{ns}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ns),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(args.after),
                    aliases=[pulumi.Alias(name=f"{owner}-namespace",
                                          parent=pulumi.create_urn(owner, MODEL_SERVICE_TYPE)) for owner in owners],
                ),
            )
        self.register_outputs({"namespaces": sorted(self.namespaces)})
