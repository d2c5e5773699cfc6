"""The shared layers' config: versions, chart sources, the gateway."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from settings import versions as v
from settings.config.reader import DNS1123_LABEL, Reader, boolean

ServiceType = Literal["LoadBalancer", "NodePort", "ClusterIP"]
Scheme = Literal["http", "https"]


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
    scheme: Scheme = "http"
    """What the model URLs use: https is the KServe Gateway's HTTPS listener, with the certificate
    the stack issues (standard mode)."""



def read_versions(r: Reader, raw: Any) -> Versions:
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


def read_sources(r: Reader, raw: Any, kserve_version: str) -> tuple[dict[str, v.ChartSource], v.ManifestSource]:
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


def read_gateway(r: Reader, raw: Any, mode: str) -> GatewayConfig:
    data = r.obj(raw, "gateway", {"serviceType", "tlsIssuer", "scheme"})
    scheme = r.choice(data.get("scheme"), "gateway.scheme", ("http", "https"), "http")
    if scheme == "https" and mode == "serverless":
        r.fail("gateway.scheme", scheme, "serverless mode serves http only: Knative's ingress gateway has no "
               "certificate from this stack (Knative's external-domain TLS would give it one); allowed: http")
    service_type = r.choice(data.get("serviceType"), "gateway.serviceType",
                            ("LoadBalancer", "NodePort", "ClusterIP"), "LoadBalancer")
    issuer = None
    if data.get("tlsIssuer") is not None:
        spec = r.obj(data["tlsIssuer"], "gateway.tlsIssuer", {"kind", "name"})
        kind = r.choice(spec.get("kind"), "gateway.tlsIssuer.kind", ("ClusterIssuer", "Issuer"), "ClusterIssuer")
        name = r.dns_label(spec.get("name"), "gateway.tlsIssuer.name", DNS1123_LABEL, 253, "a DNS-1123 name")
        issuer = TlsIssuer(kind=kind, name=name)
    return GatewayConfig(service_type=service_type, tls_issuer=issuer, scheme=scheme)



Profile = Literal["default", "small"]
INSTALL_KEYS = {"certManager": "cert_manager", "istio": "istio", "gatewayApi": "gateway_api", "knative": "knative"}
"""The layers a cluster may already run; KServe itself and the model are always the stack's."""
LAYER_MODES = {"gatewayApi": "standard", "knative": "serverless"}


@dataclass(frozen=True)
class Install:
    """Which shared layers the stack installs (and so owns, and removes on destroy). A layer set
    to False is the cluster's: the stack reads it, checks it is there and ready, never writes it."""

    cert_manager: bool = True
    istio: bool = True
    gateway_api: bool = True
    knative: bool = True


@dataclass(frozen=True)
class Layers:
    """Where a layer the cluster already runs keeps its parts; today's defaults are where the
    stack itself puts them."""

    cert_manager_namespace: str = "cert-manager"
    istio_namespace: str = "istio-system"
    ingress_gateway: str = "istio-ingressgateway"
    """Serverless: the ingress gateway's Service (and its pods' `istio` label value's Deployment)."""
    gateway_class: str = "istio"
    knative_namespace: str = "knative-serving"


LAYER_SETTINGS = {
    "certManager": {"namespace": "cert_manager_namespace"},
    "istio": {"namespace": "istio_namespace", "ingressGateway": "ingress_gateway"},
    "gatewayApi": {"gatewayClass": "gateway_class"},
    "knative": {"namespace": "knative_namespace"},
}


def read_install(r: Reader, raw: Any, mode: str) -> Install:
    data = r.obj(raw, "install", {*INSTALL_KEYS, "kserve"})
    if "kserve" in data:
        r.fail("install.kserve", data["kserve"], "KServe is what the stack installs; only its dependencies "
               f"may be the cluster's: {', '.join(INSTALL_KEYS)}")
    chosen: dict[str, bool] = {}
    for key, attr in INSTALL_KEYS.items():
        value = boolean(data.get(key, True))
        if value not in (True, False):
            r.fail(f"install.{key}", data.get(key), "expected true (the stack installs it) or false (it is there)")
            continue
        if key in LAYER_MODES and LAYER_MODES[key] != mode and key in data:
            r.fail(f"install.{key}", data[key], f"only mode {LAYER_MODES[key]} has this layer")
        chosen[attr] = value
    return Install(**chosen)


def read_layers(r: Reader, raw: Any, install: Install) -> Layers:
    data = r.obj(raw, "layers", set(LAYER_SETTINGS))
    chosen: dict[str, str] = {}
    for layer, keys in LAYER_SETTINGS.items():
        spec = r.obj(data.get(layer), f"layers.{layer}", set(keys))
        if spec and getattr(install, INSTALL_KEYS[layer]):
            r.fail(f"layers.{layer}", spec, f"only for a layer the cluster runs (install.{layer}: false); "
                   "the stack puts its own layers in their default places")
            continue
        for key, attr in keys.items():
            if key in spec:
                chosen[attr] = r.dns_label(spec[key], f"layers.{layer}.{key}", DNS1123_LABEL, 63, "a DNS-1123 label")
    return Layers(**chosen)


def read_profile(r: Reader, raw: Any) -> Profile:
    return r.choice(raw, "profile", ("default", "small"), "default")
