"""The layer-graph command prints the layers, their waits and the critical path."""

import subprocess
import sys


def test_graph_command_prints_layers_and_critical_path(project_dir):
    out = subprocess.run([sys.executable, "-m", "tools.graph", "serverless"], cwd=project_dir,
                         capture_output=True, text=True, check=True).stdout
    assert "KnativeLayer   waits for: IstioMesh" in out
    assert "GatewayLayer" not in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("critical path"))
    gates = lines[start + 1:]
    assert int(lines[start].split("(")[1].split()[0]) == len(gates) >= 5
    assert gates[-2].endswith("InferenceService model-isvc")
