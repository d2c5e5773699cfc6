"""Every Helm value the program passes is a key the chart really has (issue: bad input never
reaches a cluster). The keys are recorded next to the version table, with their upstream file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from components.cluster_check import CHART as CLUSTER_CHECK_CHART
from settings import versions as v
from settings.versions import CHART_VALUE_KEYS, default_versions
from tests.conftest import SHARED_DIR

VARIANTS = [
    ("standard", {}),
    ("serverless", {}),
    ("standard", {"imageRegistry": "mirror.local:5000/upstream"}),
    ("serverless", {"imageRegistry": "mirror.local:5000", "gateway": {"serviceType": "NodePort"}}),
    ("standard", {"versions": default_versions("v0.15.2"), "imageRegistry": "mirror.local"}),
    ("serverless", {"versions": default_versions("v0.16.0")}),
    ("standard", {"profile": "small"}),
    ("serverless", {"profile": "small"}),
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
    charts = [c for c in run_stack(stack, **overrides).of_type("helm.sh/v4:Chart")
              if c.inputs["chart"] != f"./{CLUSTER_CHECK_CHART.as_posix()}"]  # the stack's own, not upstream
    assert len(charts) >= 5
    for chart in charts:
        name = chart_name(chart.inputs["chart"])
        assert name in CHART_VALUE_KEYS, f"no recorded keys for chart {name}"
        assert not unknown_keys(name, chart.inputs.get("values") or {}), (name, chart.inputs["values"])


def test_a_misspelled_key_is_caught():
    assert unknown_keys("kserve-resources", {"kserve": {"controller": {"deploymentmode": "Standard"}}}) == [
        "kserve.controller.deploymentmode"]
    assert unknown_keys("cert-manager", {"crds": {"enable": True}}) == ["crds.enable"]


def test_every_chart_names_its_upstream_source():
    for chart, (source, _) in CHART_VALUE_KEYS.items():
        assert "/" in source and "values.yaml" in source, chart


@pytest.mark.parametrize("kserve", ["v0.15.2", "v0.16.0"])
def test_old_releases_keep_the_charts_runtimes_after_its_webhook(run_stack, kserve):
    """One owner per runtime: the `kserve` chart's own, ordered after the controller and the
    webhook that validates them, and no second one made by the stack."""
    run = run_stack("standard", versions=default_versions(kserve), imageRegistry="mirror.local")
    controller = run.named("kserve-controller")
    values = controller.inputs["values"]["kserve"]
    assert values["servingruntime"] == {"art": {"image": "mirror.local/kserve/art-explainer"}}, \
        "the chart's runtimes get their images from the chart transform, not values"
    assert not run.of_type("serving.kserve.io/v1alpha1:ClusterServingRuntime")
    renderer = controller.inputs["postRenderer"]
    assert renderer["command"] == "python3" and renderer["args"][0] == "-c"
    assert renderer["args"][2:] == [
        "ClusterServingRuntime=apps/namespaces/kserve/Deployment/kserve-controller-manager,"
        "admissionregistration.k8s.io/ValidatingWebhookConfiguration/clusterservingruntime.serving.kserve.io"]
    assert values["storage"]["image"] == "mirror.local/kserve/storage-initializer"


def test_new_releases_render_runtimes_in_their_own_chart_unordered(run_stack):
    run = run_stack("standard")
    assert "postRenderer" not in run.named("kserve-controller").inputs
    assert run.waits_for(run.named("kserve-runtimes"), run.named("kserve-controller"))


def _chart_values(chart_dir) -> dict:
    """A chart's values.yaml, with Istio's wrapper for its defaults (`defaults` before 1.25,
    `_internal_defaults_do_not_set` after) taken off: users set those keys at the top."""
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    for wrapper in ("defaults", "_internal_defaults_do_not_set"):
        if isinstance(values.get(wrapper), dict):
            values = {**values.pop(wrapper), **values}
    return values


def _has_path(values: Mapping[str, Any], path: str) -> bool:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _installable(chart_yaml) -> bool:
    """Not Istio 1.23 (KServe v0.15.2's own pin, in shared/): the config accepts Istio 1.25+ only,
    and istiod's keys moved at 1.24 (`pilot.resources` became `resources`)."""
    chart = yaml.safe_load(chart_yaml.read_text())
    return chart["name"] not in ("istiod", "gateway", "base") or v.in_range(chart["version"], ("1.24", "1.99"))


REAL_CHARTS = sorted(p.parent for p in (SHARED_DIR / "upstream-charts").glob("*/*/Chart.yaml") if _installable(p))


@pytest.mark.parametrize("chart_dir", REAL_CHARTS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_recorded_keys_are_the_real_charts_keys(chart_dir):
    """Each key the program may set exists in every released chart of that name in shared/."""
    name = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["name"]
    _, known = CHART_VALUE_KEYS[name]
    values = _chart_values(chart_dir)
    missing = sorted(k for k in known if not _has_path(values, k))
    assert not missing, f"{chart_dir.parent.name} {name}: keys not in its values.yaml: {missing}"
