"""Fixtures for the model tests: the model virtualenv (real kserve + the runtime's
scikit-learn) and a real KServe model server on a loopback port; MLServer's virtualenv and the
real MLServer started as KServe's `kserve-mlserver` runtime starts it, for each sample."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from settings.runtimes import MLSERVER_MODEL_CLASSES
from settings.versions import DEFAULT_KSERVE
from tests.conftest import PROJECT_DIR
from tests.runtime_charts import chart_objects, stack_values


def env_python(script: str) -> str:
    """scripts/<script> makes a virtualenv once (cached) and prints its python."""
    out = subprocess.run(["bash", str(PROJECT_DIR / "scripts" / script)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"scripts/{script} failed:\n{out.stderr[-3000:]}"
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def model_python() -> str:
    """The model virtualenv, from scripts/model_env.sh."""
    return env_python("model_env.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(python: str, model_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    http_port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [python, "-m", "tools.model_server", "--model_dir", str(model_dir), "--model_name", "model",
         "--http_port", str(http_port), "--grpc_port", str(grpc_port), "--workers", "1"],
        cwd=PROJECT_DIR, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"model server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"model server not ready in 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def model_server(model_python, tmp_path_factory):
    """The real KServe server serving the committed model/ directory; yields its base URL."""
    proc, base = start_server(model_python, PROJECT_DIR / "model", tmp_path_factory.mktemp("server") / "log")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


MLSERVER_RUNTIME = "kserve-mlserver"
MODEL_DIR = "/mnt/models"
"""Where KServe's storage initializer puts the model, in the runtime's env and the image's."""
MLSERVER_IMAGE_ENV = {"MLSERVER_MODELS_DIR": MODEL_DIR}
"""seldonio/mlserver 1.5.0's Dockerfile: ENV MLSERVER_MODELS_DIR, and CMD `mlserver start $MLSERVER_MODELS_DIR`."""
SAMPLES_DIR = PROJECT_DIR / "samples"


def kserve_mlserver_runtime() -> dict:
    """`kserve-mlserver` as the stack installs it at the default KServe release: the released chart
    rendered with the values the stack passes (tests/runtime_charts.py)."""
    [runtime] = [o for o in chart_objects(DEFAULT_KSERVE, stack_values(DEFAULT_KSERVE))
                 if o["metadata"]["name"] == MLSERVER_RUNTIME]
    return runtime


def _substitute(text: str, name: str, labels: dict[str, str], model_dir: Path) -> str:
    """KServe renders the runtime's container as a Go template over the InferenceService's metadata."""
    def field(match: re.Match) -> str:
        kind, key = match.groups()
        if kind == "Name":
            return name
        assert kind == "Labels" and key in labels, f"no value for {match.group(0)}"
        return labels[key]

    return re.sub(r"\{\{\s*\.(Name|Labels)(?:\.(\w+))?\s*\}\}", field, text).replace(MODEL_DIR, str(model_dir))


@dataclass(frozen=True)
class MLServerCommand:
    argv: list[str]
    env: dict[str, str]
    http_port: int


def mlserver_command(python: str, model_dir: Path, name: str, fmt: str, model_class: str | None = None
                     ) -> MLServerCommand:
    """The kserve-mlserver container for an InferenceService `name` of format `fmt` with a
    storageUri: the runtime's env, what KServe's defaulter adds (MLSERVER_MODEL_NAME and _URI),
    the image's command; /mnt/models is `model_dir`, and every port a free one."""
    [container] = kserve_mlserver_runtime()["spec"]["containers"]
    env = {**MLSERVER_IMAGE_ENV, **{e["name"]: e["value"] for e in container.get("env", [])},
           "MLSERVER_MODEL_NAME": name, "MLSERVER_MODEL_URI": MODEL_DIR}
    labels = {"modelClass": model_class or MLSERVER_MODEL_CLASSES[fmt]}
    env = {k: _substitute(v, name, labels, model_dir) for k, v in env.items()}
    ports = {key: str(free_port()) for key in ("MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT")}
    assert not container.get("command") and not container.get("args"), \
        f"{MLSERVER_RUNTIME} now sets command/args, which replace the image's CMD that this runs: {container}"
    argv = [str(Path(python).parent / "mlserver"), "start", env["MLSERVER_MODELS_DIR"]]
    return MLServerCommand(argv, {**env, **ports}, int(ports["MLSERVER_HTTP_PORT"]))


@pytest.fixture(scope="session")
def mlserver_python() -> str:
    """MLServer's virtualenv, from scripts/mlserver_env.sh."""
    return env_python("mlserver_env.sh")


@dataclass
class MLServer:
    proc: subprocess.Popen
    base: str
    name: str
    log: Path

    def stop(self) -> None:
        """SIGTERM lets MLServer stop its inference pool's worker; if it hangs, the whole group goes."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def launch_mlserver(command: MLServerCommand, name: str, workdir: Path) -> MLServer:
    """In its own directory: MLServer reads a `.env` there and writes `.envs` and `.metrics`."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "log"
    proc = subprocess.Popen(command.argv, cwd=workdir, env={**os.environ, **command.env},
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return MLServer(proc, f"http://127.0.0.1:{command.http_port}", name, log)


def wait_ready(server: MLServer, timeout: float = 120) -> MLServer:
    """Ready means the model answers /v2/models/<name>/ready; a server that exits first fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"MLServer exited {server.proc.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base}/v2/models/{server.name}/ready", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise AssertionError(f"MLServer not ready in {timeout:g} s:\n{server.log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlservers(mlserver_python, tmp_path_factory) -> Iterator[dict[str, MLServer]]:
    """The real MLServer serving each committed sample, started side by side, by format."""
    servers = {fmt: launch_mlserver(mlserver_command(mlserver_python, SAMPLES_DIR / fmt, f"{fmt}-sample", fmt),
                                    f"{fmt}-sample", tmp_path_factory.mktemp(f"mlserver-{fmt}"))
               for fmt in ("xgboost", "lightgbm")}
    try:
        for server in servers.values():
            wait_ready(server)
        yield servers
    finally:
        for server in servers.values():
            server.stop()
