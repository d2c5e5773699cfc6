"""The stack's resource graph, captured by running the program against a recording mock
monitor: what is registered, under which layer, and which resources each one waits for.

`python -m tools.graph standard` prints the layer graph and the deploy's critical path: the
chain of dependencies holding the most readiness gates, resources whose wait depends on a
controller (see `is_gate`). The tests use the same capture.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

from components.readiness import SKIP_AWAIT, WAIT_FOR

LAYER_PREFIX = "kserve-stack:layers:"
REMOTE = ("kubernetes:helm.sh", "kubernetes:yaml")
"""Remote components (Chart, ConfigGroup): their children are registered by the provider,
so the capture holds them as single nodes."""
WAITING_TYPES = ("kubernetes:batch/v1:Job", "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service")
"""Waited for by the provider itself: a Job complete, a Deployment available, a Service with a
ready endpoint (pods a controller made turning Ready)."""


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: set[str] = field(default_factory=set)
    parent: str = ""
    read: bool = False
    """Read from the cluster (`Resource.get`), not created by the program."""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """(name, parent URN) of each identity the resource had before (`aliases`)."""

    @property
    def layer(self) -> str | None:
        """The name of the layer component this resource belongs to (itself, if a layer)."""
        chain = self.urn.split("::")[2].split("$")
        for typ in chain:
            if typ.startswith(LAYER_PREFIX):
                return typ.removeprefix(LAYER_PREFIX)
        return None


CLUSTER_CA = "-----BEGIN CERTIFICATE-----\nMIIB (the cluster's CA)\n-----END CERTIFICATE-----\n"
"""What the mock cluster's kube-root-ca.crt holds."""


class _Mocks(pulumi_mocks.Mocks):
    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:ConfigMap" and args.resource_id == "kube-system/kube-root-ca.crt":
            state["data"] = {"ca.crt": CLUSTER_CA}
        if args.typ == "kubernetes:core/v1:Service":
            state.setdefault("status", {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}})
        return (args.resource_id or f"{args.name}-id", state)

    def call(self, args: pulumi_mocks.MockCallArgs):
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps each registration's inputs and dependency URNs."""

    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.registrations: dict[str, Registration] = {}

    def _record(self, request, urn: str, custom: bool, read: bool = False) -> None:
        props = request.object if hasattr(request, "object") else request.properties
        inputs = pulumi.runtime.rpc.deserialize_properties(props)
        deps = set(getattr(request, "dependencies", []))
        for prop in getattr(request, "propertyDependencies", {}).values():
            deps |= set(prop.urns)
        aliases = [(a.spec.name, a.spec.parentUrn) for a in getattr(request, "aliases", [])
                   if a.HasField("spec") and a.spec.name]
        self.registrations[urn] = Registration(
            urn=urn, type=request.type, name=request.name, custom=custom,
            inputs=inputs, dependencies=deps, parent=request.parent, read=read, aliases=aliases,
        )

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, bool(request.custom))
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self._record(request, response.urn, True, read=True)
        return response


def capture(program: Callable[[], Any], stack: str = "test", preview: bool = True) -> RecordingMonitor:
    """Runs `program` under mocks and returns the monitor holding every registration."""
    monitor = RecordingMonitor()
    pulumi.runtime.set_mocks(monitor.mocks, project="kserve-stack", stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
    outputs: dict[str, Any] = {}

    def run():
        result = program()
        if isinstance(result, dict):
            outputs.update(result)

    _sync_await(pulumi.runtime.stack.run_pulumi_func(run))
    monitor.outputs = {k: _resolve(v) for k, v in outputs.items()}
    return monitor


def _resolve(value: Any) -> Any:
    """An output's value, with the outputs nested in it (as `pulumi.export` resolves them)."""
    return _sync_await(pulumi.Output.from_input(value).future())


def layer_edges(regs: dict[str, Registration]) -> set[tuple[str, str]]:
    """(dependent layer, layer it waits for), from resource-level dependencies."""
    edges = set()
    for reg in regs.values():
        for dep in reg.dependencies:
            target = regs.get(dep)
            if reg.layer and target and target.layer and target.layer != reg.layer:
                edges.add((reg.layer, target.layer))
    return edges


def is_gate(reg: Registration) -> bool:
    """True when the resource's readiness wait depends on a controller writing something: an
    explicit `pulumi.com/waitFor`, a Job, Deployment or Service (see WAITING_TYPES), or a Chart or
    ConfigGroup, whose children wait (CRDs Established, Deployments Available, webhook CA
    bundles). Never with `pulumi.com/skipAwait`; never a read, a Namespace, ConfigMap or claim."""
    if reg.read or not (reg.custom or reg.type.startswith(REMOTE)):
        return False
    metadata = reg.inputs.get("metadata")
    annotations = (metadata.get("annotations") if isinstance(metadata, dict) else None) or {}
    if annotations.get(SKIP_AWAIT) == "true" or reg.inputs.get("skipAwait") is True:
        return False
    if WAIT_FOR in annotations or reg.type in WAITING_TYPES:
        return True
    if reg.type.startswith(REMOTE):
        # Every object skipping its await: nothing waits. No objects: read from files, or left out
        # by this command (the Gateway API CRDs), which still wait in a deploy.
        objs = [o for o in reg.inputs.get("objs") or [] if isinstance(o, dict)]
        return not objs or not all(
            ((o.get("metadata") or {}).get("annotations") or {}).get(SKIP_AWAIT) == "true" for o in objs)
    return False


def critical_path(regs: dict[str, Registration]) -> list[str]:
    """The gates, in order, of the dependency chain holding the most gates. Resources that are
    not gates still link a chain; they add nothing to its length."""
    nodes = {urn for urn, r in regs.items() if r.custom or r.type.startswith(REMOTE)}
    children: dict[str, set[str]] = {}
    for urn, reg in regs.items():
        if reg.parent:
            children.setdefault(reg.parent, set()).add(urn)

    def leaves(urn: str) -> set[str]:
        if urn in nodes:
            return {urn}
        out: set[str] = set()
        for child in children.get(urn, ()):
            out |= leaves(child)
        return out

    memo: dict[str, list[str]] = {}

    def heaviest(urn: str) -> list[str]:
        if urn not in memo:
            memo[urn] = []  # a cycle adds nothing
            best: list[str] = []
            for dep in sorted(d for d in regs[urn].dependencies if d in regs):
                for leaf in sorted(leaves(dep)):
                    chain = heaviest(leaf)
                    if len(chain) > len(best):
                        best = chain
            memo[urn] = [*best, urn] if is_gate(regs[urn]) else best
        return memo[urn]

    return max((heaviest(urn) for urn in sorted(nodes)), key=len, default=[])


def describe(urn: str, regs: dict[str, Registration]) -> str:
    reg = regs[urn]
    return f"{reg.layer or '-'}: {reg.type.split(':')[-1]} {reg.name}"


def program_for(stack_file: Path) -> Callable[[], dict[str, Any]]:
    """The real program for a stack file, with the Gateway API CRDs read from a local manifest
    when the stack names one, or else replaced by an empty list (the graph does not need them)."""
    from settings import config, manifests
    from stack import build

    cfg = config.from_stack_file(stack_file)

    def load(source):
        return manifests.load(source) if source.path else []

    return lambda: build(cfg, load_manifest=load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--project-dir", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    monitor = capture(program_for(args.project_dir / f"Pulumi.{args.stack}.yaml"), stack=args.stack)
    regs = monitor.registrations
    layers = sorted({r.layer for r in regs.values() if r.layer})
    edges = layer_edges(regs)
    print(f"layers ({args.stack}):")
    for layer in layers:
        waits_for = sorted(t for s, t in edges if s == layer)
        print(f"  {layer:<14} waits for: {', '.join(waits_for) or '(nothing)'}")
    path = critical_path(regs)
    print(f"critical path ({len(path)} gates):")
    for i, urn in enumerate(path, 1):
        print(f"  {i:>2}. {describe(urn, regs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
