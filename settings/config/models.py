"""The models' config: each model's source, storage, runtime, replicas and resources.

`kserve-stack:models` is a list of models; `kserve-stack:model` stays as the one-model form.
Keys in messages name the list entry (`models[1].format`) or the one model (`model.format`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from settings import runtimes as rt
from settings.config.auth import Caller, read_callers
from settings.config.placement import read_node_selector, read_tolerations
from settings.config.reader import (
    DNS1035_LABEL,
    DNS1123_LABEL,
    Reader,
    boolean,
    canonical_quantity,
    dns_subdomain,
    parse_quantity,
)

MODEL_FILES: dict[str, tuple[str, ...]] = {
    "sklearn": (".joblib", ".pkl", ".pickle"),
    "xgboost": ("model.bst", "model.json", "model.ubj"),
    "lightgbm": ("model.bst",),
}
"""What a `path` model of a format must hold exactly one of (a suffix, or a whole file name): the
sklearn server loads the one file with such a suffix (kserve v0.20.0 python/sklearnserver), MLServer's
runtimes a well-known name (mlserver_xgboost / mlserver_lightgbm 1.5.0 WELLKNOWN_MODEL_FILENAMES)."""
CONFIGMAP_LIMIT = 1_000_000
"""A ConfigMap carries a `path` model to the cluster; Kubernetes caps one at 1 MiB."""

STORAGE_URI_SCHEMES = (
    "gs", "s3", "pvc", "file", "https", "http", "hdfs", "webhdfs", "oci", "oci+native", "hf",
)
PROTOCOLS = ("v1", "v2")
"""The HTTP protocols the gateway routes and the smoke test speaks (the gRPC ones are not routed)."""

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

LLM_FORMATS = ("huggingface",)
"""Formats served with the OpenAI-compatible routes (`/openai/v1/...`)."""

READY_TIMEOUT = 600
LLM_READY_TIMEOUT = 1800
"""An LLM's storage initializer downloads its weights before the server even starts loading them."""

DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
COMPUTE_RESOURCES = ("cpu", "memory", "ephemeral-storage")
EXTENDED_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
"""`<domain>/<name>` such as nvidia.com/gpu: Kubernetes counts them in whole units, never overcommitted."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LLM_REQUEST_TIMEOUT = 600
"""Standard mode's HTTPRoute cuts a request at 60 s unless the predictor says otherwise (kserve v0.20.0
httproute_reconciler.go DefaultTimeout); a long generation needs more."""


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
class EnvVar:
    """A predictor environment variable: a plain value, or an entry of `kserve-stack:secrets`."""

    name: str
    value: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    name: str
    namespace: str
    format: str
    protocol: Literal["v1", "v2"]
    runtime: str
    """Given, or what KServe's own selection picks for format and protocol (settings/runtimes)."""
    source: ModelSource
    storage: StorageConfig
    resources: dict[str, dict[str, str]]
    min_replicas: int
    max_replicas: int
    ready_timeout: int
    create_namespace: bool = True
    """False when the namespace already exists and belongs to someone else."""
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    hf_token: str | None = None
    """The `kserve-stack:secrets` entry holding a Hugging Face token, for gated models."""
    request_timeout: int | None = None
    """Seconds a request may take through the gateway (the predictor's `timeout`)."""
    shared_memory: str | None = None
    """The size of a memory-backed /dev/shm for the predictor (PyTorch workers, tensor parallelism)."""
    canary_traffic_percent: int | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    """Where the predictor may run (settings/config/placement), e.g. a tainted GPU pool."""
    callers: tuple[Caller, ...] = ()
    """Who may call it (settings/config/auth); none given: any token of the stack's audience."""
    key: str = ""
    """The config key the model came from (`model`, `models[2]`)."""

    @property
    def needs_pvc(self) -> bool:
        return not isinstance(self.source, UriSource)

    @property
    def shares_a_node(self) -> bool:
        """Every pod that mounts its claim must run on one node (ReadWriteOnce)."""
        return self.needs_pvc and self.storage.access_mode == "ReadWriteOnce"

    @property
    def is_llm(self) -> bool:
        return self.format in LLM_FORMATS

    @property
    def secrets(self) -> tuple[str, ...]:
        """The `kserve-stack:secrets` entries the model reads."""
        return tuple(e.secret for e in self.env if e.secret) + ((self.hf_token,) if self.hf_token else ())


MODEL_KEYS = {
    "name", "namespace", "format", "protocol", "runtime", "path", "image", "imagePath", "storageUri",
    "storage", "resources", "minReplicas", "maxReplicas", "readyTimeoutSeconds", "createNamespace",
    "args", "env", "hfToken", "sharedMemory", "canaryTrafficPercent", "requestTimeoutSeconds",
    "nodeSelector", "tolerations", "callers",
}
STORAGE_KEYS = {"size", "storageClass", "hostPath", "node", "accessMode"}


def _read_resources(r: Reader, raw: Any, key: str) -> dict[str, dict[str, str]]:
    data = r.obj(raw, key, {"requests", "limits"})
    out: dict[str, dict[str, str]] = {}
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("requests", "limits"):
        spec = data.get(section)
        if spec is not None and not isinstance(spec, dict):
            r.fail(f"{key}.{section}", spec, "expected an object")
            spec = {}
        out[section], parsed[section] = {}, {}
        for res, value in (spec or {}).items():
            res_key = f"{key}.{section}.{res}"
            quantity = parse_quantity(value)
            if res not in COMPUTE_RESOURCES and not EXTENDED_RESOURCE.match(str(res)):
                r.fail(res_key, value, f"unknown resource; allowed: {', '.join(COMPUTE_RESOURCES)} or an "
                       "extended resource <domain>/<name> such as nvidia.com/gpu")
                continue
            if res not in COMPUTE_RESOURCES:
                if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
                    r.fail(res_key, value, f"{res} is counted in whole units: expected a whole number >= 1")
                    continue
            elif quantity is None or quantity < 0:
                r.fail(res_key, value, "expected a non-negative Kubernetes quantity such as 500m, 1, 512Mi, 2Gi")
                continue
            elif res != "cpu" and str(value).strip().endswith("m"):
                r.fail(res_key, value, f"{res} in milli-bytes is almost surely a typo for Mi")
                continue
            out[section][res] = canonical_quantity(value) or str(value).strip()
            parsed[section][res] = quantity
    for res, request in parsed["requests"].items():
        limit = parsed["limits"].get(res)
        if limit is not None and request > limit:
            r.fail(f"{key}.requests.{res}", out["requests"][res],
                   f"must not exceed {key}.limits.{res} ({out['limits'][res]})")
        elif res not in COMPUTE_RESOURCES and limit is not None and request != limit:
            r.fail(f"{key}.requests.{res}", out["requests"][res],
                   f"an extended resource cannot be overcommitted: must equal {key}.limits.{res} "
                   f"({out['limits'][res]}), or leave it out")
    return out


def _read_node(r: Reader, key: str, raw: Any, host_path: Any) -> str | None:
    """A hostPath volume is one node's directory: its PV must say which node, or the copy Job
    writes on one node and the predictor reads an empty directory on another."""
    if raw is None:
        if host_path is not None:
            r.fail(f"{key}.storage.hostPath", host_path,
                   f"needs {key}.storage.node, the node whose directory holds the model "
                   "(its kubernetes.io/hostname label: kubectl get nodes -L kubernetes.io/hostname)")
        return None
    if host_path is None:
        r.fail(f"{key}.storage.node", raw, f"only goes with {key}.storage.hostPath (a provisioned claim has its "
               "own topology)")
    if not dns_subdomain(raw) or len(raw) > 63:
        r.fail(f"{key}.storage.node", raw, "expected the node's kubernetes.io/hostname label: a lowercase DNS name "
               "of at most 63 characters")
    return str(raw)


def _model_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _read_path_source(r: Reader, key: str, raw: Any, project_dir: Path, fmt: str) -> PathSource | None:
    path = Path(str(raw))
    full = path if path.is_absolute() else project_dir / path
    if not full.exists():
        r.fail(f"{key}.path", raw, "the path does not exist (relative paths start at the project directory)")
        return None
    files = _model_files(full)
    wanted = MODEL_FILES.get(fmt)
    if wanted:
        models = [f for f in files if f.name in wanted or f.suffix in wanted]
        if len(models) != 1:
            r.fail(f"{key}.path", raw,
                   f"a {fmt} model needs exactly one model file ({', '.join(wanted)}); found {len(models)}: "
                   f"{', '.join(f.name for f in models) or 'none'}")
    if full.is_dir() and any(p.is_dir() for p in full.iterdir()):
        r.fail(f"{key}.path", raw, "must be a flat directory (no subdirectories)")
    size = sum(f.stat().st_size for f in files)
    if size > CONFIGMAP_LIMIT:
        r.fail(f"{key}.path", raw, f"holds {size} bytes; a path model must stay under {CONFIGMAP_LIMIT} bytes "
               f"(use {key}.image or {key}.storageUri for larger models)")
    return PathSource(path=full, files=tuple(files))


def _read_source(r: Reader, key: str, data: dict[str, Any], project_dir: Path, fmt: str) -> ModelSource | None:
    given = [k for k in ("path", "image", "storageUri") if data.get(k) is not None]
    source: ModelSource | None = None
    if len(given) != 1:
        r.fail(key, {k: data[k] for k in given}, "give exactly one model source: path, image or storageUri")
    elif given == ["path"]:
        source = _read_path_source(r, key, data["path"], project_dir, fmt)
    elif given == ["image"]:
        image = r.text(data["image"], f"{key}.image")
        if image and (":" not in image.rsplit("/", 1)[-1] and "@" not in image or image.endswith(":latest")):
            r.fail(f"{key}.image", image, "pin a tag or digest other than latest (e.g. registry/model:1.0)")
        image_path = r.text(data.get("imagePath"), f"{key}.imagePath", "/app/model")
        if image_path and not image_path.startswith("/"):
            r.fail(f"{key}.imagePath", image_path, "expected an absolute path inside the image")
        source = ImageSource(image=image or "", path=image_path or "/app/model")
    else:
        uri = r.text(data["storageUri"], f"{key}.storageUri") or ""
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in STORAGE_URI_SCHEMES or not uri.split("://", 1)[1]:
            r.fail(f"{key}.storageUri", uri,
                   f"allowed schemes: {', '.join(s + '://' for s in STORAGE_URI_SCHEMES)}")
        source = UriSource(uri=uri)
    if "imagePath" in data and given != ["image"]:
        r.fail(f"{key}.imagePath", data["imagePath"], f"only goes with {key}.image")
    return source


def _read_storage(r: Reader, key: str, raw: Any, source: ModelSource | None) -> StorageConfig:
    data = r.obj(raw, f"{key}.storage", STORAGE_KEYS)
    size = str(data.get("size", "1Gi"))
    quantity = parse_quantity(size)
    if quantity is None or quantity <= 0:
        r.fail(f"{key}.storage.size", size, "expected a positive Kubernetes quantity such as 1Gi")
    host_path = data.get("hostPath")
    if host_path is not None and not str(host_path).startswith("/"):
        r.fail(f"{key}.storage.hostPath", host_path, "expected an absolute path on the node")
    node = _read_node(r, key, data.get("node"), host_path)
    if data.get("accessMode") == "ReadOnlyMany":
        r.fail(f"{key}.storage.accessMode", "ReadOnlyMany",
               f"the copy Job writes the model onto the claim (the predictor mounts it read-only anyway); "
               f"allowed: {', '.join(ACCESS_MODES)}")
        access = ACCESS_MODES[0]
    else:
        access = r.choice(data.get("accessMode"), f"{key}.storage.accessMode", ACCESS_MODES, ACCESS_MODES[0])
    storage_class = r.text(data.get("storageClass"), f"{key}.storage.storageClass")
    if data and isinstance(source, UriSource):
        r.fail(f"{key}.storage", data, "only goes with path or image (storageUri needs no PVC)")
    return StorageConfig(size=size, storage_class=storage_class, host_path=str(host_path) if host_path else None,
                         node=node, access_mode=access)


def _read_runtime(r: Reader, key: str, data: dict[str, Any], kserve: str) -> tuple[str, str, str]:
    """Format, protocol and runtime, as the pinned release's runtimes allow them."""
    formats = rt.formats(kserve)
    fmt = r.choice(data.get("format"), f"{key}.format", formats, "sklearn")
    served = rt.protocols(kserve, fmt)
    default_protocol = next((p for p in PROTOCOLS if rt.select_runtime(kserve, fmt, p)), "v1")
    protocol = r.choice(data.get("protocol"), f"{key}.protocol", PROTOCOLS, default_protocol)
    explicit = data.get("runtime")
    if explicit is not None:
        enabled = {x.name: x for x in rt.runtimes(kserve) if not x.disabled}
        runtime = enabled.get(explicit)
        if runtime is None or runtime.multi_node:
            r.fail(f"{key}.runtime", explicit, f"KServe {kserve} with the stack's runtimes has: "
                   f"{', '.join(sorted(x for x, run in enabled.items() if not run.multi_node))}"
                   + (" (a multi-node runtime needs a worker spec, which the stack does not make)"
                      if runtime is not None else ""))
        elif not rt.serves(runtime, fmt, protocol):
            allowed = sorted(x for x, run in enabled.items() if rt.serves(run, fmt, protocol) and not run.multi_node)
            r.fail(f"{key}.runtime", explicit,
                   f"it does not serve format {fmt!r} over protocol {protocol!r} in KServe {kserve}; "
                   f"runtimes that do: {', '.join(allowed) or 'none'}")
        return fmt, protocol, str(explicit)
    chosen = rt.select_runtime(kserve, fmt, protocol)
    if chosen is None:
        r.fail(f"{key}.protocol", protocol,
               f"no runtime of KServe {kserve} serves format {fmt!r} over it; protocols for {fmt!r}: "
               f"{', '.join(p for p in served if p in PROTOCOLS) or 'none the gateway routes'}"
               f" (or name {key}.runtime)")
        return fmt, protocol, ""
    return fmt, protocol, chosen.name


def _read_args(r: Reader, key: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(a, str | int | float) and not isinstance(a, bool)
                                            for a in raw):
        r.fail(f"{key}.args", raw, "expected a list of strings, e.g. [--max_model_len=4096, --dtype=float16]")
        return ()
    return tuple(str(a) for a in raw)


def _secret_ref(r: Reader, key: str, raw: Any, secrets: frozenset[str]) -> str | None:
    ref = raw.get("secret") if isinstance(raw, dict) and set(raw) == {"secret"} else None
    if not isinstance(ref, str):
        r.fail(key, raw, "expected {secret: NAME}, NAME an entry of kserve-stack:secrets")
        return None
    if ref not in secrets:
        r.fail(key, raw, f"kserve-stack:secrets has no entry {ref!r}; set it with "
               f"`pulumi config set --secret --path 'secrets.{ref}' VALUE`"
               + (f" (entries: {', '.join(sorted(secrets))})" if secrets else ""))
        return None
    return ref


def _read_env(r: Reader, key: str, raw: Any, secrets: frozenset[str]) -> tuple[EnvVar, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        r.fail(f"{key}.env", raw, "expected an object: NAME: value, or NAME: {secret: ENTRY}")
        return ()
    out = []
    for name, value in raw.items():
        env_key = f"{key}.env.{name}"
        if not ENV_NAME.match(str(name)):
            r.fail(env_key, name, "expected an environment variable name (letters, digits, '_'; not a digit first)")
        elif isinstance(value, dict):
            ref = _secret_ref(r, env_key, value, secrets)
            out.append(EnvVar(name=name, secret=ref))
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            out.append(EnvVar(name=name, value=str(value)))
        else:
            r.fail(env_key, value, "expected a string, or {secret: ENTRY} for a value kept secret")
    return tuple(out)


def read_model(r: Reader, raw: Any, mode: str, project_dir: Path, kserve: str, key: str = "model",
               secrets: frozenset[str] = frozenset(), auth_type: str = "kubernetes") -> ModelConfig:
    data = r.obj(raw, key, MODEL_KEYS)
    known = len(r.problems)
    name = r.dns_label(data.get("name", "model"), f"{key}.name", DNS1035_LABEL, MAX_MODEL_NAME,
                       "a DNS-1035 label (starting with a letter)")
    namespace = r.dns_label(data.get("namespace", "default"), f"{key}.namespace", DNS1123_LABEL, 63,
                            "a DNS-1123 label")
    if namespace in RESERVED_NAMESPACES:
        r.fail(f"{key}.namespace", namespace,
               f"reserved for the stack's own layers: {', '.join(RESERVED_NAMESPACES)}")
    host_label = f"{name}-predictor-{namespace}"
    if mode == "standard" and len(r.problems) == known and len(host_label) > MAX_HOST_LABEL:
        r.fail(f"{key}.name", name,
               f"with {key}.namespace {namespace!r}, standard mode's predictor host label {host_label!r} has "
               f"{len(host_label)} characters and KServe needs a DNS label of at most {MAX_HOST_LABEL} "
               f"(<name>-predictor-<namespace>): {key}.name and {key}.namespace may have at most "
               f"{MAX_HOST_LABEL - len('-predictor-')} characters together")
    fmt, protocol, runtime = _read_runtime(r, key, data, kserve)
    source = _read_source(r, key, data, project_dir, fmt)
    storage = _read_storage(r, key, data.get("storage"), source)

    min_replicas = r.integer(data.get("minReplicas"), f"{key}.minReplicas", 1)
    max_replicas = r.integer(data.get("maxReplicas"), f"{key}.maxReplicas", max(min_replicas, 1), minimum=1)
    if min_replicas > max_replicas:
        r.fail(f"{key}.minReplicas", min_replicas, f"must not exceed {key}.maxReplicas ({max_replicas})")
    if min_replicas == 0 and mode == "standard":
        r.fail(f"{key}.minReplicas", 0, "scale-to-zero needs mode serverless; standard needs at least 1")

    canary = data.get("canaryTrafficPercent")
    if canary is not None:
        if mode == "standard":
            r.fail(f"{key}.canaryTrafficPercent", canary,
                   "KServe's Standard mode ignores it (only its Knative reconciler splits traffic), and v0.20's "
                   "spec.canary sizes canary Deployments without routing them any traffic (weighted routes came "
                   "after it, kserve#5912); a canary needs mode serverless")
            canary = None
        else:
            canary = r.integer(canary, f"{key}.canaryTrafficPercent", 100)
            if not 0 <= canary <= 100:
                r.fail(f"{key}.canaryTrafficPercent", canary, "expected a percentage from 0 to 100")

    hf_token = None
    if data.get("hfToken") is not None:
        hf_token = _secret_ref(r, f"{key}.hfToken", data["hfToken"], secrets)
    shared_memory = None
    if data.get("sharedMemory") is not None:
        shared_memory = canonical_quantity(data["sharedMemory"])
        quantity = parse_quantity(data["sharedMemory"])
        if shared_memory is None or quantity is None or quantity <= 0:
            r.fail(f"{key}.sharedMemory", data["sharedMemory"], "expected a positive quantity such as 2Gi")
    llm = fmt in LLM_FORMATS
    return ModelConfig(
        name=name, namespace=namespace, format=fmt, protocol=protocol, runtime=runtime,
        source=source or UriSource(uri=""), storage=storage,
        resources=_read_resources(r, data.get("resources", DEFAULT_RESOURCES), f"{key}.resources"),
        min_replicas=min_replicas, max_replicas=max_replicas,
        ready_timeout=r.integer(data.get("readyTimeoutSeconds"), f"{key}.readyTimeoutSeconds",
                                LLM_READY_TIMEOUT if llm else READY_TIMEOUT, minimum=30),
        create_namespace=r.choice(boolean(data.get("createNamespace")), f"{key}.createNamespace", (True, False),
                                  True),
        args=_read_args(r, key, data.get("args")), env=_read_env(r, key, data.get("env"), secrets),
        hf_token=hf_token, shared_memory=shared_memory, canary_traffic_percent=canary, key=key,
        node_selector=read_node_selector(r, key, data.get("nodeSelector")),
        tolerations=read_tolerations(r, key, data.get("tolerations")),
        callers=read_callers(r, data.get("callers"), key, auth_type),
        request_timeout=r.integer(data.get("requestTimeoutSeconds"), f"{key}.requestTimeoutSeconds",
                                  LLM_REQUEST_TIMEOUT, minimum=1) if llm or "requestTimeoutSeconds" in data else None,
    )


def read_models(r: Reader, raw: dict[str, Any], mode: str, project_dir: Path, kserve: str,
                secrets: frozenset[str], auth_type: str = "kubernetes") -> tuple[ModelConfig, ...]:
    """`model` (one) or `models` (a list, possibly empty: the platform alone). Pulumi hands the
    program `model`'s declared default, `{}`, whenever the stack leaves it out."""
    if raw.get("model") not in (None, {}) and "models" in raw:
        r.fail("models", raw["models"], "give kserve-stack:model (one model) or kserve-stack:models (a list), "
               "not both")
        return ()
    if "models" not in raw:
        return (read_model(r, raw.get("model"), mode, project_dir, kserve, "model", secrets, auth_type),)
    listed = raw["models"]
    if not isinstance(listed, list):
        r.fail("models", listed, "expected a list of models (or [] for the platform alone)")
        return ()
    models = tuple(read_model(r, m, mode, project_dir, kserve, f"models[{i}]", secrets, auth_type)
                   for i, m in enumerate(listed))
    creates: dict[str, ModelConfig] = {}
    for m in models:
        first = creates.setdefault(m.namespace, m)
        if first.create_namespace != m.create_namespace:
            r.fail(f"{m.key}.createNamespace", m.create_namespace,
                   f"{first.key} in the same namespace {m.namespace!r} says {first.create_namespace}: "
                   "the models of a namespace agree whether the stack creates it")
    _refuse_shared_names(r, models, mode)
    seen = Counter((m.namespace, m.name) for m in models)
    for m in models:
        if seen[(m.namespace, m.name)] > 1:
            first = next(o for o in models if (o.namespace, o.name) == (m.namespace, m.name))
            if first is not m:
                r.fail(f"{m.key}.name", m.name,
                       f"{first.key} already publishes {m.name!r} in namespace {m.namespace!r}; "
                       "names are unique per namespace")
    return models


def _refuse_shared_names(r: Reader, models: tuple[ModelConfig, ...], mode: str) -> None:
    """Names joined with `-` can meet: `c` in `a-b` and `c-a` in `b`. Two models must not share a
    Gateway host (standard mode: `<name>-<namespace>.<domain>`) or a hostPath volume
    (`<namespace>-<name>-model-store`, cluster-wide)."""
    for label, what, applies in (
        ("host", lambda m: f"{m.name}-{m.namespace}", lambda m: mode == "standard"),
        ("volume", lambda m: f"{m.namespace}-{m.name}-model-store", lambda m: bool(m.storage.host_path)),
    ):
        taken: dict[str, ModelConfig] = {}
        for m in models:
            if not applies(m):
                continue
            first = taken.setdefault(what(m), m)
            if first is not m and (first.namespace, first.name) != (m.namespace, m.name):
                r.fail(f"{m.key}.name", m.name, f"in namespace {m.namespace!r} it gets the {label} "
                       f"{what(m)!r}, as {first.key} ({first.name!r} in {first.namespace!r}) does: rename one")


def resource_names(models: tuple[ModelConfig, ...]) -> dict[tuple[str, str], str]:
    """Each model's Pulumi name: its own name, as a one-model stack always had it, while no other
    model shares it; `<namespace>.<name>` for models that share a name. The order of the list
    never matters, so reordering it renames nothing (`resource_aliases` covers a name turning
    shared or unique)."""
    names = Counter(m.name for m in models)
    return {(m.namespace, m.name): m.name if names[m.name] == 1 else f"{m.namespace}.{m.name}" for m in models}


def resource_aliases(models: tuple[ModelConfig, ...],
                     deployed: tuple[tuple[str, str], ...] = ()) -> dict[tuple[str, str], list[str]]:
    """The name each model had in the previous `up`, where it changes, so that a name turning
    shared (another namespace publishes it too) or unique again (that one is removed) moves the
    model's resources instead of replacing them. `deployed` holds (name, namespace) of the models
    deployed under their bare name: only the one that was deployed so claims the bare name."""
    current = resource_names(models)
    bare = dict(deployed)
    out: dict[tuple[str, str], list[str]] = {}
    for m in models:
        key = (m.namespace, m.name)
        if current[key] == m.name:
            out[key] = [f"{m.namespace}.{m.name}"]
        else:
            out[key] = [m.name] if bare.get(m.name) == m.namespace else []
    return out


def output_keys(models: tuple[ModelConfig, ...]) -> dict[tuple[str, str], str]:
    """Each model's key in the `models` output: its name, or `namespace/name` when two share it."""
    names = Counter(m.name for m in models)
    return {(m.namespace, m.name): m.name if names[m.name] == 1 else f"{m.namespace}/{m.name}" for m in models}
