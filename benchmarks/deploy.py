"""Benchmark: the deploy's critical path, measured against what the graph predicts.

For each stack (KServe v0.20.0, the real charts, `readiness: wait`), `pulumi up` on a fresh
KWOK cluster (the set-up of tests/integration/test_readiness_engine.py), where every write
the upstream controllers would make comes `d` seconds after its preconditions hold. It
prints the wall time of `up` with d = 0 (the engine's own time) and with d, the number of
gates on the critical path that `python -m tools.graph <stack>` finds for the same program,
the prediction `up(d=0) + gates × d`, and the gates the measurement itself shows,
`(up(d) - up(d=0)) / d`. A measured time well above the prediction is parallelism the
program leaves unused. The engine's own time varies by tens of seconds between runs on 2
cores; a large `d` (20 s) makes the gates stand out from it.

    eval "$(bash scripts/toolchain.sh)"
    .venv/bin/python benchmarks/deploy.py [--stacks standard serverless] [--delay 5] [--program DIR]

`--program` deploys another checkout of this repository (say, the commit before a change to
the graph), with its own graph command.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.apiserver import LocalApiServer  # noqa: E402
from tests.integration.controllers import UpstreamControllers  # noqa: E402
from tests.integration.engine import Engine, Toolchain  # noqa: E402
from tests.integration.test_readiness_engine import readiness_config  # noqa: E402


def graph_gates(program: Path, stack: str) -> int:
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.graph", stack], cwd=program,
                         capture_output=True, text=True, check=True).stdout
    return int(re.search(r"critical path \((\d+) gates\)", out).group(1))


def up_seconds(toolchain: Toolchain, home: Path, work: Path, program: Path, stack: str, delay: float) -> float:
    with LocalApiServer(Path(os.environ["KSERVE_STACK_K8S_BIN"]), admission_webhooks=False,
                        kwok=Path(os.environ["KSERVE_STACK_KWOK"])) as api:
        engine = Engine(toolchain, home, api.kubeconfig, state=work / "state")
        project = engine.project(work / "project", stack, readiness_config(stack), source=program)
        with UpstreamControllers(api.client(), delay=delay, ca_bundle=api.ca_bundle()):
            return project.up().seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stacks", nargs="+", default=["standard", "serverless"])
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--program", type=Path, default=ROOT)
    args = parser.parse_args()
    toolchain = Toolchain.from_env()
    d = args.delay
    print(f"{'stack':<12}{'gates':>6}{'up d=0 s':>10}{f'up d={d:g} s':>12}{'predicted s':>13}{'excess s':>10}"
          f"{'measured gates':>16}")
    with tempfile.TemporaryDirectory(prefix="kserve-stack-deploy-") as tmp:
        root = Path(tmp)
        for stack in args.stacks:
            gates = graph_gates(args.program, stack)
            base = up_seconds(toolchain, root / "home", root / f"{stack}-0", args.program, stack, 0.0)
            delayed = up_seconds(toolchain, root / "home", root / f"{stack}-d", args.program, stack, d)
            predicted = base + gates * d
            print(f"{stack:<12}{gates:>6}{base:>10.1f}{delayed:>12.1f}{predicted:>13.1f}{delayed - predicted:>10.1f}"
                  f"{(delayed - base) / d:>16.1f}", flush=True)


if __name__ == "__main__":
    main()
