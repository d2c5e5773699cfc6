"""Benchmark: the real engine on a local API server, per stack, against the engine's floor.

For each stack (KServe v0.20.0, the real charts from shared/upstream-charts, `readiness: skip`
as in the engine tests): wall time of the first `pulumi preview`, `pulumi up`, the no-change
`pulumi preview` and `pulumi destroy`. The floor is the same CLI and provider previewing a
Python program with one ConfigMap. Prints seconds and the ratio to the floor.

With `--models 1 5`, instead: what each model costs a stack that changes nothing. The stack takes
`kserve-stack:models`, the tutorial model (`path: model`) under 1 name, then under 5 (`model`,
`model-2`, ...; the first keeps its name, so going to 5 only adds); after the `up` that deploys
each count, the wall time of a no-change `pulumi preview` and a no-change `pulumi up`
(both `--expect-no-changes`), and the cost of one more model: (t5 - t1) / 4.

    eval "$(bash scripts/toolchain.sh)"
    .venv/bin/python benchmarks/engine.py [--stacks standard serverless] [--runs 1] [--models 1 5]
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


def models_config(stack: str, count: int) -> dict:
    """The stack's config with `kserve-stack:models`: its one model under `count` names."""
    config = stack_config(stack, "v0.20.0")
    model = config.pop("kserve-stack:model")
    names = ["model", *(f"model-{i}" for i in range(2, count + 1))]
    return {**config, "kserve-stack:models": [{**model, "name": name} for name in names]}


def measure_models(engine: Engine, work: Path, stack: str, counts: list[int], runs: int) -> dict[str, list[float]]:
    """Step → median seconds of its no-change run, one per model count."""
    project = engine.project(work, stack, models_config(stack, counts[0]))
    times: dict[str, list[float]] = {"no-change preview": [], "no-change up": []}
    for count in counts:
        project.configure(models_config(stack, count))
        project.up()
        previews = [project.preview("--expect-no-changes").seconds for _ in range(runs)]
        ups = [project.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes", "-s", stack).seconds
               for _ in range(runs)]
        times["no-change preview"].append(statistics.median(previews))
        times["no-change up"].append(statistics.median(ups))
    project.destroy()
    return times


def print_models(stack: str, counts: list[int], times: dict[str, list[float]]) -> None:
    first, last = counts
    print(f"{'stack':<12}{'step':<20}{f'{first} model(s)':>12}{f'{last} model(s)':>12}{'per added model':>17}")
    for step, (t_first, t_last) in times.items():
        print(f"{stack:<12}{step:<20}{t_first:>12.1f}{t_last:>12.1f}{(t_last - t_first) / (last - first):>17.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stacks", nargs="+", default=["standard", "serverless"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--models", nargs=2, type=int, metavar=("FEW", "MANY"),
                        help="measure the no-change preview and up with FEW, then MANY models (e.g. 1 5)")
    args = parser.parse_args()
    if args.models and args.models[0] >= args.models[1]:
        parser.error("--models: FEW must be less than MANY")
    toolchain = Toolchain.from_env()
    with tempfile.TemporaryDirectory(prefix="kserve-stack-bench-") as tmp:
        root = Path(tmp)
        home = root / "pulumi-home"
        with LocalApiServer(Path(os.environ["KSERVE_STACK_K8S_BIN"]), admission_webhooks=False) as api:
            engine = Engine(toolchain, home, api.kubeconfig, state=root / "state-floor")
            floor = floor_seconds(engine, root / "floor")
            print(f"floor (one-resource preview): {floor:.1f} s")
            if args.models:
                for stack in args.stacks:
                    engine = Engine(toolchain, home, api.kubeconfig, state=root / f"state-{stack}-models")
                    times = measure_models(engine, root / f"{stack}-models", stack, args.models, args.runs)
                    print_models(stack, args.models, times)
                return
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
