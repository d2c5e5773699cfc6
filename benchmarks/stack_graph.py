"""Benchmark: how long the program takes to build its resource graph, per stack.

Runs the real program under the recording mock monitor (no engine, no cluster) several
times and prints the resource count and wall time (min / median / max) per stack.

    .venv/bin/python benchmarks/stack_graph.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.graph import capture, program_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"{'stack':<12}{'resources':>10}{'custom':>8}{'min ms':>9}{'median ms':>11}{'max ms':>9}")
    for stack in ("standard", "serverless"):
        program = program_for(ROOT / f"Pulumi.{stack}.yaml")
        times, regs = [], {}
        for _ in range(args.runs):
            start = time.perf_counter()
            regs = capture(program, stack=stack).registrations
            times.append((time.perf_counter() - start) * 1000)
        custom = sum(1 for r in regs.values() if r.custom)
        print(f"{stack:<12}{len(regs):>10}{custom:>8}{min(times):>9.1f}{statistics.median(times):>11.1f}"
              f"{max(times):>9.1f}")


if __name__ == "__main__":
    main()
