"""Stack configuration: parsed once into frozen, typed objects and validated up front.

Every problem is reported before a single resource is registered, so a typo in a stack
file fails `pulumi preview` instead of half-installing a cluster. Each message names the
config key, the bad value and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from settings import upgrades
from settings import versions as v

PROJECT = "kserve-stack"
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

Readiness = Literal["wait", "skip"]
SmokeTest = Literal["auto", "on", "off"]
ServiceType = Literal["LoadBalancer", "NodePort", "ClusterIP"]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"),
            "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
            "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}
MAX_MODEL_NAME = 53
"""KServe derives `<name>-predictor` Services and hosts; 63 minus "-predictor" keeps them valid."""


class ConfigError(ValueError):
    """All config problems found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Versions:
    kserve: str
    cert_manager: str
    istio: str
    gateway_api: str
    knative: str
    """The Knative Operator release."""
    knative_serving: str
    """The Serving release the operator installs (KnativeServing.spec.version)."""


@dataclass(frozen=True)
class TlsIssuer:
    kind: Literal["Issuer", "ClusterIssuer"]
    name: str


@dataclass(frozen=True)
class GatewayConfig:
    service_type: ServiceType = "LoadBalancer"
    tls_issuer: TlsIssuer | None = None
    """None: the stack makes a self-signed issuer for the gateway certificate."""


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
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"] = "ReadWriteOnce"


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


@dataclass(frozen=True)
class StackConfig:
    mode: v.Mode
    domain: str
    readiness: Readiness
    smoke_test: SmokeTest
    image_registry: str | None
    versions: Versions
    charts: dict[str, v.ChartSource]
    gateway_api_crds: v.ManifestSource
    gateway: GatewayConfig
    model: ModelConfig
    project_dir: Path = field(default=Path("."), compare=False)
    kept_crds: tuple[str, ...] = ()
    """CRDs an earlier KServe release of this stack installed that this one no longer ships."""

    @property
    def kserve(self) -> v.KServeRelease:
        return v.kserve_release(self.versions.kserve)

    @property
    def waits(self) -> bool:
        return self.readiness == "wait"


TOP_LEVEL_KEYS = {
    "mode", "domain", "readiness", "smokeTest", "imageRegistry", "versions", "sources", "gateway", "model",
}
MODEL_KEYS = {
    "name", "namespace", "format", "protocol", "path", "image", "imagePath", "storageUri",
    "storage", "resources", "minReplicas", "maxReplicas", "readyTimeoutSeconds", "createNamespace",
}


_SI_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_BY_POWER = {10 * i: s for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}


def canonical_quantity(text: Any) -> str | None:
    """The spelling Kubernetes itself gives a quantity when it re-marshals it (apimachinery
    `resource.Quantity`'s canonical form): `0.5` → `500m`, `2048Mi` → `2Gi`, `1000m` → `1`.
    KServe's defaulter re-marshals an InferenceService's resources that way, and the provider
    compares inputs with what the cluster holds, so a non-canonical input diffs on every preview.
    Binary suffixes stay binary for whole numbers of at least 1024; exponent notation stays
    exponent notation; anything else is decimal SI. A quantity keeps at most three decimal
    places: finer ones round up (`0.0001` → `1m`), as Kubernetes documents for Quantity."""
    m = _QUANTITY.match(str(text).strip())
    value = parse_quantity(text)
    if m is None or value is None:
        return None
    exponent, suffix = m.group(3), m.group(4)
    millis = (value * 1000).to_integral_value(rounding="ROUND_CEILING")
    if millis == 0:
        return "0"
    if suffix in _BINARY and millis % 1000 == 0 and abs(value) >= 1024:
        whole = int(value)
        power = max(p for p in _BINARY_BY_POWER if whole % (1 << p) == 0 and p <= 60)
        return f"{whole >> power if whole > 0 else -((-whole) >> power)}{_BINARY_BY_POWER[power]}"
    scale = max(e for e in _SI_SUFFIXES if millis % 10 ** (e + 3) == 0)
    mantissa = int(millis) // 10 ** (scale + 3)
    if exponent:
        return f"{mantissa}e{scale}" if scale else str(mantissa)
    return f"{mantissa}{_SI_SUFFIXES[scale]}"


def parse_quantity(text: Any) -> Decimal | None:
    """A Kubernetes resource quantity as a number, or None when it is not one."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        return None
    sign, number, exponent, suffix = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if exponent:
        value *= Decimal(10) ** int(exponent[1:])
    elif suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix:
        value *= _DECIMAL[suffix]
    return -value if sign == "-" else value


class _Reader:
    """Collects problems while reading raw config values; every message names its key."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{PROJECT}:{key}: {value!r} is not allowed; {allowed}")

    def obj(self, raw: Any, key: str, allowed_keys: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.fail(key, raw, "expected an object")
            return {}
        for unknown in sorted(set(raw) - allowed_keys):
            self.fail(f"{key}.{unknown}", raw[unknown], f"unknown key; known keys: {', '.join(sorted(allowed_keys))}")
        return dict(raw)

    def choice(self, raw: Any, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        if raw is None and default is not None:
            return default
        if raw not in choices:
            self.fail(key, raw, f"allowed: {', '.join(map(str, choices))}")
            return choices[0]
        return raw

    def text(self, raw: Any, key: str, default: str | None = None) -> str | None:
        if raw is None:
            return default
        if not isinstance(raw, str) or not raw.strip():
            self.fail(key, raw, "expected a non-empty string")
            return default
        return raw.strip()

    def integer(self, raw: Any, key: str, default: int, minimum: int = 0) -> int:
        if raw is None:
            return default
        try:
            value = int(str(raw), 10)
        except ValueError:
            self.fail(key, raw, f"expected a whole number >= {minimum}")
            return default
        if value < minimum:
            self.fail(key, raw, f"expected a whole number >= {minimum}")
        return value

    def dns_label(self, raw: Any, key: str, pattern: re.Pattern[str], limit: int, what: str) -> str:
        if not isinstance(raw, str) or len(raw) > limit or not pattern.match(raw):
            self.fail(key, raw, f"must be {what} of at most {limit} characters (lowercase letters, digits, '-')")
        return raw if isinstance(raw, str) else str(raw)


def _dns_subdomain(value: Any) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        return False
    return all(_DNS1123_LABEL.match(label) and len(label) <= 63 for label in value.split("."))


def _read_versions(r: _Reader, raw: Any) -> Versions:
    data = {k: str(val) for k, val in r.obj(raw, "versions", set(v.VERSION_KEYS)).items()}
    kserve = data.get("kserve", v.DEFAULT_KSERVE)
    try:
        release = v.kserve_release(kserve)
    except ValueError:
        if v.parse_version(kserve) is None:
            r.fail("versions.kserve", kserve, "expected a release version such as v0.20.0")
        else:
            r.fail("versions.kserve", kserve, f"supported: {v.SUPPORTED_KSERVE}")
        release = v.kserve_release(v.DEFAULT_KSERVE)
    merged = {**v.default_versions(release.version), **data}
    for key in ("certManager", "istio", "gatewayApi", "knative"):
        value = merged[key]
        if v.parse_version(value) is None:
            r.fail(f"versions.{key}", value, "expected a release version such as 1.2.3 or v1.2.3")
        elif key != "certManager" and not v.in_range(value, bounds := release.compat.window(key)):
            r.fail(f"versions.{key}", value, f"KServe {release.version} supports {key} {bounds[0]} to {bounds[1]}")
        elif key == "certManager" and v.minor_of(value) < (1, 15):
            r.fail("versions.certManager", value, f"KServe {release.version} needs cert-manager 1.15 or newer")
    serving = merged["knativeServing"]
    if "knative" in data and "knativeServing" not in data and v.parse_version(merged["knative"]):
        serving = ".".join(map(str, v.minor_of(merged["knative"])))  # the newest bundled patch of that minor
    if v.parse_version(serving) is None and not re.fullmatch(r"\d+\.\d+", serving):
        r.fail("versions.knativeServing", serving, "expected a Serving release such as 1.21.1, or a minor such as 1.21")
    elif v.parse_version(merged["knative"]):
        low, high = v.bundled_serving(merged["knative"])
        if not v.in_range(serving if serving.count(".") == 2 else f"{serving}.0", (low, high)):
            r.fail("versions.knativeServing", serving,
                   f"the Knative Operator {merged['knative']} installs Serving {low} to {high} only")
    return Versions(
        kserve=merged["kserve"], cert_manager=merged["certManager"], istio=merged["istio"],
        gateway_api=merged["gatewayApi"], knative=merged["knative"], knative_serving=serving.removeprefix("v"),
    )


def _read_sources(r: _Reader, raw: Any, kserve_version: str) -> tuple[dict[str, v.ChartSource], v.ManifestSource]:
    data = r.obj(raw, "sources", set(v.SOURCE_KEYS))
    charts = dict(v.DEFAULT_CHARTS)
    try:
        release = v.kserve_release(kserve_version)
        charts["kserve"] = v.ChartSource(chart=release.controller_chart, oci=charts["kserve"].oci)
    except ValueError:
        pass
    for name in v.DEFAULT_CHARTS:
        if name not in data:
            continue
        spec = r.obj(data[name], f"sources.{name}", {"chart", "repo", "oci", "path"})
        given = [k for k in ("repo", "oci", "path") if spec.get(k)]
        if len(given) != 1:
            r.fail(f"sources.{name}", data[name], "give exactly one of repo, oci, path")
            continue
        if "oci" in given and not str(spec["oci"]).startswith("oci://"):
            r.fail(f"sources.{name}.oci", spec["oci"], "expected an oci:// reference")
        charts[name] = v.ChartSource(chart=spec.get("chart", charts[name].chart), **{given[0]: str(spec[given[0]])})
    manifest = None
    if "gatewayApiCrds" in data:
        spec = r.obj(data["gatewayApiCrds"], "sources.gatewayApiCrds", {"url", "sha256", "path"})
        if bool(spec.get("url")) == bool(spec.get("path")):
            r.fail("sources.gatewayApiCrds", data["gatewayApiCrds"], "give exactly one of url (with sha256) or path")
        elif spec.get("url") and not re.fullmatch(r"[0-9a-f]{64}", str(spec.get("sha256", ""))):
            r.fail("sources.gatewayApiCrds.sha256", spec.get("sha256"),
                   f"the url {spec['url']} needs its sha256 (64 hex digits)")
        else:
            files = ((str(spec["url"]), str(spec["sha256"])),) if spec.get("url") else ()
            manifest = v.ManifestSource(files=files, path=spec.get("path"))
    return charts, manifest


def _read_gateway(r: _Reader, raw: Any) -> GatewayConfig:
    data = r.obj(raw, "gateway", {"serviceType", "tlsIssuer"})
    service_type = r.choice(data.get("serviceType"), "gateway.serviceType",
                            ("LoadBalancer", "NodePort", "ClusterIP"), "LoadBalancer")
    issuer = None
    if data.get("tlsIssuer") is not None:
        spec = r.obj(data["tlsIssuer"], "gateway.tlsIssuer", {"kind", "name"})
        kind = r.choice(spec.get("kind"), "gateway.tlsIssuer.kind", ("ClusterIssuer", "Issuer"), "ClusterIssuer")
        name = r.dns_label(spec.get("name"), "gateway.tlsIssuer.name", _DNS1123_LABEL, 253, "a DNS-1123 name")
        issuer = TlsIssuer(kind=kind, name=name)
    return GatewayConfig(service_type=service_type, tls_issuer=issuer)


def _read_resources(r: _Reader, raw: Any) -> dict[str, dict[str, str]]:
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


def _model_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _read_path_source(r: _Reader, raw: Any, project_dir: Path) -> PathSource | None:
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


def _boolean(value: Any) -> Any:
    """`pulumi config set --path` stores true/false as strings unless told otherwise."""
    return {"true": True, "false": False}.get(value.lower(), value) if isinstance(value, str) else value


def _read_model(r: _Reader, raw: Any, mode: str, project_dir: Path) -> ModelConfig:
    data = r.obj(raw, "model", MODEL_KEYS)
    name = r.dns_label(data.get("name", "model"), "model.name", _DNS1035_LABEL, MAX_MODEL_NAME,
                       "a DNS-1035 label (starting with a letter)")
    namespace = r.dns_label(data.get("namespace", "default"), "model.namespace", _DNS1123_LABEL, 63,
                            "a DNS-1123 label")
    if namespace in RESERVED_NAMESPACES:
        r.fail("model.namespace", namespace, f"reserved for the stack's own layers: {', '.join(RESERVED_NAMESPACES)}")
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

    storage_data = r.obj(data.get("storage"), "model.storage", {"size", "storageClass", "hostPath", "accessMode"})
    size = str(storage_data.get("size", "1Gi"))
    quantity = parse_quantity(size)
    if quantity is None or quantity <= 0:
        r.fail("model.storage.size", size, "expected a positive Kubernetes quantity such as 1Gi")
    host_path = storage_data.get("hostPath")
    if host_path is not None and not str(host_path).startswith("/"):
        r.fail("model.storage.hostPath", host_path, "expected an absolute path on the node")
    access = r.choice(storage_data.get("accessMode"), "model.storage.accessMode",
                      ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"), "ReadWriteOnce")
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
                              host_path=str(host_path) if host_path else None, access_mode=access),
        resources=resources, min_replicas=min_replicas, max_replicas=max_replicas,
        ready_timeout=r.integer(data.get("readyTimeoutSeconds"), "model.readyTimeoutSeconds", 600, minimum=30),
        create_namespace=r.choice(_boolean(data.get("createNamespace")), "model.createNamespace", (True, False), True),
    )


def parse(raw: Mapping[str, Any], project_dir: Path = Path("."),
          deployed: upgrades.Deployed = upgrades.NEW_STACK) -> StackConfig:
    """Validate raw config values (keys without the `kserve-stack:` prefix), and, on a deployed
    stack, that they can replace what the previous `up` installed."""
    r = _Reader()
    for unknown in sorted(set(raw) - TOP_LEVEL_KEYS):
        r.fail(unknown, raw[unknown], f"unknown key; known keys: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    mode = r.choice(raw.get("mode"), "mode", ("standard", "serverless"))
    domain = raw.get("domain", "example.com")
    if not _dns_subdomain(domain) or "." not in domain:
        r.fail("domain", domain, "expected a DNS name such as example.com (lowercase labels joined by dots)")
    readiness = r.choice(raw.get("readiness"), "readiness", ("wait", "skip"), "wait")
    smoke_test = r.choice(raw.get("smokeTest"), "smokeTest", ("auto", "on", "off"), "auto")
    registry = r.text(raw.get("imageRegistry") or None, "imageRegistry")
    if registry and ("://" in registry or registry.endswith("/")):
        r.fail("imageRegistry", registry,
               "expected a registry host with optional path, e.g. registry.local:5000/mirror")
    if smoke_test == "on" and readiness == "skip":
        r.fail("smokeTest", smoke_test, "needs readiness wait (a skipped wait has no model to call)")
    versions = _read_versions(r, raw.get("versions"))
    if mode == "serverless" and v.parse_version(versions.istio) and not v.istio_gateway_chart_renders(versions.istio):
        fixed = ", ".join(f"{a}.{b}.{c}+" for (a, b), c in v.ISTIO_GATEWAY_CHART_FIXED.items())
        r.fail("versions.istio", versions.istio,
               f"its gateway chart fails its own values schema with current Helm (istio/istio#57354); "
               f"serverless needs Istio {fixed} or a later minor")
    if registry and mode == "serverless" and v.parse_version(versions.knative_serving) is None:
        r.fail("versions.knativeServing", versions.knative_serving,
               "with imageRegistry the mirror's Knative tags need a full Serving release such as 1.21.1")
    if mode in ("standard", "serverless") and not r.problems:
        for key, value, allowed in upgrades.problems(deployed, mode, versions.kserve, versions.knative_serving):
            r.fail(key, value, allowed)
    charts, manifest = _read_sources(r, raw.get("sources"), versions.kserve)
    if manifest is None:
        manifest = v.gateway_api_manifest(versions.gateway_api)
        if manifest is None:
            manifest = v.ManifestSource()
            if mode == "standard":
                r.fail("versions.gatewayApi", versions.gateway_api,
                       f"no pinned checksums for this release; pinned: {', '.join(v.GATEWAY_API_FILES)}"
                       " (or set sources.gatewayApiCrds to {url, sha256} or {path})")
    config = StackConfig(
        mode=mode, domain=domain, readiness=readiness, smoke_test=smoke_test, image_registry=registry,
        versions=versions, charts=charts, gateway_api_crds=manifest, gateway=_read_gateway(r, raw.get("gateway")),
        model=_read_model(r, raw.get("model"), mode, project_dir), project_dir=project_dir,
        kept_crds=upgrades.kept_crds(deployed, versions.kserve) if not r.problems else (),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config


def decode(values: Mapping[str, str]) -> dict[str, Any]:
    """Pulumi hands config to the program as strings; objects arrive JSON-encoded."""
    out: dict[str, Any] = {}
    for key, text in values.items():
        try:
            out[key] = json.loads(text) if text[:1] in "{[" else text
        except json.JSONDecodeError:
            out[key] = text
    return out


def from_stack_file(path: Path) -> StackConfig:
    """Parse a Pulumi.<stack>.yaml the way the program would see it (used by tests and tools)."""
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    raw = {k.split(":", 1)[1]: val for k, val in (doc.get("config") or {}).items() if k.startswith(f"{PROJECT}:")}
    return parse(raw, path.parent)
