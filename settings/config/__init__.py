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
from pathlib import Path
from typing import Any, Literal

from settings import upgrades
from settings import versions as v
from settings.config.auth import AuthConfig, Caller, read_auth
from settings.config.layers import (
    INSTALL_KEYS,
    GatewayConfig,
    Install,
    Layers,
    Profile,
    Scheme,
    ServiceType,
    TlsIssuer,
    Versions,
    read_gateway,
    read_install,
    read_layers,
    read_profile,
    read_sources,
    read_versions,
)
from settings.config.models import (
    CONFIGMAP_LIMIT,
    MODEL_KEYS,
    EnvVar,
    ImageSource,
    ModelConfig,
    ModelSource,
    PathSource,
    StorageConfig,
    UriSource,
    read_models,
)
from settings.config.reader import PROJECT, ConfigError, Reader, canonical_quantity, dns_subdomain, parse_quantity

__all__ = [
    "CONFIGMAP_LIMIT", "MODEL_KEYS", "AuthConfig", "Caller", "EnvVar", "PROJECT", "TOP_LEVEL_KEYS",
    "ConfigError", "GatewayConfig", "ImageSource", "Install", "Layers", "ModelConfig", "ModelSource",
    "PathSource", "Profile", "Scheme", "ServiceType", "StackConfig", "StorageConfig", "TlsIssuer", "UriSource",
    "Versions", "canonical_quantity", "decode", "from_stack_file", "parse", "parse_quantity",
]

Readiness = Literal["wait", "skip"]
SmokeTest = Literal["auto", "on", "off"]


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
    models: tuple[ModelConfig, ...]
    install: Install = Install()
    layers: Layers = Layers()
    profile: Profile = "default"
    auth: AuthConfig = AuthConfig()
    project_dir: Path = field(default=Path("."), compare=False)
    kept_crds: tuple[str, ...] = ()
    """CRDs an earlier KServe release of this stack installed that this one no longer ships."""
    secrets: tuple[str, ...] = ()
    """The entries of `kserve-stack:secrets` (their values stay with Pulumi, as secrets)."""
    bare_models: tuple[tuple[str, str], ...] = ()
    """(name, namespace) of each model the previous `up` deployed under its bare name."""

    @property
    def kserve(self) -> v.KServeRelease:
        return v.kserve_release(self.versions.kserve)

    @property
    def waits(self) -> bool:
        return self.readiness == "wait"


TOP_LEVEL_KEYS = {
    "mode", "domain", "readiness", "smokeTest", "imageRegistry", "versions", "sources", "gateway", "model",
    "models", "secrets", "install", "layers", "profile", "auth",
}
UNDECLARED_KEYS = frozenset({"models", "secrets"})
"""Keys Pulumi.yaml leaves out: Pulumi requires a declared key that has no default, and a
default would hide whether the stack gave `models` at all (`model` is then the one model)."""
SECRET_KEYS = frozenset({"secrets"})
"""Keys whose values must be Pulumi secrets (`pulumi config set --secret`)."""


def read_secrets(r: Reader, raw: Any, secret: bool) -> frozenset[str]:
    """Only the entries' names: their values reach the cluster as Pulumi secrets (stack.py)."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        r.fail("secrets", "[secret]", "expected an object of NAME: value, set with "
               "`pulumi config set --secret --path 'secrets.NAME' VALUE`")
        return frozenset()
    if not secret:
        r.fail("secrets", sorted(raw), "its values are stored in clear in the stack file: set each with "
               "`pulumi config set --secret --path 'secrets.NAME' VALUE`")
    for name in raw:
        if not re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", name):
            r.fail(f"secrets.{name}", "[secret]", "expected a name of letters, digits, '-' and '_'")
    return frozenset(raw)


def parse(raw: Mapping[str, Any], project_dir: Path = Path("."),
          deployed: upgrades.Deployed = upgrades.NEW_STACK, secret_keys: frozenset[str] = SECRET_KEYS) -> StackConfig:
    """Validate raw config values (keys without the `kserve-stack:` prefix), and, on a deployed
    stack, that they can replace what the previous `up` installed. `secret_keys` are the keys
    Pulumi holds as secrets."""
    r = Reader()
    for unknown in sorted(set(raw) - TOP_LEVEL_KEYS):
        r.fail(unknown, raw[unknown], f"unknown key; known keys: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    mode = r.choice(raw.get("mode"), "mode", ("standard", "serverless"))
    domain = raw.get("domain", "example.com")
    if not dns_subdomain(domain) or "." not in domain:
        r.fail("domain", domain, "expected a DNS name such as example.com (lowercase labels joined by dots)")
    readiness = r.choice(raw.get("readiness"), "readiness", ("wait", "skip"), "wait")
    smoke_test = r.choice(raw.get("smokeTest"), "smokeTest", ("auto", "on", "off"), "auto")
    registry = r.text(raw.get("imageRegistry") or None, "imageRegistry")
    if registry and ("://" in registry or registry.endswith("/")):
        r.fail("imageRegistry", registry,
               "expected a registry host with optional path, e.g. registry.local:5000/mirror")
    if smoke_test == "on" and readiness == "skip":
        r.fail("smokeTest", smoke_test, "needs readiness wait (a skipped wait has no model to call)")
    versions = read_versions(r, raw.get("versions"))
    if mode == "serverless" and v.parse_version(versions.istio) and not v.istio_gateway_chart_renders(versions.istio):
        fixed = ", ".join(f"{a}.{b}.{c}+" for (a, b), c in v.ISTIO_GATEWAY_CHART_FIXED.items())
        r.fail("versions.istio", versions.istio,
               f"its gateway chart fails its own values schema with current Helm (istio/istio#57354); "
               f"serverless needs Istio {fixed} or a later minor")
    if registry and mode == "serverless" and v.parse_version(versions.knative_serving) is None:
        r.fail("versions.knativeServing", versions.knative_serving,
               "with imageRegistry the mirror's Knative tags need a full Serving release such as 1.21.1")

    charts, manifest = read_sources(r, raw.get("sources"), versions.kserve)
    if manifest is None:
        manifest = v.gateway_api_manifest(versions.gateway_api)
        if manifest is None:
            manifest = v.ManifestSource()
            if mode == "standard":
                r.fail("versions.gatewayApi", versions.gateway_api,
                       f"no pinned checksums for this release; pinned: {', '.join(v.GATEWAY_API_FILES)}"
                       " (or set sources.gatewayApiCrds to {url, sha256} or {path})")
    install = read_install(r, raw.get("install"), mode)
    if mode in ("standard", "serverless") and not r.problems:
        not_installed = tuple(key for key, attr in INSTALL_KEYS.items() if not getattr(install, attr))
        for key, value, allowed in upgrades.problems(deployed, mode, versions.kserve, versions.knative_serving,
                                                     not_installed):
            r.fail(key, value, allowed)
    layers = read_layers(r, raw.get("layers"), install)
    if mode == "serverless" and install.knative and (layers.istio_namespace, layers.ingress_gateway) != (
            Layers().istio_namespace, Layers().ingress_gateway):
        r.fail("layers.istio", raw.get("layers", {}).get("istio"),
               "the stack's own Knative routes through istio-system/istio-ingressgateway; "
               "another place needs install.knative: false (a Knative configured for it)")
    auth = read_auth(r, raw.get("auth"), versions.istio, install.istio)
    secrets = read_secrets(r, raw.get("secrets"), "secrets" in secret_keys)
    for key in sorted(secret_keys - SECRET_KEYS):
        r.fail(key, "[secret]", "the stack's outputs are built from it, so it cannot hold a secret: keep the "
               "value in kserve-stack:secrets and refer to it with {secret: NAME}")
    config = StackConfig(
        mode=mode, domain=domain, readiness=readiness, smoke_test=smoke_test, image_registry=registry,
        versions=versions, charts=charts, gateway_api_crds=manifest, gateway=read_gateway(r, raw.get("gateway"), mode),
        models=read_models(r, raw, mode, project_dir, _known_release(versions.kserve), secrets, auth.type),
        auth=auth,
        project_dir=project_dir, secrets=tuple(sorted(secrets)),
        install=install, layers=layers, profile=read_profile(r, raw.get("profile")),
        kept_crds=upgrades.kept_crds(deployed, versions.kserve) if not r.problems else (),
        bare_models=deployed.bare_models,
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config


def _known_release(kserve: str) -> str:
    """The release whose runtimes the models are checked against: an unsupported one is already
    reported (versions.kserve), and the models are still checked against the default."""
    try:
        return v.kserve_release(kserve).version
    except ValueError:
        return v.DEFAULT_KSERVE


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
    secret = frozenset(k for k, val in raw.items() if _holds_secure(val))
    return parse(raw, path.parent, secret_keys=secret)


def _holds_secure(value: Any) -> bool:
    """A stack file keeps a secret as `{secure: <ciphertext>}`, at any depth (`--path`)."""
    if isinstance(value, Mapping):
        return set(value) == {"secure"} or any(_holds_secure(v) for v in value.values())
    return isinstance(value, list) and any(_holds_secure(v) for v in value)
