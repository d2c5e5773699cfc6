"""Fixtures shared across the test suite: the project and shared/ locations, and the
stack program captured under a recording mock monitor."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import config
from settings.upgrades import Deployed
from settings.versions import ManifestSource
from stack import build
from tools.graph import RecordingMonitor, Registration, capture

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("KSERVE_STACK_SHARED", PROJECT_DIR.parent / "shared"))
UPSTREAM_CRDS = SHARED_DIR / "upstream-crds"


def missing_tool(message: str) -> None:
    """A tool the test needs is not installed: in CI (whose set-up installs it) the test fails,
    elsewhere it skips, saying how to install it."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return PROJECT_DIR


@pytest.fixture(scope="session")
def upstream_crds() -> Path:
    assert UPSTREAM_CRDS.is_dir(), f"the upstream CRD schemas are expected at {UPSTREAM_CRDS}"
    return UPSTREAM_CRDS


def gateway_api_objects() -> list[dict[str, Any]]:
    """The real Gateway API standard CRDs (from shared/), standing in for the release manifest."""
    docs = []
    for path in sorted((UPSTREAM_CRDS / "gateway-api").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def stack_raw(stack: str) -> dict[str, Any]:
    doc = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in doc["config"].items()}


class Captured:
    """A captured program run: registrations by URN, plus lookups tests need often."""

    def __init__(self, monitor: RecordingMonitor, cfg: config.StackConfig):
        self.cfg = cfg
        self.regs: dict[str, Registration] = monitor.registrations
        self.outputs: dict[str, Any] = monitor.outputs

    def of_type(self, type_suffix: str) -> list[Registration]:
        return [r for r in self.regs.values() if r.type.endswith(type_suffix)]

    def one(self, type_suffix: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(type_suffix) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_suffix} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Registration:
        found = [r for r in self.regs.values() if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the program creates itself, as the manifest the provider
        sends: typed resources, custom resources and ConfigGroup objects (not chart output)."""
        out = []
        for reg in self.regs.values():
            if reg.type == "kubernetes:yaml/v2:ConfigGroup":
                out += [normalise(o) for o in reg.inputs.get("objs") or []]
                continue
            if reg.read or not reg.custom or not reg.type.startswith("kubernetes:") or ":Provider" in reg.type:
                continue
            group_version, kind = reg.type.split(":")[1:]
            group, version = group_version.rsplit("/", 1)
            api_version = version if group == "core" else f"{group}/{version}"
            out.append(normalise({**reg.inputs, "apiVersion": api_version, "kind": kind}))
        return out

    def waits_for(self, dependent: Registration, dependency: Registration) -> bool:
        """True when `dependent` lists `dependency`, or a resource under it, as a dependency."""
        return any(d == dependency.urn or d.startswith(dependency.urn + "$") or
                   self._under(d, dependency.urn) for d in dependent.dependencies)

    def _under(self, urn: str, ancestor: str) -> bool:
        reg = self.regs.get(urn)
        while reg is not None and reg.parent:
            if reg.parent == ancestor:
                return True
            reg = self.regs.get(reg.parent)
        return False


SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""The key that marks a secret value on the wire (pulumi/sdk rpc.py _special_sig_key)."""


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def normalise(value: Any) -> Any:
    """Whole floats (the wire format's numbers) back to ints, as in the YAML a user would write;
    secrets unwrapped, as the provider sends them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if is_secret(value):
        return normalise(value["value"])
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("standard", {}),
    ("serverless", {}),
    ("standard", {"model": {"name": "iris", "namespace": "ml", "image": "registry.local/iris:1.0",
                            "imagePath": "/models/iris",
                            "storage": {"hostPath": "/srv/models", "node": "worker-1", "size": "2Gi"}},
                  "gateway": {"tlsIssuer": {"kind": "Issuer", "name": "corp-ca"}, "serviceType": "NodePort"},
                  "imageRegistry": "mirror.local:5000"}),
    ("serverless", {"model": {"name": "iris", "storageUri": "s3://bucket/iris", "protocol": "v2",
                              "minReplicas": 0, "maxReplicas": 3}, "imageRegistry": "mirror.local:5000"}),
    ("standard", {"readiness": "skip", "versions": {"kserve": "v0.15.2"}}),
    ("standard", {"model": {}, "secrets": {"hf": "hf_token", "key": "k"}, "models": [
        {"name": "model", "path": "model"},
        {"name": "chat", "namespace": "ml", "format": "huggingface", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct",
         "args": ["--backend=vllm", "--max_model_len=2048"], "hfToken": {"secret": "hf"}, "sharedMemory": "2Gi",
         "env": {"VLLM_LOGGING_LEVEL": "INFO", "API_KEY": {"secret": "key"}},
         "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
         "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                       "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1}}},
        {"name": "model", "namespace": "ml", "storageUri": "s3://bucket/model", "protocol": "v2"},
    ]}),
    ("serverless", {"model": {}, "secrets": {"hf": "hf_token"}, "models": [
        {"name": "model", "path": "model", "canaryTrafficPercent": 10,
         "tolerations": [{"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 60}]},
        {"name": "chat", "namespace": "ml", "format": "huggingface", "storageUri": "hf://Qwen/Qwen2.5-0.5B-Instruct",
         "hfToken": {"secret": "hf"}, "minReplicas": 0},
    ]}),
    ("standard", {"gateway": {"scheme": "https"}, "model": {"name": "model", "path": "model", "callers": [
        "apps/client", "batch/*", {"claim": ["kubernetes.io", "namespace"], "values": ["ml"]}]}}),
    ("serverless", {"auth": {"type": "jwt", "issuer": "https://idp.example.com", "jwksUri": "https://idp.example.com/keys",
                             "audiences": ["models"]},
                    "model": {"name": "model", "path": "model", "callers": [{"claim": "groups", "values": ["ml"]}]}}),
    ("standard", {"auth": {"type": "none"}}),
]
"""Config variants that between them make every kind of object the program can create."""


_CAPTURES: dict[str, Captured] = {}


def _cache_key(stack: str, raw: dict[str, Any]) -> str:
    """The config plus the bytes of a local model, which the program reads."""
    key = json.dumps([stack, raw], sort_keys=True, default=str)
    models = raw.get("models") if isinstance(raw.get("models"), list) else [raw.get("model")]
    for model in models:
        path = model.get("path") if isinstance(model, dict) else None
        if path:
            full = Path(path) if Path(path).is_absolute() else PROJECT_DIR / path
            files = sorted(full.iterdir()) if full.is_dir() else [full] if full.exists() else []
            key += hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files if f.is_file())).hexdigest()
    return key


@pytest.fixture
def run_stack(project_dir: Path) -> Callable[..., Captured]:
    """Runs the real program for a shipped stack file, with config overrides merged on top.
    Captures are shared across tests (the program is deterministic); treat them as read-only."""

    def run(stack: str, deployed: dict[str, Any] | None = None, **overrides: Any) -> Captured:
        """`deployed`: the outputs of a previous `up` (upgrades.Deployed reads them)."""
        raw = {**stack_raw(stack), **overrides}
        key = _cache_key(stack, raw) + json.dumps(deployed, sort_keys=True, default=str)
        if key in _CAPTURES:
            return _CAPTURES[key]
        cfg = config.parse(raw, project_dir, Deployed.from_outputs(deployed))
        loaded: list[ManifestSource] = []

        def load(source: ManifestSource):
            loaded.append(source)
            return gateway_api_objects()

        monitor = capture(lambda: build(cfg, load_manifest=load, secret_values=raw.get("secrets")), stack=stack)
        captured = Captured(monitor, cfg)
        captured.loaded_manifests = loaded
        _CAPTURES[key] = captured
        return captured

    return run
