"""Fixtures for the model tests: the model virtualenv (real kserve + the runtime's
scikit-learn) and a real KServe model server on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="session")
def model_python() -> str:
    """scripts/model_env.sh makes the virtualenv once (cached) and prints its python."""
    out = subprocess.run(["bash", str(PROJECT_DIR / "scripts/model_env.sh")], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"scripts/model_env.sh failed:\n{out.stderr[-3000:]}"
    return out.stdout.strip().splitlines()[-1]


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
