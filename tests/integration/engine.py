"""The real Pulumi engine, driven the way a user drives it: `pulumi preview`, `up`, `destroy`.

The CLI, its Python language host and the kubernetes resource provider are the ones
`scripts/toolchain.sh` builds from Go modules. Two differences from a user's install, both
forced by what the Go module proxy serves:
- the language host comes from the v3.79.0 sdk module; it ignores Pulumi.yaml's
  `virtualenv` option, so the project's virtualenv goes first on PATH instead;
- the kubernetes provider is the 4.25.0-alpha.1768448096 build, installed under the version
  the pinned SDK asks for (4.34.2). Where 4.25 is more lenient than 4.34 (4.25 adopts an
  object that already exists where 4.34 refuses to create it), the tests check the stricter
  behaviour themselves (`existing_creates`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROGRAM_FILES = ("__main__.py", "stack.py", "components", "settings", "model", "samples", "Pulumi.yaml",
                 "requirements.txt")
"""What `pulumi up` needs from the repository: the program, its data and its project file."""


class EngineMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Toolchain:
    pulumi_bin: Path
    provider: Path
    provider_version: str

    @classmethod
    def from_env(cls) -> Toolchain:
        """The tools `eval "$(bash scripts/toolchain.sh)"` exported."""
        bin_dir, provider = os.environ.get("KSERVE_STACK_PULUMI_BIN"), os.environ.get("KSERVE_STACK_K8S_PROVIDER")
        if not bin_dir or not provider:
            raise EngineMissing("the Pulumi engine is not built: run `eval \"$(bash scripts/toolchain.sh)\"` "
                                "(or bash scripts/test.sh)")
        tools = [Path(bin_dir) / n for n in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")]
        missing = [str(p) for p in [*tools, Path(provider)] if not p.exists()]
        if missing:
            raise EngineMissing(f"the Pulumi engine is incomplete, missing: {', '.join(missing)}")
        return cls(Path(bin_dir), Path(provider), os.environ.get("KSERVE_STACK_K8S_PROVIDER_VERSION", "?"))


def sdk_plugin_version() -> str:
    """The kubernetes plugin version the installed pulumi-kubernetes SDK asks the engine for."""
    meta = json.loads(resources.files("pulumi_kubernetes").joinpath("pulumi-plugin.json").read_text())
    return meta["version"]


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Engine:
    """One PULUMI_HOME with the kubernetes plugin installed, one file backend, one kubeconfig."""

    toolchain: Toolchain
    home: Path
    kubeconfig: Path
    state: Path | None = None
    """The file backend's directory; default: beside the plugins in `home`."""
    venv: Path = PROJECT_DIR / ".venv"
    runs: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.state or self.home / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        version = sdk_plugin_version()
        if not (self.home / "plugins" / f"resource-kubernetes-v{version}").exists():
            self.run(None, "plugin", "install", "resource", "kubernetes", version,
                     "--file", str(self.toolchain.provider), timeout=300)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": os.pathsep.join([str(self.venv / "bin"), str(self.toolchain.pulumi_bin), os.environ["PATH"]]),
            "VIRTUAL_ENV": str(self.venv),
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": "kserve-stack-tests",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "KUBECONFIG": str(self.kubeconfig),
        }

    def run(self, cwd: Path | None, *args: str, timeout: float = 1200, check: bool = True) -> Run:
        start = time.monotonic()
        proc = subprocess.run([str(self.toolchain.pulumi_bin / "pulumi"), *args, "--non-interactive"],
                              cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        run = Run(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        self.runs.append(run)
        if check and proc.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}")
        return run

    def project(self, work: Path, stack: str, config: dict[str, Any], source: Path = PROJECT_DIR) -> Project:
        """A copy of the program (from `source`, a checkout of this repository) in `work`, with
        stack `stack` initialised from `config`."""
        work.mkdir(parents=True, exist_ok=True)
        for name in PROGRAM_FILES:
            src = source / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
        meta = yaml.safe_load((work / "Pulumi.yaml").read_text())
        meta["runtime"]["options"]["virtualenv"] = str(self.venv)
        (work / "Pulumi.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (work / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        project = Project(self, work, stack)
        project.pulumi("stack", "init", stack, "--secrets-provider", "passphrase", timeout=120)
        return project


@dataclass
class Project:
    engine: Engine
    dir: Path
    stack: str

    def pulumi(self, *args: str, timeout: float = 1200, check: bool = True) -> Run:
        return self.engine.run(self.dir, *args, timeout=timeout, check=check)

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the stack's config, as a user editing Pulumi.<stack>.yaml."""
        (self.dir / f"Pulumi.{self.stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def start(self, *args: str) -> subprocess.Popen:
        """A pulumi command left running, in a session of its own: the test can kill the engine
        and every plugin it started, as an interrupted run would end."""
        return subprocess.Popen([str(self.engine.toolchain.pulumi_bin / "pulumi"), *args, "--non-interactive"],
                                cwd=self.dir, env=self.engine.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    def preview(self, *extra: str) -> Run:
        return self.pulumi("preview", "-s", self.stack, *extra)

    def up(self) -> Run:
        return self.pulumi("up", "--yes", "--skip-preview", "-s", self.stack)

    def destroy(self) -> Run:
        return self.pulumi("destroy", "--yes", "-s", self.stack)

    def outputs(self) -> dict[str, Any]:
        return self.pulumi("stack", "output", "--json", "--show-secrets", "-s", self.stack).json()

    def state(self) -> list[dict[str, Any]]:
        """Every resource in the stack's state, as `pulumi stack export` writes it."""
        exported = self.pulumi("stack", "export", "-s", self.stack).json()
        return exported["deployment"].get("resources") or []


def planned_states(preview_json: dict[str, Any], ops: tuple[str, ...] = ("create",)) -> list[dict[str, Any]]:
    """The new states (type, urn, custom, inputs) of the steps a `pulumi preview --json` plans."""
    return [step["newState"] for step in preview_json.get("steps") or []
            if step.get("op") in ops and step.get("newState")]


def planned_objects(preview_json: dict[str, Any], ops: tuple[str, ...] = ("create",)) -> list[dict[str, Any]]:
    """The Kubernetes objects a `pulumi preview --json` plans to `ops`, as manifests."""
    return [state["inputs"] for state in planned_states(preview_json, ops)
            if state.get("custom") and state.get("type", "").startswith("kubernetes:")
            and "kind" in (state.get("inputs") or {}) and "metadata" in state["inputs"]]


def state_objects(resources_: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """URN → live object, for the Kubernetes resources in an exported state (chart children too);
    not the objects the program only reads (`external`)."""
    return {r["urn"]: r["outputs"] for r in resources_
            if r.get("custom") and not r.get("external") and r["type"].startswith("kubernetes:")
            and "kind" in (r.get("outputs") or {})}
