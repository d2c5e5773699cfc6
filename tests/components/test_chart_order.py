"""The post-renderer that orders objects inside one chart, on the real chart templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.chart_order import ANNOTATION, add_depends_on
from tests.conftest import SHARED_DIR

RULE = {"ClusterServingRuntime": "apps/namespaces/kserve/Deployment/kserve-controller-manager"}


def _runtimes_template(release: str) -> str:
    path = SHARED_DIR / "upstream-charts" / release / "kserve" / "templates" / "clusterservingruntimes.yaml"
    assert path.exists(), path
    return path.read_text()


@pytest.mark.parametrize("release", ["v0.15.2", "v0.16.0"])
def test_every_runtime_of_the_real_template_gets_the_annotation(release):
    text = _runtimes_template(release)
    out = add_depends_on(text, RULE)
    runtimes = text.count("kind: ClusterServingRuntime")
    assert runtimes >= 8
    assert out.count(f"    {ANNOTATION}: \"{RULE['ClusterServingRuntime']}\"") == runtimes
    assert out.replace(f"  annotations:\n    {ANNOTATION}: \"{RULE['ClusterServingRuntime']}\"\n", "") == text


def test_objects_of_other_kinds_are_untouched_and_existing_annotations_are_kept():
    rendered = (
        "---\n# Source: x/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        "---\napiVersion: serving.kserve.io/v1alpha1\nkind: ClusterServingRuntime\nmetadata:\n  name: b\n"
        "  annotations:\n    keep: \"me\"\nspec:\n  annotations:\n    not: metadata\n"
    )
    docs = [d for d in yaml.safe_load_all(add_depends_on(rendered, RULE)) if d]
    assert docs[0]["metadata"] == {"name": "a"}
    assert docs[1]["metadata"]["annotations"] == {"keep": "me", ANNOTATION: RULE["ClusterServingRuntime"]}
    assert docs[1]["spec"] == {"annotations": {"not": "metadata"}}


def test_flow_style_annotations_fail_loudly():
    with pytest.raises(ValueError, match="flow-style"):
        add_depends_on("kind: ClusterServingRuntime\nmetadata:\n  name: b\n  annotations: {}\n", RULE)


def test_runs_as_the_provider_runs_it():
    """`python3 -c <source> KIND=VALUE`, the chart on stdin, the result on stdout."""
    source = (Path(__file__).parents[2] / "components" / "chart_order.py").read_text()
    rendered = "kind: ClusterServingRuntime\nmetadata:\n  name: b\n"
    out = subprocess.run([sys.executable, "-c", source, "ClusterServingRuntime=a/B/c"], input=rendered,
                         capture_output=True, text=True, check=True).stdout
    assert yaml.safe_load(out)["metadata"]["annotations"] == {ANNOTATION: "a/B/c"}
