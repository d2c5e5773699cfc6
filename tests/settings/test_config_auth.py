"""`kserve-stack:auth`, `gateway.scheme` and each model's `callers`: the defaults, and every
refusal naming its key, its value and what is allowed, before anything touches a cluster."""

from __future__ import annotations

import copy

import pytest

from settings import versions
from settings.config import Caller, ConfigError, parse
from settings.config.auth import KUBERNETES_ISSUER, KUBERNETES_JWKS_URI
from tests.conftest import stack_raw

MODEL = {"name": "m", "storageUri": "s3://bucket/m"}


@pytest.fixture
def raw() -> dict:
    out = copy.deepcopy(stack_raw("standard"))
    out["model"] = dict(MODEL)
    return out


def problems(raw: dict, project_dir) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw, project_dir)
    return err.value.problems


def test_tokens_of_the_cluster_for_the_stacks_audience_by_default(raw, project_dir):
    cfg = parse(raw, project_dir)
    assert (cfg.auth.type, cfg.auth.issuer, cfg.auth.jwks_uri, cfg.auth.audiences) == (
        "kubernetes", KUBERNETES_ISSUER, KUBERNETES_JWKS_URI, ("kserve-stack",))
    assert cfg.gateway.scheme == "http" and cfg.models[0].callers == ()


def test_a_managed_clusters_own_issuer(raw, project_dir):
    raw["auth"] = {"issuer": "https://oidc.eks.example/id/ABC", "jwksUri": "https://oidc.eks.example/id/ABC/keys",
                   "audiences": ["ml"]}
    auth = parse(raw, project_dir).auth
    assert (auth.kubernetes_issuer, auth.kubernetes_jwks_uri, auth.audience) == (
        "https://oidc.eks.example/id/ABC", "https://oidc.eks.example/id/ABC/keys", "ml")


def test_jwt_keeps_the_clusters_issuer_for_the_smoke_test(raw, project_dir):
    raw["auth"] = {"type": "jwt", "issuer": "https://idp.example", "jwksUri": "https://idp.example/keys"}
    auth = parse(raw, project_dir).auth
    assert (auth.issuer, auth.kubernetes_issuer) == ("https://idp.example", KUBERNETES_ISSUER)


def test_jwt_on_a_managed_cluster_names_the_clusters_issuer_too(raw, project_dir):
    raw["auth"] = {"type": "jwt", "issuer": "https://idp.example", "jwksUri": "https://idp.example/keys",
                   "clusterIssuer": "https://oidc.eks.example/id/ABC",
                   "clusterJwksUri": "https://oidc.eks.example/id/ABC/keys"}
    auth = parse(raw, project_dir).auth
    assert (auth.kubernetes_issuer, auth.kubernetes_jwks_uri) == (
        "https://oidc.eks.example/id/ABC", "https://oidc.eks.example/id/ABC/keys")


def test_callers_parse_to_accounts_and_claims(raw, project_dir):
    raw["model"]["callers"] = ["apps/client", "batch/*", {"claim": "groups", "values": ["ml"]},
                               {"claim": ["kubernetes.io", "namespace"], "values": ["a", "b"]}]
    assert parse(raw, project_dir).models[0].callers == (
        Caller(service_account=("apps", "client")), Caller(service_account=("batch", "*")),
        Caller(claim=("groups",), values=("ml",)), Caller(claim=("kubernetes.io", "namespace"), values=("a", "b")))


@pytest.mark.parametrize(("auth", "key", "value", "allowed"), [
    ({"type": "oauth"}, "auth.type", "'oauth'", "allowed: kubernetes, jwt, none"),
    ({"type": "jwt", "jwksUri": "https://idp/keys"}, "auth.issuer", "None", "needs the identity provider's issuer"),
    ({"type": "jwt", "issuer": "https://idp"}, "auth.jwksUri", "None", "https:// key set URL"),
    ({"type": "jwt", "issuer": "https://idp", "jwksUri": "http://idp/keys"}, "auth.jwksUri", "'http://idp/keys'",
     "expected an https:// URL"),
    ({"jwksUri": "kubernetes.default.svc/keys"}, "auth.jwksUri", "'kubernetes.default.svc/keys'", "https://"),
    ({"audiences": []}, "auth.audiences", "[]", "non-empty list"),
    ({"audiences": "kserve-stack"}, "auth.audiences", "'kserve-stack'", "non-empty list"),
    ({"audiences": [" padded"]}, "auth.audiences", "[' padded']", "non-empty list"),
    ({"issuer": "has space"}, "auth.issuer", "'has space'", "expected the tokens' `iss`"),
    ({"type": "none", "audiences": ["x"]}, "auth.audiences", "['x']", "type none checks no token"),
    ({"tokens": 1}, "auth.tokens", "1",
     "unknown key; known keys: audiences, clusterIssuer, clusterJwksUri, issuer, jwksUri, type"),
    ({"clusterIssuer": "https://x"}, "auth.clusterIssuer", "'https://x'", "only for type jwt"),
    ({"type": "jwt", "issuer": "https://idp", "jwksUri": "https://idp/k", "clusterJwksUri": "http://k"},
     "auth.clusterJwksUri", "'http://k'", "expected an https:// URL"),
])
def test_bad_auth_is_refused_naming_key_value_and_what_is_allowed(raw, project_dir, auth, key, value, allowed):
    raw["auth"] = auth
    [problem] = [p for p in problems(raw, project_dir) if p.startswith(f"kserve-stack:{key}:")]
    assert problem.startswith(f"kserve-stack:{key}: {value} is not allowed;") and allowed in problem


@pytest.mark.parametrize(("callers", "key", "allowed"), [
    ("apps/client", "model.callers", "non-empty list"),
    ([], "model.callers", "non-empty list"),
    (["Apps/client"], "model.callers[0]", "namespace/name or namespace/*"),
    (["client"], "model.callers[0]", "namespace/name or namespace/*"),
    (["apps/cli*"], "model.callers[0]", "namespace/name or namespace/*"),
    ([{"claim": "groups"}], "model.callers[0].values", "non-empty list of the claim's allowed values"),
    ([{"claim": "a b", "values": ["x"]}], "model.callers[0].claim", "a list of names for a nested claim"),
    ([{"claim": [], "values": ["x"]}], "model.callers[0].claim", "a list of names for a nested claim"),
    ([{"claim": "groups", "values": "ml"}], "model.callers[0].values", "non-empty list"),
    ([{"sub": "x"}], "model.callers[0].sub", "unknown key"),
])
def test_bad_callers_are_refused(raw, project_dir, callers, key, allowed):
    raw["model"]["callers"] = callers
    found = [p for p in problems(raw, project_dir) if p.startswith(f"kserve-stack:{key}:")]
    assert found and allowed in found[0], problems(raw, project_dir)


def test_callers_without_auth_are_refused(raw, project_dir):
    raw.update(auth={"type": "none"})
    raw["model"]["callers"] = ["apps/client"]
    [problem] = problems(raw, project_dir)
    assert problem.startswith("kserve-stack:model.callers: ['apps/client'] is not allowed;")
    assert "auth type none lets every caller in" in problem


@pytest.mark.parametrize("istio", ["1.27.1", "1.27.7", "1.26.4", "1.25.5"])
def test_auth_refuses_an_istio_whose_jwks_fallback_anyone_can_sign(raw, project_dir, istio):
    """CVE-2026-31837: istiod falls back to a fixed key set whose private key is public while it
    cannot fetch the issuer's keys (pilot/pkg/model/jwks_resolver.go)."""
    raw["versions"] = {"kserve": "v0.15.2", "istio": istio}
    raw["mode"] = "serverless" if istio != "1.26.4" else "standard"
    [problem] = [p for p in problems(raw, project_dir) if "JWKS" in p]
    assert problem.startswith(f"kserve-stack:versions.istio: '{istio}' is not allowed;")
    assert "CVE-2026-31837" in problem and "1.27.8+" in problem and "auth type none" in problem
    raw["auth"] = {"type": "none"}
    assert parse(raw, project_dir).versions.istio == istio, "without auth the floor does not apply"


@pytest.mark.parametrize(("istio", "fixed"), [("1.27.8", True), ("1.27.9", True), ("1.28.0", True),
                                              ("1.27.7", False), ("1.26.9", False)])
def test_istio_releases_with_the_fixed_fallback(istio, fixed):
    assert versions.istio_jwks_fallback_fixed(istio) is fixed


def test_every_release_installs_a_fixed_istio_by_default():
    assert all(versions.istio_jwks_fallback_fixed(c.tested["istio"]) for c in versions.KSERVE_COMPAT.values())
    for release in ("v0.15.2", "v0.16.0", "v0.20.0"):
        low, high = versions.kserve_release(release).compat.window("istio")
        assert versions.in_range(versions.ISTIO_SECURITY_PATCH, (low, high)), release


def test_a_clusters_own_istio_is_not_refused_by_the_stack(raw, project_dir):
    """install.istio false: the stack cannot pick the cluster's istiod (the README says what it needs)."""
    raw.update(versions={"istio": "1.27.1"}, install={"istio": False, "gatewayApi": False})
    assert parse(raw, project_dir).auth.enabled


def test_https_is_standard_only(raw, project_dir):
    raw["gateway"] = {"scheme": "https"}
    assert parse(raw, project_dir).gateway.scheme == "https"
    raw["mode"] = "serverless"
    [problem] = problems(raw, project_dir)
    assert problem.startswith("kserve-stack:gateway.scheme: 'https' is not allowed;") and "allowed: http" in problem
    raw["gateway"] = {"scheme": "ftp"}
    [problem] = problems(raw, project_dir)
    assert problem == "kserve-stack:gateway.scheme: 'ftp' is not allowed; allowed: http, https"
