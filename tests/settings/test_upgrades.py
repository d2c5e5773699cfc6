"""Changes a deployed stack cannot take in place are refused before anything is registered,
naming the key, the wanted value, what the stack runs and what is allowed; the others pass."""

from __future__ import annotations

import copy

import pytest

from settings.config import ConfigError, parse
from settings.upgrades import LOCAL_MODEL_CRDS, Deployed, kept_crds
from tests.conftest import PROJECT_DIR, stack_raw


def deployed(mode: str, kserve: str, serving: str | None = None, kept: tuple[str, ...] = ()) -> Deployed:
    """As the previous `up`'s outputs say (stack.py exports them)."""
    outputs = {"mode": mode, "kserve_version": kserve, "kept_crds": list(kept)}
    if serving:
        outputs["versions"] = {"kserve": kserve, "knativeServing": serving}
    return Deployed.from_outputs(outputs)


def config(stack: str, **versions: str) -> dict:
    raw = copy.deepcopy(stack_raw(stack))
    if versions:
        raw["versions"] = versions
    return raw


def refused(raw: dict, was: Deployed) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(raw, PROJECT_DIR, was)
    return err.value.problems


@pytest.mark.parametrize(("stack", "was", "versions", "key", "allowed"), [
    ("standard", ("standard", "v0.20.0"), {"kserve": "v0.16.0"}, "versions.kserve", "v0.20.0 or later"),
    ("serverless", ("serverless", "v0.16.0"), {"kserve": "v0.15.2"}, "versions.kserve", "v0.16.0 or later"),
    ("standard", ("standard", "v0.15.2"), {"kserve": "v0.16.0"}, "versions.kserve", "v0.19.0 or later"),
    ("serverless", ("serverless", "v0.15.2", "1.15.2"), {"kserve": "v0.16.0", "knativeServing": "1.16.0"},
     "versions.kserve", "v0.19.0 or later"),
    ("standard", ("serverless", "v0.20.0"), {}, "mode", "stack of its own"),
    ("serverless", ("serverless", "v0.16.0", "1.16.0"), {}, "versions.knativeServing", "1.15 to 1.17"),
])
def test_an_upgrade_that_cannot_be_done_in_place_is_refused(stack, was, versions, key, allowed):
    raw = config(stack, **versions)
    [problem] = refused(raw, deployed(*was))
    value = versions["kserve"] if key == "versions.kserve" else stack if key == "mode" else "1.21.1"
    assert problem.startswith(f"kserve-stack:{key}: {value!r} is not allowed;"), problem
    runs = {"mode": was[0], "versions.kserve": was[1], "versions.knativeServing": was[-1]}[key]
    assert allowed in problem and runs in problem, problem


@pytest.mark.parametrize(("stack", "was", "versions"), [
    ("standard", ("standard", "v0.16.0"), {"kserve": "v0.20.0"}),
    ("standard", ("standard", "v0.15.2"), {"kserve": "v0.20.0"}),
    ("standard", ("standard", "v0.20.0"), {"kserve": "v0.20.0"}),
    ("serverless", ("serverless", "v0.15.2", "1.15.2"), {"kserve": "v0.20.0", "knative": "v1.19.0",
                                                          "knativeServing": "1.16"}),
    ("serverless", ("serverless", "v0.20.0", "1.20.0"), {}),
    ("serverless", ("serverless", "v0.20.0", "1.21.1"), {"knative": "v1.21.1", "knativeServing": "1.20"}),
])
def test_an_upgrade_in_place_passes(stack, was, versions):
    parse(config(stack, **versions), PROJECT_DIR, deployed(*was))


def test_a_new_stack_takes_any_release():
    for kserve in ("v0.15.2", "v0.16.0", "v0.20.0"):
        assert parse(config("serverless", kserve=kserve), PROJECT_DIR, Deployed()).kept_crds == ()


def test_local_model_crds_are_kept_past_the_chart_split_and_from_then_on():
    assert kept_crds(deployed("standard", "v0.16.0"), "v0.20.0") == LOCAL_MODEL_CRDS
    assert kept_crds(deployed("standard", "v0.15.2"), "v0.20.0") == LOCAL_MODEL_CRDS
    assert kept_crds(deployed("standard", "v0.20.0", kept=LOCAL_MODEL_CRDS), "v0.20.0") == LOCAL_MODEL_CRDS
    assert kept_crds(deployed("standard", "v0.20.0"), "v0.20.0") == ()
    assert kept_crds(deployed("standard", "v0.15.2"), "v0.16.0") == (), "v0.16's own chart still ships them"
    cfg = parse(config("standard", kserve="v0.20.0"), PROJECT_DIR, deployed("standard", "v0.16.0"))
    assert cfg.kept_crds == LOCAL_MODEL_CRDS


def test_outputs_of_an_older_program_are_read_without_versions():
    was = Deployed.from_outputs({"mode": "serverless", "kserve_version": "v0.20.0"})
    assert was == Deployed(mode="serverless", kserve="v0.20.0", installed_layers=("certManager", "istio", "knative"))
    assert Deployed.from_outputs({}) == Deployed()


def test_a_layer_the_stack_installed_is_not_dropped_silently():
    """`install.<layer>: false` on a stack that installed it would delete it with the next `up`."""
    was = Deployed.from_outputs({"mode": "standard", "kserve_version": "v0.20.0",
                                 "installed_layers": ["certManager", "gatewayApi", "istio"]})
    with pytest.raises(ConfigError) as err:
        parse({**config("standard"), "install": {"certManager": False}}, PROJECT_DIR, was)
    assert "kserve-stack:install.certManager: False is not allowed; this stack installed certManager" in str(err.value)
    assert "pulumi state delete" in str(err.value)


def test_stacks_from_before_install_installed_every_layer():
    assert Deployed.from_outputs({"mode": "serverless"}).installed_layers == ("certManager", "istio", "knative")
    assert Deployed.from_outputs({}).installed_layers == ()


def test_a_layer_the_cluster_ran_from_the_start_stays_the_clusters():
    was = Deployed.from_outputs({"mode": "standard", "kserve_version": "v0.20.0",
                                 "installed_layers": ["gatewayApi", "istio"]})
    cfg = parse({**config("standard"), "install": {"certManager": False}}, PROJECT_DIR, was)
    assert cfg.install.cert_manager is False
