"""Benchmark: the real engine on a local API server, per stack, against the engine's floor.

For each stack (KServe v0.20.0, the real charts from shared/upstream-charts, `readiness: skip`
as in the engine tests): wall time of the first `pulumi preview`, `pulumi up`, the no-change
`pulumi preview` and `pulumi destroy`. The floor is the same CLI and provider previewing a
Python program with one ConfigMap. Prints seconds and the ratio to the floor.

    eval "$(bash scripts/toolchain.sh)"
    .venv/bin/python benchmarks/engine.py [--stacks standard serverless] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.apiserver import LocalApiServer  # noqa: E402
from tests.integration.engine import Engine, Toolchain  # noqa: E402
from tests.integration.test_engine import stack_config  # noqa: E402

FLOOR_PROGRAM = '''import pulumi_kubernetes as k8s
k8s.core.v1.ConfigMap("floor", metadata={"name": "floor", "namespace": "default"}, data={"a": "b"})
'''


def floor_seconds(engine: Engine, work: Path) -> float:
    """One preview of a one-resource program (after a first preview that warms the caches)."""
    work.mkdir(parents=True)
    (work / "Pulumi.yaml").write_text(
        f"name: floor\nruntime:\n  name: python\n  options:\n    virtualenv: {engine.venv}\n")
    (work / "__main__.py").write_text(FLOOR_PROGRAM)
    engine.run(work, "stack", "init", "floor", "--secrets-provider", "passphrase")
    engine.run(work, "preview", "-s", "floor")
    return engine.run(work, "preview", "-s", "floor").seconds


def measure(engine: Engine, work: Path, stack: str) -> dict[str, float]:
    project = engine.project(work, stack, stack_config(stack, "v0.20.0"))
    return {
        "preview": project.preview().seconds,
        "up": project.up().seconds,
        "no-change preview": project.preview("--expect-no-changes").seconds,
        "destroy": project.destroy().seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stacks", nargs="+", default=["standard", "serverless"])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    toolchain = Toolchain.from_env()
    with tempfile.TemporaryDirectory(prefix="kserve-stack-bench-") as tmp:
        root = Path(tmp)
        home = root / "pulumi-home"
        with LocalApiServer(Path(os.environ["KSERVE_STACK_K8S_BIN"]), admission_webhooks=False) as api:
            engine = Engine(toolchain, home, api.kubeconfig, state=root / "state-floor")
            floor = floor_seconds(engine, root / "floor")
            print(f"floor (one-resource preview): {floor:.1f} s")
            print(f"{'stack':<12}{'step':<20}{'seconds':>9}{'x floor':>9}")
            for stack in args.stacks:
                runs: dict[str, list[float]] = {}
                for i in range(args.runs):
                    engine = Engine(toolchain, home, api.kubeconfig, state=root / f"state-{stack}-{i}")
                    for step, seconds in measure(engine, root / f"{stack}-{i}", stack).items():
                        runs.setdefault(step, []).append(seconds)
                for step, values in runs.items():
                    median = statistics.median(values)
                    print(f"{stack:<12}{step:<20}{median:>9.1f}{median / floor:>9.1f}")


if __name__ == "__main__":
    main()
