"""Who may call a model: `kserve-stack:auth` (how a caller proves who it is) and each model's
`callers` (who, of those, may call it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from settings import versions as v
from settings.config.reader import DNS1123_LABEL, Reader

AuthType = Literal["kubernetes", "jwt", "none"]

KUBERNETES_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The service-account issuer of kubeadm and kind clusters (`--service-account-issuer`)."""
KUBERNETES_JWKS_URI = "https://kubernetes.default.svc/openid/v1/jwks"
"""The API server's own key set, served to anyone bound to `system:service-account-issuer-discovery`
(kubernetes pkg/serviceaccount/openidmetadata.go)."""
DEFAULT_AUDIENCE = "kserve-stack"
AUTH_KEYS = {"type", "issuer", "jwksUri", "audiences", "clusterIssuer", "clusterJwksUri"}
JWT_ONLY = ("clusterIssuer", "clusterJwksUri")
"""With `jwt`, the cluster's own issuer (the smoke test's tokens) where it is not kubeadm's: EKS,
GKE and AKS each have their own."""
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]+$")


@dataclass(frozen=True)
class Caller:
    """One rule of a model's `callers`: a service account (`namespace/name`, `namespace/*`) of the
    cluster's issuer, or a claim of the token with the values allowed."""

    service_account: tuple[str, str] | None = None
    claim: tuple[str, ...] = ()
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    type: AuthType = "kubernetes"
    issuer: str = KUBERNETES_ISSUER
    """The callers' token issuer: the cluster's for `kubernetes`, the identity provider's for `jwt`."""
    jwks_uri: str = KUBERNETES_JWKS_URI
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    kubernetes_issuer: str = KUBERNETES_ISSUER
    """The cluster's issuer: the smoke test's projected token comes from it whatever `type` is."""
    kubernetes_jwks_uri: str = KUBERNETES_JWKS_URI

    @property
    def enabled(self) -> bool:
        return self.type != "none"

    @property
    def audience(self) -> str:
        """What a token minted for a caller (`kubectl create token --audience`) is made for."""
        return self.audiences[0]


def read_auth(r: Reader, raw: Any, istio: str, installs_istio: bool) -> AuthConfig:
    data = r.obj(raw, "auth", AUTH_KEYS)
    kind = r.choice(data.get("type"), "auth.type", ("kubernetes", "jwt", "none"), "kubernetes")
    if kind == "none":
        for key in sorted(set(data) - {"type"}):
            r.fail(f"auth.{key}", data[key], "type none checks no token: remove it, or choose kubernetes or jwt")
        return AuthConfig(type="none")
    audiences = data.get("audiences", [DEFAULT_AUDIENCE])
    if (not isinstance(audiences, list) or not audiences
            or not all(isinstance(a, str) and a.strip() and a == a.strip() for a in audiences)):
        r.fail("auth.audiences", audiences, "expected a non-empty list of audience strings")
        audiences = [DEFAULT_AUDIENCE]
    issuer = data.get("issuer", KUBERNETES_ISSUER if kind == "kubernetes" else None)
    if kind == "jwt" and issuer is None:
        r.fail("auth.issuer", None, "type jwt needs the identity provider's issuer (its tokens' `iss`)")
    elif not isinstance(issuer, str) or not re.fullmatch(r"https?://\S+|[^\s/:]\S*", issuer):
        r.fail("auth.issuer", issuer, "expected the tokens' `iss`, e.g. https://kubernetes.default.svc.cluster.local")
    jwks = data.get("jwksUri", KUBERNETES_JWKS_URI if kind == "kubernetes" else None)
    if kind == "jwt" and jwks is None:
        r.fail("auth.jwksUri", None, "type jwt needs the identity provider's https:// key set URL")
    elif not isinstance(jwks, str) or not re.fullmatch(r"https://[^\s/]+\S*", jwks):
        r.fail("auth.jwksUri", jwks, "expected an https:// URL: keys fetched in clear could be swapped on the way")
    for key in JWT_ONLY:
        if key in data and kind != "jwt":
            r.fail(f"auth.{key}", data[key], "only for type jwt; with kubernetes, issuer and jwksUri are the cluster's")
    cluster = data.get("clusterIssuer", KUBERNETES_ISSUER) if kind == "jwt" else issuer
    cluster_jwks = data.get("clusterJwksUri", KUBERNETES_JWKS_URI) if kind == "jwt" else jwks
    if kind == "jwt" and not isinstance(cluster, str):
        r.fail("auth.clusterIssuer", cluster, "expected the cluster's service-account issuer (a string)")
    if kind == "jwt" and (not isinstance(cluster_jwks, str) or not re.fullmatch(r"https://[^\s/]+\S*", cluster_jwks)):
        r.fail("auth.clusterJwksUri", cluster_jwks, "expected an https:// URL")
    if installs_istio and not v.istio_jwks_fallback_fixed(istio):
        r.fail("versions.istio", istio, f"auth {kind} needs an Istio whose JWKS fallback cannot be signed by anyone "
               f"({v.ISTIO_JWKS_ADVISORY}): {v.istio_jwks_fixed_text()}; or auth type none")
    return AuthConfig(type=kind, issuer=str(issuer), jwks_uri=str(jwks), audiences=tuple(audiences),
                      kubernetes_issuer=str(cluster), kubernetes_jwks_uri=str(cluster_jwks))


def read_callers(r: Reader, raw: Any, key: str, auth_type: str) -> tuple[Caller, ...]:
    """`namespace/name`, `namespace/*`, or `{claim, values}` (`claim` a name, or a list of names
    reaching a nested claim such as [kubernetes.io, namespace])."""
    if raw is None:
        return ()
    key = f"{key}.callers"
    if auth_type == "none":
        r.fail(key, raw, "auth type none lets every caller in: set kserve-stack:auth to kubernetes or jwt")
        return ()
    if not isinstance(raw, list) or not raw:
        r.fail(key, raw, "expected a non-empty list of namespace/name service accounts or {claim, values}")
        return ()
    out: list[Caller] = []
    for i, item in enumerate(raw):
        at = f"{key}[{i}]"
        if isinstance(item, str):
            ns, _, name = item.partition("/")
            if not (DNS1123_LABEL.match(ns) and len(ns) <= 63 and (name == "*" or (
                    len(name) <= 253 and all(DNS1123_LABEL.match(p) for p in name.split(".")) and name))):
                r.fail(at, item, "expected a service account as namespace/name or namespace/* (DNS-1123 names)")
                continue
            out.append(Caller(service_account=(ns, name)))
            continue
        spec = r.obj(item, at, {"claim", "values"})
        if not spec:
            r.fail(at, item, "expected namespace/name or {claim, values}")
            continue
        claim = spec.get("claim")
        path = [claim] if isinstance(claim, str) else claim
        if not isinstance(path, list) or not path or not all(isinstance(p, str) and _CLAIM.match(p) for p in path):
            r.fail(f"{at}.claim", claim, "expected a claim name, or a list of names for a nested claim "
                   "(letters, digits, '_', '.', ':', '/', '-')")
            continue
        values = spec.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(x, str) and x for x in values):
            r.fail(f"{at}.values", values, "expected a non-empty list of the claim's allowed values")
            continue
        out.append(Caller(claim=tuple(path), values=tuple(values)))
    return tuple(out)
