"""Pinned versions, upstream sources and per-release facts: the one place they live.

Every chart, manifest and version the stack installs is named here. Stacks override
versions with `kserve-stack:versions` and sources with `kserve-stack:sources`; the
config module checks those overrides against the tables below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Mode = Literal["standard", "serverless"]

DEFAULT_KSERVE = "v0.20.0"
VERSION_KEYS = ("kserve", "certManager", "istio", "gatewayApi", "knative", "knativeServing")
"""`knative` is the Knative Operator release; `knativeServing` the Serving release it installs."""

MIN_KUBERNETES = "1.32"


@dataclass(frozen=True)
class ChartSource:
    """Where a Helm chart comes from: a classic repository, an OCI registry, or a local path."""

    chart: str
    repo: str | None = None
    oci: str | None = None
    path: str | None = None

    def reference(self) -> str:
        """The `chart` argument for helm.v4.Chart (the repo goes in repository_opts)."""
        if self.path:
            return self.path
        if self.oci:
            return f"{self.oci.rstrip('/')}/{self.chart}"
        return self.chart


@dataclass(frozen=True)
class ManifestSource:
    """YAML manifests: pinned URLs, each with its sha256, or a local file or directory."""

    files: tuple[tuple[str, str], ...] = ()
    """(url, sha256) pairs."""
    path: str | None = None


DEFAULT_CHARTS: dict[str, ChartSource] = {
    "certManager": ChartSource(chart="cert-manager", repo="https://charts.jetstack.io"),
    "istioBase": ChartSource(chart="base", repo="https://istio-release.storage.googleapis.com/charts"),
    "istiod": ChartSource(chart="istiod", repo="https://istio-release.storage.googleapis.com/charts"),
    "istioGateway": ChartSource(chart="gateway", repo="https://istio-release.storage.googleapis.com/charts"),
    "knativeOperator": ChartSource(chart="knative-operator", repo="https://knative.github.io/operator"),
    "kserveCrd": ChartSource(chart="kserve-crd", oci="oci://ghcr.io/kserve/charts"),
    "kserve": ChartSource(chart="kserve-resources", oci="oci://ghcr.io/kserve/charts"),
    "kserveRuntimes": ChartSource(chart="kserve-runtime-configs", oci="oci://ghcr.io/kserve/charts"),
}
"""Chart sources keyed by the name used in `kserve-stack:sources`. The KServe chart names
follow the KServe version (see `kserve_release`); an override keeps the name it gives."""

GATEWAY_API_URL = "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/{version}/config/crd/standard/{file}"
GATEWAY_API_FILES: dict[str, dict[str, str]] = {
    "v1.5.1": {
        "gateway.networking.k8s.io_backendtlspolicies.yaml":
            "9b8818172153d72f9c84032db0be0a4a657277d13f5bbc22226ad9481ff57971",
        "gateway.networking.k8s.io_gatewayclasses.yaml":
            "234ad4b2757ee1b3596a4187bb98df071c5bbdd9e1806f692f2dbf8387e6bef4",
        "gateway.networking.k8s.io_gateways.yaml":
            "7416e8300eb4d8c0a71a23445609075bbacbe8bc80104584b019cfe1ebe77c31",
        "gateway.networking.k8s.io_grpcroutes.yaml":
            "979f4125d44d3df24659ba00d1d04ff8e76c45423193e8aae82dd5810d7827df",
        "gateway.networking.k8s.io_httproutes.yaml":
            "682203b109baecb18d38073a578f7bc2c17d22fe9b0c27bf030850abe014c370",
        "gateway.networking.k8s.io_listenersets.yaml":
            "9221468d19fdfbb0026113b1ef64abac64f27607975aff2410361b8b38f0e0bb",
        "gateway.networking.k8s.io_referencegrants.yaml":
            "a8902c486eed0b7339f5bb8a476ccaba0918eb038048402bdc01cbb69b0fbb51",
        "gateway.networking.k8s.io_tlsroutes.yaml":
            "818e4827c469a40e2527a2851591e656782c50fea8dd44812c900d219da09345",
        "gateway.networking.k8s.io_vap_safeupgrades.yaml":
            "981a4da92706cb567c051e006ff229429947f054b90cd0719c297abe14f958a1",
    },
}
"""The standard channel, file by file from the release tag (config/crd/standard, the files
its kustomization installs), each with its sha256. Another release needs
`sources.gatewayApiCrds`."""


def gateway_api_manifest(version: str) -> ManifestSource | None:
    tag = version if version.startswith("v") else f"v{version}"
    files = GATEWAY_API_FILES.get(tag)
    if files is None:
        return None
    return ManifestSource(files=tuple((GATEWAY_API_URL.format(version=tag, file=f), h) for f, h in files.items()))


SourceKey = str
SOURCE_KEYS: tuple[SourceKey, ...] = (*DEFAULT_CHARTS, "gatewayApiCrds")


@dataclass(frozen=True)
class Compat:
    """What one KServe minor release is installed with.

    `tested` are the dependency versions that release's install scripts pin (its
    `hack/setup` env file or quick-install script); they are the stack's defaults for that
    release. The ranges are this project's support window around them: Istio one minor
    either side (Istio supports one-minor skips), Knative up to two minors older, and the
    Gateway API standard channel from v1.2 (HTTPRoute v1) to the newest release whose
    checksums are pinned here. `istio_window` replaces the Istio rule where the versions
    around the pinned one cannot be rendered (see ISTIO_GATEWAY_CHART_FIXED).
    """

    tested: dict[str, str]
    istio_window: tuple[str, str] | None = None

    def window(self, key: str) -> tuple[str, str]:
        major, minor = minor_of(self.tested[key])
        if key == "istio":
            return self.istio_window or (f"{major}.{minor - 1}", f"{major}.{minor + 1}")
        if key == "knative":
            return f"{major}.{minor - 2}", f"{major}.{minor}"
        if key == "gatewayApi":
            return "1.2", "1.5"
        raise KeyError(key)


@dataclass(frozen=True)
class KServeRelease:
    """What changes between KServe releases that the stack must follow."""

    version: str
    controller_chart: str
    runtimes_chart: str | None
    mode_strings: dict[str, str]
    compat: Compat

    def deployment_mode(self, mode: Mode) -> str:
        return self.mode_strings[mode]


_LEGACY_MODES = {"standard": "RawDeployment", "serverless": "Serverless"}
_CANONICAL_MODES = {"standard": "Standard", "serverless": "Knative"}


def _tested(cert_manager: str, istio: str, knative: str, serving: str,
            istio_window: tuple[str, str] | None = None) -> Compat:
    return Compat(tested={"certManager": cert_manager, "istio": istio, "gatewayApi": "v1.5.1", "knative": knative,
                          "knativeServing": serving}, istio_window=istio_window)


ISTIO_GATEWAY_CHART_FIXED = {(1, 25): 5, (1, 26): 4, (1, 27): 1}
"""The first patch of each Istio minor whose `gateway` chart passes its own values schema with
the Helm inside the provider (Helm >= 3.18.5, istio/istio#57354). Older minors never do: their
chart's own `defaults` key fails it, whatever values are given."""


def istio_gateway_chart_renders(version: str) -> bool:
    major, minor, patch = parse_version(version) or (0, 0, 0)
    if (major, minor) > max(ISTIO_GATEWAY_CHART_FIXED):
        return True
    return patch >= ISTIO_GATEWAY_CHART_FIXED.get((major, minor), 10**9)


ISTIO_JWKS_ADVISORY = "CVE-2026-31837, GHSA-v75c-crr9-733c"
ISTIO_JWKS_FIXED = {(1, 27): 8}
"""The first patch of each Istio minor where a JWKS istiod failed to fetch no longer falls back to
a fixed key set whose private key is public (pilot/pkg/model/jwks_resolver.go, the fake JWKS): with
an older istiod, anyone could sign a token the gateway accepts while the issuer's keys are out of
reach. Minors before those listed have no fixed release."""
ISTIO_SECURITY_PATCH = "1.27.9"
"""The Istio every KServe release installs by default: inside each release's window (1.25 to
1.27 for v0.15, 1.26 to 1.28 from v0.16), and past ISTIO_JWKS_FIXED."""


def istio_jwks_fallback_fixed(version: str) -> bool:
    parsed = parse_version(version)
    if parsed is None:
        return True  # reported as malformed elsewhere
    major, minor, patch = parsed
    if (major, minor) > max(ISTIO_JWKS_FIXED):
        return True
    return patch >= ISTIO_JWKS_FIXED.get((major, minor), 10**9)


def istio_jwks_fixed_text() -> str:
    fixed = ", ".join(f"{a}.{b}.{c}+" for (a, b), c in ISTIO_JWKS_FIXED.items())
    return f"allowed: Istio {fixed} or a later minor"


OPERATOR_SERVING_MINORS = 4
"""A Knative Operator release 1.m bundles the Serving minors 1.(m-3) to 1.m (cmd/operator/kodata
at knative-v1.15.7, v1.16.0, v1.21.1) and installs only a bundled version."""


def bundled_serving(operator: str) -> tuple[str, str]:
    """The Serving minors a Knative Operator release can install, as (oldest, newest)."""
    major, minor = minor_of(operator)
    return f"{major}.{minor - OPERATOR_SERVING_MINORS + 1}", f"{major}.{minor}"


KSERVE_COMPAT: dict[int, Compat] = {
    # hack/quick_install.sh at v0.15.2 pins Istio 1.23.2, whose gateway chart cannot be rendered:
    # the window runs from the oldest Istio whose chart can to the one later releases are tested with.
    15: _tested("v1.16.1", ISTIO_SECURITY_PATCH, "v1.15.7", "1.15.2", istio_window=("1.25", "1.27")),
    16: _tested("v1.17.0", ISTIO_SECURITY_PATCH, "v1.16.0", "1.16.0"),  # generated install script at v0.16.0
    17: _tested("v1.17.0", ISTIO_SECURITY_PATCH, "v1.21.1", "1.21.1"),  # kserve-deps.env at v0.17.1
    18: _tested("v1.17.0", ISTIO_SECURITY_PATCH, "v1.21.1", "1.21.1"),  # generated install script at v0.18.0-rc1
    19: _tested("v1.17.0", ISTIO_SECURITY_PATCH, "v1.21.1", "1.21.1"),  # kserve-deps.env on main after v0.19.0
    20: _tested("v1.17.0", ISTIO_SECURITY_PATCH, "v1.21.1", "1.21.1"),  # KServe v0.20 docs: dependency table
}
"""Per KServe minor; Istio is ISTIO_SECURITY_PATCH throughout (the releases' scripts pin 1.27.1,
v0.15's 1.23.2); the Gateway API default is v1.5.1 throughout, the release with pinned
checksums (KServe's own scripts used v1.2.1 at v0.15, v1.3.0 at v0.16, v1.4.1 at v0.17)."""

SUPPORTED_KSERVE = f"v0.{min(KSERVE_COMPAT)}.0 to v0.{max(KSERVE_COMPAT)}.x"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = _VERSION.match(text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def minor_of(text: str) -> tuple[int, int]:
    parsed = parse_version(text)
    if parsed is None:
        raise ValueError(f"not a version: {text!r}")
    return parsed[0], parsed[1]


def in_range(version: str, bounds: tuple[str, str]) -> bool:
    low, high = (minor_of(b + ".0") for b in bounds)
    return low <= minor_of(version) <= high


def default_versions(kserve: str = DEFAULT_KSERVE) -> dict[str, str]:
    """The KServe release and the dependency versions it is tested with."""
    return {"kserve": kserve, **kserve_release(kserve).compat.tested}


def kserve_release(version: str) -> KServeRelease:
    """The chart names and mode strings for a KServe release from v0.15 to v0.20."""
    parsed = parse_version(version)
    if parsed is None or parsed[0] != 0 or parsed[1] not in KSERVE_COMPAT:
        raise ValueError(f"unsupported KServe version {version!r}; supported: {SUPPORTED_KSERVE}")
    minor = parsed[1]
    return KServeRelease(
        version=version if version.startswith("v") else f"v{version}",
        controller_chart="kserve-resources" if minor >= 17 else "kserve",
        runtimes_chart="kserve-runtime-configs" if minor >= 17 else None,
        mode_strings=_CANONICAL_MODES if minor >= 16 else _LEGACY_MODES,
        compat=KSERVE_COMPAT[minor],
    )


KUBERNETES_FLOOR = "1.32"
"""The oldest Kubernetes the stack supports in either mode: KServe v0.20's documented minimum, and
the schema its built-in objects are checked against (tests/schema)."""

KNATIVE_SERVING_KUBERNETES = {
    "1.12": "1.26", "1.13": "1.27", "1.14": "1.28", "1.15": "1.28", "1.16": "1.28",
    "1.17": "1.30", "1.18": "1.31", "1.19": "1.32", "1.20": "1.32", "1.21": "1.33",
}
"""Serving minor → the oldest Kubernetes its controllers start on: knative.dev/pkg
`version/version.go` `defaultMinimumVersion`, at the pkg version each Serving release's go.mod
pins (knative.dev/serving v0.39.0 to v0.48.1), checked by every Knative controller at start."""


def kubernetes_floor(mode: Mode, knative_serving: str) -> tuple[str, str, str]:
    """The oldest Kubernetes a stack in `mode` runs on, the config key that sets it, and why."""
    serving = ".".join(knative_serving.removeprefix("v").split(".")[:2])
    knative = KNATIVE_SERVING_KUBERNETES.get(serving, KUBERNETES_FLOOR) if mode == "serverless" else KUBERNETES_FLOOR
    if minor_of(f"{knative}.0") > minor_of(f"{KUBERNETES_FLOOR}.0"):
        return (knative, "versions.knativeServing",
                f"'{knative_serving}': Knative Serving {serving} exits on older clusters (knative.dev/pkg)")
    return KUBERNETES_FLOOR, "mode", f"'{mode}': the stack supports Kubernetes {KUBERNETES_FLOOR} and newer"


SMALL_REQUESTS = {"cpu": "5m", "memory": "32Mi"}
"""`profile: small`: what KServe's own CI asks for istiod, the Istio gateway (kserve v0.20.0
test/scripts/gh-actions/setup-deps.sh) and every Knative workload (hack/setup/infra/knative/templates/
knative-serving-istio.yaml, `workloads:`). Requests only: they decide where a pod fits; the charts'
limits stay, so no pod is capped below what upstream allows."""

IMAGES = {"busybox": "busybox:1.37.0"}
"""Images the stack runs itself (the model copy and smoke-test Jobs); the registry override applies."""


_KSERVE_CONTROLLER_KEYS = frozenset({
    "kserve.controller.deploymentMode",
    "kserve.controller.gateway.domain",
    "kserve.controller.gateway.ingressGateway.enableGatewayApi",
    "kserve.controller.gateway.ingressGateway.kserveGateway",
    "kserve.controller.gateway.ingressGateway.createGateway",
    "kserve.controller.gateway.ingressGateway.className",
    "kserve.controller.gateway.ingressGateway.gateway",
    "kserve.controller.gateway.localGateway.gateway",
    "kserve.controller.gateway.localGateway.gatewayService",
    "kserve.storage.image",
    "kserve.agent.image",
    "kserve.router.image",
    "kserve.servingruntime.art.image",
})

CHART_VALUE_KEYS: dict[str, tuple[str, frozenset[str]]] = {
    "cert-manager": ("cert-manager/cert-manager deploy/charts/cert-manager/values.yaml", frozenset({
        "crds.enabled", "crds.keep", "acmesolver.image.repository",
    })),
    "base": ("istio/istio manifests/charts/base/values.yaml", frozenset({"defaultRevision"})),
    "istiod": ("istio/istio manifests/charts/istio-control/istio-discovery/values.yaml (1.24+)", frozenset({
        "global.hub", "resources.requests", "global.proxy.resources.requests", "jwksResolverExtraRootCA",
    })),
    "gateway": ("istio/istio manifests/charts/gateway/values.yaml", frozenset({"resources.requests"})),
    "knative-operator": ("knative/operator config/charts/knative-operator/values.yaml", frozenset()),
    "kserve-crd": ("kserve/kserve charts/kserve-crd/values.yaml", frozenset()),
    "kserve": ("kserve/kserve charts/kserve/values.yaml (v0.15, v0.16: controller and runtimes)",
               _KSERVE_CONTROLLER_KEYS),
    "kserve-resources": ("kserve/kserve charts/kserve-resources/values.yaml (v0.17+)",
                         _KSERVE_CONTROLLER_KEYS | {"kserve.localmodel.defaultJobImage"}),
    "kserve-runtime-configs": ("kserve/kserve charts/kserve-runtime-configs/values.yaml (v0.17+)",
                               frozenset({"kserve.servingruntime.enabled",
                                          "kserve.servingruntime.vllmserver.disabled"})),
}
"""The value keys of each chart that this project may set, with the upstream file they come
from. The tests check every value the program passes against them, and them against the
released charts in shared/upstream-charts."""
