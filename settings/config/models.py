"""The model's config: its source, storage, replicas and resources."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from settings.config.reader import (
    DNS1035_LABEL,
    DNS1123_LABEL,
    Reader,
    boolean,
    canonical_quantity,
    dns_subdomain,
    parse_quantity,
)

MODEL_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")
CONFIGMAP_LIMIT = 1_000_000
"""A ConfigMap carries a `path` model to the cluster; Kubernetes caps one at 1 MiB."""

STORAGE_URI_SCHEMES = (
    "gs", "s3", "pvc", "file", "https", "http", "hdfs", "webhdfs", "oci", "oci+native", "hf",
)
FORMATS = {"sklearn": "kserve-sklearnserver"}
"""Model format → the ClusterServingRuntime that serves it (pinned so v2 keeps the sklearn server)."""

RESERVED_NAMESPACES = ("kserve", "kube-system", "istio-system", "cert-manager", "knative-operator", "knative-serving")
"""Namespaces the stack's own layers use; KServe's pod webhook skips the control-plane one."""

MAX_MODEL_NAME = 53
"""KServe derives `<name>-predictor` Services and hosts; 63 minus "-predictor" keeps them valid."""

MAX_HOST_LABEL = 63
"""Standard mode's hosts are `{{ .Name }}-{{ .Namespace }}.<domain>` for the InferenceService and for
its `<name>-predictor` component, and KServe refuses one whose first label is not a DNS-1123 label
(kserve v0.20.0 reconcilers/ingress/domain.go GenerateDomainName: IsFullyQualifiedDomainName). For the
predictor's host that happens in raw_kube_reconciler.go createRawURL, before any Deployment exists."""

ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany")
"""The copy Job writes the claim, so it cannot be ReadOnlyMany; the predictor mounts it read-only."""


@dataclass(frozen=True)
class PathSource:
    """Files in this repository, carried in a ConfigMap and copied onto the PVC by a Job."""

    path: Path
    files: tuple[Path, ...]


@dataclass(frozen=True)
class ImageSource:
    """An image that holds the model at `path`, copied onto the PVC by a Job."""

    image: str
    path: str


@dataclass(frozen=True)
class UriSource:
    """A storage URI KServe reads itself; no PVC."""

    uri: str


ModelSource = PathSource | ImageSource | UriSource


@dataclass(frozen=True)
class StorageConfig:
    size: str = "1Gi"
    storage_class: str | None = None
    host_path: str | None = None
    node: str | None = None
    """With `host_path`: the node (its `kubernetes.io/hostname` label) whose directory holds the model."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    namespace: str
    format: str
    protocol: Literal["v1", "v2"]
    source: ModelSource
    storage: StorageConfig
    resources: dict[str, dict[str, str]]
    min_replicas: int
    max_replicas: int
    ready_timeout: int
    create_namespace: bool = True
    """False when the namespace already exists and belongs to someone else."""

    @property
    def runtime(self) -> str:
        return FORMATS[self.format]

    @property
    def needs_pvc(self) -> bool:
        return not isinstance(self.source, UriSource)

    @property
    def shares_a_node(self) -> bool:
        """Every pod that mounts its claim must run on one node (ReadWriteOnce)."""
        return self.needs_pvc and self.storage.access_mode == "ReadWriteOnce"



MODEL_KEYS = {
    "name", "namespace", "format", "protocol", "path", "image", "imagePath", "storageUri",
    "storage", "resources", "minReplicas", "maxReplicas", "readyTimeoutSeconds", "createNamespace",
}
STORAGE_KEYS = {"size", "storageClass", "hostPath", "node", "accessMode"}



def _read_resources(r: Reader, raw: Any) -> dict[str, dict[str, str]]:
    data = r.obj(raw, "model.resources", {"requests", "limits"})
    out: dict[str, dict[str, str]] = {}
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("requests", "limits"):
        spec = r.obj(data.get(section), f"model.resources.{section}", {"cpu", "memory"})
        out[section], parsed[section] = {}, {}
        for res, value in spec.items():
            key = f"model.resources.{section}.{res}"
            quantity = parse_quantity(value)
            if quantity is None or quantity < 0:
                r.fail(key, value, "expected a non-negative Kubernetes quantity such as 500m, 1, 512Mi, 2Gi")
                continue
            if res == "memory" and str(value).strip().endswith("m"):
                r.fail(key, value, "memory in milli-bytes is almost surely a typo for Mi")
                continue
            out[section][res] = canonical_quantity(value) or str(value).strip()
            parsed[section][res] = quantity
    for res, request in parsed["requests"].items():
        limit = parsed["limits"].get(res)
        if limit is not None and request > limit:
            r.fail(f"model.resources.requests.{res}", out["requests"][res],
                   f"must not exceed model.resources.limits.{res} ({out['limits'][res]})")
    return out


def _read_node(r: Reader, raw: Any, host_path: Any) -> str | None:
    """A hostPath volume is one node's directory: its PV must say which node, or the copy Job
    writes on one node and the predictor reads an empty directory on another."""
    if raw is None:
        if host_path is not None:
            r.fail("model.storage.hostPath", host_path,
                   "needs model.storage.node, the node whose directory holds the model "
                   "(its kubernetes.io/hostname label: kubectl get nodes -L kubernetes.io/hostname)")
        return None
    if host_path is None:
        r.fail("model.storage.node", raw, "only goes with model.storage.hostPath (a provisioned claim has its own "
               "topology)")
    if not dns_subdomain(raw) or len(raw) > 63:
        r.fail("model.storage.node", raw, "expected the node's kubernetes.io/hostname label: a lowercase DNS name "
               "of at most 63 characters")
    return str(raw)


def _model_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _read_path_source(r: Reader, raw: Any, project_dir: Path) -> PathSource | None:
    path = Path(str(raw))
    full = path if path.is_absolute() else project_dir / path
    if not full.exists():
        r.fail("model.path", raw, "the path does not exist (relative paths start at the project directory)")
        return None
    files = _model_files(full)
    models = [f for f in files if f.suffix in MODEL_FILE_SUFFIXES]
    if len(models) != 1:
        r.fail("model.path", raw,
               f"needs exactly one model file ({', '.join(MODEL_FILE_SUFFIXES)}); found {len(models)}: "
               f"{', '.join(f.name for f in models) or 'none'}")
    if full.is_dir() and any(p.is_dir() for p in full.iterdir()):
        r.fail("model.path", raw, "must be a flat directory (no subdirectories)")
    size = sum(f.stat().st_size for f in files)
    if size > CONFIGMAP_LIMIT:
        r.fail("model.path", raw, f"holds {size} bytes; a path model must stay under {CONFIGMAP_LIMIT} bytes "
               "(use model.image or model.storageUri for larger models)")
    return PathSource(path=full, files=tuple(files))



def read_model(r: Reader, raw: Any, mode: str, project_dir: Path) -> ModelConfig:
    data = r.obj(raw, "model", MODEL_KEYS)
    known = len(r.problems)
    name = r.dns_label(data.get("name", "model"), "model.name", DNS1035_LABEL, MAX_MODEL_NAME,
                       "a DNS-1035 label (starting with a letter)")
    namespace = r.dns_label(data.get("namespace", "default"), "model.namespace", DNS1123_LABEL, 63,
                            "a DNS-1123 label")
    if namespace in RESERVED_NAMESPACES:
        r.fail("model.namespace", namespace, f"reserved for the stack's own layers: {', '.join(RESERVED_NAMESPACES)}")
    host_label = f"{name}-predictor-{namespace}"
    if mode == "standard" and len(r.problems) == known and len(host_label) > MAX_HOST_LABEL:
        r.fail("model.name", name,
               f"with model.namespace {namespace!r}, standard mode's predictor host label {host_label!r} has "
               f"{len(host_label)} characters and KServe needs a DNS label of at most {MAX_HOST_LABEL} "
               f"(<model.name>-predictor-<model.namespace>): model.name and model.namespace may have at most "
               f"{MAX_HOST_LABEL - len('-predictor-')} characters together")
    fmt = r.choice(data.get("format"), "model.format", tuple(FORMATS), "sklearn")
    protocol = r.choice(data.get("protocol"), "model.protocol", ("v1", "v2"), "v1")

    given = [k for k in ("path", "image", "storageUri") if data.get(k) is not None]
    source: ModelSource | None = None
    if len(given) != 1:
        r.fail("model", {k: data[k] for k in given}, "give exactly one model source: path, image or storageUri")
    elif given == ["path"]:
        source = _read_path_source(r, data["path"], project_dir)
    elif given == ["image"]:
        image = r.text(data["image"], "model.image")
        if image and (":" not in image.rsplit("/", 1)[-1] and "@" not in image or image.endswith(":latest")):
            r.fail("model.image", image, "pin a tag or digest other than latest (e.g. registry/model:1.0)")
        image_path = r.text(data.get("imagePath"), "model.imagePath", "/app/model")
        if image_path and not image_path.startswith("/"):
            r.fail("model.imagePath", image_path, "expected an absolute path inside the image")
        source = ImageSource(image=image or "", path=image_path or "/app/model")
    else:
        uri = r.text(data["storageUri"], "model.storageUri") or ""
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in STORAGE_URI_SCHEMES or not uri.split("://", 1)[1]:
            r.fail("model.storageUri", uri, f"allowed schemes: {', '.join(s + '://' for s in STORAGE_URI_SCHEMES)}")
        source = UriSource(uri=uri)
    if "imagePath" in data and given != ["image"]:
        r.fail("model.imagePath", data["imagePath"], "only goes with model.image")

    storage_data = r.obj(data.get("storage"), "model.storage", STORAGE_KEYS)
    size = str(storage_data.get("size", "1Gi"))
    quantity = parse_quantity(size)
    if quantity is None or quantity <= 0:
        r.fail("model.storage.size", size, "expected a positive Kubernetes quantity such as 1Gi")
    host_path = storage_data.get("hostPath")
    if host_path is not None and not str(host_path).startswith("/"):
        r.fail("model.storage.hostPath", host_path, "expected an absolute path on the node")
    node = _read_node(r, storage_data.get("node"), host_path)
    if storage_data.get("accessMode") == "ReadOnlyMany":
        r.fail("model.storage.accessMode", "ReadOnlyMany",
               f"the copy Job writes the model onto the claim (the predictor mounts it read-only anyway); "
               f"allowed: {', '.join(ACCESS_MODES)}")
        access = ACCESS_MODES[0]
    else:
        access = r.choice(storage_data.get("accessMode"), "model.storage.accessMode", ACCESS_MODES, ACCESS_MODES[0])
    storage_class = r.text(storage_data.get("storageClass"), "model.storage.storageClass")
    if storage_data and isinstance(source, UriSource):
        r.fail("model.storage", storage_data, "only goes with model.path or model.image (storageUri needs no PVC)")

    min_replicas = r.integer(data.get("minReplicas"), "model.minReplicas", 1)
    max_replicas = r.integer(data.get("maxReplicas"), "model.maxReplicas", max(min_replicas, 1), minimum=1)
    if min_replicas > max_replicas:
        r.fail("model.minReplicas", min_replicas, f"must not exceed model.maxReplicas ({max_replicas})")
    if min_replicas == 0 and mode == "standard":
        r.fail("model.minReplicas", 0, "scale-to-zero needs mode serverless; standard needs at least 1")

    resources = _read_resources(r, data.get("resources", {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"},
    }))
    return ModelConfig(
        name=name, namespace=namespace, format=fmt, protocol=protocol,
        source=source or UriSource(uri=""),
        storage=StorageConfig(size=size, storage_class=storage_class,
                              host_path=str(host_path) if host_path else None, node=node, access_mode=access),
        resources=resources, min_replicas=min_replicas, max_replicas=max_replicas,
        ready_timeout=r.integer(data.get("readyTimeoutSeconds"), "model.readyTimeoutSeconds", 600, minimum=30),
        create_namespace=r.choice(boolean(data.get("createNamespace")), "model.createNamespace", (True, False), True),
    )

