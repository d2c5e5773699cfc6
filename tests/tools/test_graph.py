"""The layer-graph command prints the layers, their waits and the critical path, counted in
readiness gates."""

import re
import subprocess
import sys

import pytest

from tools.graph import Registration, is_gate

ROW = re.compile(r"^ +(\d+)\. (\S+): (\S+) (\S+)$")


def graph_output(project_dir, stack: str) -> tuple[list[str], int, list[tuple[str, str, str]]]:
    """The printed lines, the count in the critical-path heading and the listed (layer, kind, name)."""
    out = subprocess.run([sys.executable, "-m", "tools.graph", stack], cwd=project_dir,
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("critical path"))
    heading = re.fullmatch(r"critical path \((\d+) gates\):", lines[start])
    assert heading, lines[start]
    rows = [ROW.match(line) for line in lines[start + 1:]]
    assert all(rows), lines[start + 1:]
    assert [int(r[1]) for r in rows] == list(range(1, len(rows) + 1))
    return lines, int(heading[1]), [(r[2], r[3], r[4]) for r in rows]


@pytest.fixture(scope="module")
def printed(project_dir):
    return {stack: graph_output(project_dir, stack) for stack in ("standard", "serverless")}


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_printed_count_is_the_number_of_listed_gates(printed, stack):
    _, count, gates = printed[stack]
    assert count == len(gates) > 0
    assert gates[-1] == ("ModelService", "Job", "model-smoke-test")
    assert gates[-2] in (("ModelService", "InferenceService", "model-isvc"),
                         ("ModelService", "PodDisruptionBudget", "model-serving")), \
        "the two model waits run side by side"


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_no_instant_resource_is_listed(printed, stack):
    _, _, gates = printed[stack]
    instant = {"Namespace", "ConfigMap", "PersistentVolumeClaim", "PersistentVolume", "IngressClass", "GatewayClass"}
    assert not [g for g in gates if g[1] in instant]


def test_standard_critical_path(printed):
    lines, count, gates = printed["standard"]
    assert count <= 5, gates
    assert "  GatewayLayer   waits for: ClusterCheck" in lines
    assert "  ClusterCheck   waits for: (nothing)" in lines
    assert ("KServeRelease", "Certificate", "kserve-gateway-certificate") not in gates


def test_serverless_critical_path(printed):
    lines, count, gates = printed["serverless"]
    assert "  KnativeLayer   waits for: ClusterCheck, IstioMesh" in lines
    assert not [line for line in lines if "GatewayLayer" in line]
    assert ("KnativeLayer", "KnativeServing", "knative-serving") in gates
    assert ("IstioMesh", "Chart", "istio-ingressgateway") not in gates, "KnativeServing waits for istiod only"
    assert count == 7


def reg(type_: str, name: str = "x", annotations: dict | None = None, custom: bool = True, read: bool = False,
        **inputs) -> Registration:
    metadata = {"name": name, **({"annotations": annotations} if annotations is not None else {})}
    return Registration(urn=f"urn:pulumi:test::kserve-stack::{type_}::{name}", type=type_, name=name,
                        custom=custom, inputs={"metadata": metadata, **inputs}, read=read)


WAIT = {"pulumi.com/waitFor": "condition=Ready"}
SKIP = {"pulumi.com/skipAwait": "true"}


@pytest.mark.parametrize(("registration", "gate"), [
    (reg("kubernetes:core/v1:Namespace"), False),
    (reg("kubernetes:core/v1:ConfigMap"), False),
    (reg("kubernetes:core/v1:PersistentVolumeClaim", annotations=SKIP), False),
    (reg("kubernetes:gateway.networking.k8s.io/v1:GatewayClass", annotations={}), False),
    (reg("kubernetes:core/v1:Service", read=True), False),
    (reg("kubernetes:cert-manager.io/v1:Certificate", annotations=WAIT), True),
    (reg("kubernetes:cert-manager.io/v1:Certificate", annotations={**WAIT, **SKIP}), False),
    (reg("kubernetes:cert-manager.io/v1:Certificate"), False),
    (reg("kubernetes:batch/v1:Job", annotations={"pulumi.com/timeoutSeconds": "600"}), True),
    (reg("kubernetes:batch/v1:Job", annotations=SKIP), False),
    (reg("kubernetes:apps/v1:Deployment"), True),
    (reg("kubernetes:helm.sh/v4:Chart", custom=False, skipAwait=False), True),
    (reg("kubernetes:helm.sh/v4:Chart", custom=False, skipAwait=True), False),
    (reg("kubernetes:yaml/v2:ConfigGroup", custom=False, objs=[{"kind": "CustomResourceDefinition"}]), True),
    (reg("kubernetes:yaml/v2:ConfigGroup", custom=False,
         objs=[{"kind": "CustomResourceDefinition", "metadata": {"annotations": SKIP}}]), False),
    (reg("kserve-stack:layers:ModelService", custom=False), False),
], ids=lambda v: v if isinstance(v, bool) else f"{v.type.rsplit(':', 1)[-1]}-{v.inputs}")
def test_is_gate(registration, gate):
    assert is_gate(registration) is gate
