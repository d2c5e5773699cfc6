"""Every Helm value the program passes is a key the chart really has (issue: bad input never
reaches a cluster). The keys are recorded next to the version table, with their upstream file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from settings.versions import CHART_VALUE_KEYS, default_versions

VARIANTS = [
    ("standard", {}),
    ("serverless", {}),
    ("standard", {"imageRegistry": "mirror.local:5000/upstream"}),
    ("serverless", {"imageRegistry": "mirror.local:5000", "gateway": {"serviceType": "NodePort"}}),
    ("standard", {"versions": default_versions("v0.15.2"), "imageRegistry": "mirror.local"}),
    ("serverless", {"versions": default_versions("v0.16.0")}),
]


def leaf_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def unknown_keys(chart: str, values: Mapping[str, Any]) -> list[str]:
    _, known = CHART_VALUE_KEYS[chart]
    return [p for p in leaf_paths(values) if not any(p == k or p.startswith(k + ".") for k in known)]


def chart_name(reference: str) -> str:
    return reference.rstrip("/").rsplit("/", 1)[-1]


@pytest.mark.parametrize(("stack", "overrides"), VARIANTS)
def test_every_value_is_a_known_chart_key(run_stack, stack, overrides):
    charts = run_stack(stack, **overrides).of_type("helm.sh/v4:Chart")
    assert len(charts) >= 5
    for chart in charts:
        name = chart_name(chart.inputs["chart"])
        assert name in CHART_VALUE_KEYS, f"no recorded keys for chart {name}"
        assert not unknown_keys(name, chart.inputs.get("values") or {}), (name, chart.inputs["values"])


def test_a_misspelled_key_is_caught():
    assert unknown_keys("kserve-resources", {"kserve": {"controller": {"deploymentmode": "Standard"}}}) == [
        "kserve.controller.deploymentmode"]
    assert unknown_keys("cert-manager", {"crds": {"enable": True}}) == ["crds.enable"]
    assert unknown_keys("istiod", {"pilot": {"env": {"ANY_VARIABLE": "1"}}}) == []


def test_every_chart_names_its_upstream_source():
    for chart, (source, _) in CHART_VALUE_KEYS.items():
        assert "/" in source and "values.yaml" in source, chart


def test_old_releases_get_the_sklearn_runtime_after_the_webhook(run_stack):
    run = run_stack("standard", versions=default_versions("v0.15.2"), imageRegistry="mirror.local")
    values = run.named("kserve-controller").inputs["values"]["kserve"]
    assert values["servingruntime"]["sklearnserver"] == {"disabled": True}
    assert all(v == {"disabled": True} for v in values["servingruntime"].values())
    runtime = run.named("kserve-runtimes")
    assert runtime.type == "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"
    container = runtime.inputs["spec"]["containers"][0]
    assert container["image"] == "mirror.local/kserve/sklearnserver:v0.15.2"
    assert run.waits_for(runtime, run.named("kserve-controller"))
    assert values["controller"]["image"] == "mirror.local/kserve/kserve-controller"
