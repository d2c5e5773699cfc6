"""`install`, `layers` and `profile`: which shared layers the cluster already runs, and where."""

from __future__ import annotations

import pytest

from settings.config import ConfigError, Install, Layers, parse


def base(mode="standard", **extra) -> dict:
    return {"mode": mode, "model": {"storageUri": "gs://bucket/model"}, **extra}


def refused(raw: dict) -> str:
    with pytest.raises(ConfigError) as err:
        parse(raw)
    return str(err.value)


def test_every_layer_is_installed_by_default():
    cfg = parse(base())
    assert cfg.install == Install() and cfg.layers == Layers() and cfg.profile == "default"


def test_false_as_text_is_false():
    """`pulumi config set --path kserve-stack:install.istio false` stores a string."""
    cfg = parse(base(install={"istio": "false", "certManager": False}))
    assert cfg.install == Install(cert_manager=False, istio=False)


def test_kserve_is_always_the_stacks():
    message = refused(base(install={"kserve": False}))
    assert "kserve-stack:install.kserve: False is not allowed" in message and "certManager" in message


def test_an_unknown_layer_is_refused():
    message = refused(base(install={"linkerd": False}))
    assert "kserve-stack:install.linkerd" in message and "known keys: certManager, gatewayApi, istio" in message


def test_a_layer_of_the_other_mode_is_refused():
    assert "kserve-stack:install.knative: False is not allowed; only mode serverless" in refused(
        base(install={"knative": False}))
    assert "kserve-stack:install.gatewayApi" in refused(base("serverless", install={"gatewayApi": False}))


def test_not_a_boolean_is_refused():
    assert "kserve-stack:install.istio: 'maybe' is not allowed; expected true" in refused(
        base(install={"istio": "maybe"}))


def test_where_a_layer_is_only_for_one_the_cluster_runs():
    message = refused(base(layers={"certManager": {"namespace": "security"}}))
    assert "kserve-stack:layers.certManager" in message and "install.certManager: false" in message
    cfg = parse(base(install={"certManager": False}, layers={"certManager": {"namespace": "security"}}))
    assert cfg.layers.cert_manager_namespace == "security"


def test_a_malformed_place_is_refused():
    assert "kserve-stack:layers.istio.namespace: 'Istio_System'" in refused(
        base(install={"istio": False}, layers={"istio": {"namespace": "Istio_System"}}))


def test_the_stacks_knative_needs_istio_where_it_routes():
    message = refused(base("serverless", install={"istio": False}, layers={"istio": {"namespace": "mesh"}}))
    assert "kserve-stack:layers.istio" in message and "install.knative: false" in message
    cfg = parse(base("serverless", install={"istio": False, "knative": False}, layers={"istio": {"namespace": "mesh"}}))
    assert cfg.layers.istio_namespace == "mesh"


def test_profile():
    assert parse(base(profile="small")).profile == "small"
    assert "kserve-stack:profile: 'tiny' is not allowed; allowed: default, small" in refused(base(profile="tiny"))
