"""A model's files on a claim: the volume, the claim, the ConfigMap carrying a `path` model, and
the pod affinity every pod that mounts a ReadWriteOnce claim needs."""

from __future__ import annotations

import base64
import hashlib

import pulumi
import pulumi_kubernetes as k8s

from components.readiness import SKIP_AWAIT
from settings.config import ImageSource, ModelConfig, PathSource

MOUNT = "/mnt/models"
HOST_PATH_ANNOTATION = "kserve-stack/host-path"
MANUAL_STORAGE_CLASS = "kserve-stack-manual"
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
"""KServe labels an InferenceService's pods with its name."""
CLAIM_LABEL = "kserve-stack/model-store"
"""The ReadWriteOnce claim a pod mounts (`claim_affinity`)."""


def model_digest(model: ModelConfig) -> str:
    """Changes whenever the served bytes may change, so the copy Job and the predictor roll."""
    h = hashlib.sha256()
    source = model.source
    if isinstance(source, PathSource):
        for f in source.files:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    elif isinstance(source, ImageSource):
        h.update(f"{source.image}\0{source.path}".encode())
    else:
        h.update(source.uri.encode())
    return h.hexdigest()


def version_of(digest: str) -> str:
    return digest[:12]


def claim_name(model: ModelConfig) -> str:
    return f"{model.name}-model-store"


def claim_affinity(model: ModelConfig, claim: str) -> dict | None:
    """A ReadWriteOnce claim mounts on one node at a time, so every pod that mounts it (the copy
    Job's; every predictor replica, rollout and Knative revision) carries `CLAIM_LABEL` and needs a
    pod carrying it on its node. The first one goes anywhere: when no pod matches the term, a pod
    that matches its own term passes (kubernetes v1.34 pkg/scheduler/framework/plugins/
    interpodaffinity/filtering.go, satisfyPodAffinity). A finished pod no longer counts (the
    scheduler watches non-terminal pods only: pkg/scheduler/scheduler.go, newPodInformer) and no
    longer holds the volume (attach-detach util.DetermineVolumeAction), so the finished copy Job
    pins nothing. A pod on a lost node counts until it is deleted, as the node's volume stays
    attached until then. The preferred term finds predictor pods made before the label existed."""
    if not model.shares_a_node:
        return None
    return {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {CLAIM_LABEL: claim}}},
        ],
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {ISVC_POD_LABEL: model.name}}},
        }],
    }}


def volume(name: str, model: ModelConfig, parent: pulumi.Resource,
           after: list[pulumi.Resource]) -> k8s.core.v1.PersistentVolume | None:
    """A hostPath volume is one node's directory: its node affinity puts every pod that uses the
    claim on that node."""
    storage = model.storage
    if not storage.host_path:
        return None
    return k8s.core.v1.PersistentVolume(
        f"{name}-volume",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{model.namespace}-{model.name}-model-store",
                                            annotations={HOST_PATH_ANNOTATION: "enabled"}),
        spec=k8s.core.v1.PersistentVolumeSpecArgs(
            storage_class_name=MANUAL_STORAGE_CLASS,
            capacity={"storage": storage.size},
            access_modes=[storage.access_mode],
            persistent_volume_reclaim_policy="Retain",
            host_path=k8s.core.v1.HostPathVolumeSourceArgs(path=storage.host_path, type="DirectoryOrCreate"),
            node_affinity=k8s.core.v1.VolumeNodeAffinityArgs(required=k8s.core.v1.NodeSelectorArgs(
                node_selector_terms=[k8s.core.v1.NodeSelectorTermArgs(match_expressions=[
                    k8s.core.v1.NodeSelectorRequirementArgs(
                        key="kubernetes.io/hostname", operator="In", values=[storage.node]),
                ])],
            )) if storage.node else None,
            claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=model.namespace, name=claim_name(model)),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def claim(name: str, model: ModelConfig, parent: pulumi.Resource, after: list[pulumi.Resource],
          pv: k8s.core.v1.PersistentVolume | None) -> k8s.core.v1.PersistentVolumeClaim:
    storage = model.storage
    return k8s.core.v1.PersistentVolumeClaim(
        f"{name}-claim",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=claim_name(model), namespace=model.namespace,
            # Binding may wait for the first consumer: the copy Job completing is the gate.
            annotations={SKIP_AWAIT: "true"},
        ),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=[storage.access_mode],
            storage_class_name=MANUAL_STORAGE_CLASS if storage.host_path else storage.storage_class,
            volume_name=f"{model.namespace}-{model.name}-model-store" if storage.host_path else None,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*after, *([pv] if pv else [])]),
    )


def files_name(model: ModelConfig) -> str:
    return f"{model.name}-model-files"


def files(name: str, model: ModelConfig, parent: pulumi.Resource,
          after: list[pulumi.Resource]) -> k8s.core.v1.ConfigMap | None:
    """A `path` model's files, for the copy Job to copy onto the claim."""
    if not isinstance(model.source, PathSource):
        return None
    return k8s.core.v1.ConfigMap(
        f"{name}-files",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=files_name(model), namespace=model.namespace),
        binary_data={f.name: base64.b64encode(f.read_bytes()).decode() for f in model.source.files},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
