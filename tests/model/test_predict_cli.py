"""The predict command against the real server, a lying server, no server, and stack outputs."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from tests.conftest import PROJECT_DIR


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.predict", *args], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=60, env=env)


def test_real_server_v1_and_v2(model_server):
    out = cli("--url", f"{model_server}/v1/models/model:predict", "--expect", "1,0,2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["sparrow\t1\tbird", "elephant\t0\tanimal", "sunflower\t2\tplant"]
    out = cli("--url", f"{model_server}/v2/models/model/infer", "--protocol", "v2", "rose", "eagle")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["rose\t2\tplant", "eagle\t1\tbird"]


@pytest.fixture
def fake_gateway():
    """A server that answers [0, 0, 0] and records the Host header it was sent."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"predictions": [0, 0, 0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_wrong_predictions_fail_expect(fake_gateway):
    address, seen = fake_gateway
    out = cli("--url", f"http://{address}/v1/models/model:predict", "--host", "model-default.example.com",
              "--expect", "1,0,2")
    assert out.returncode == 1
    assert "expected predictions [1, 0, 2], got [0, 0, 0]" in out.stderr
    assert seen == ["model-default.example.com"]


def test_unreachable_endpoint_is_a_clear_error():
    out = cli("--url", "http://127.0.0.1:9/v1/models/model:predict")
    assert out.returncode == 2
    assert out.stderr.startswith("error: cannot reach http://127.0.0.1:9/v1/models/model:predict")


def fake_pulumi(tmp_path, script: str) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\n" + script)
    (bin_dir / "pulumi").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_stack_outputs_route_through_the_gateway(tmp_path, fake_gateway):
    address, seen = fake_gateway
    outputs = {"predict_url": "http://model-default.example.com/v1/models/model:predict", "gateway_address": address}
    env = fake_pulumi(tmp_path, f"echo '{json.dumps(outputs)}'\n")
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 0, out.stderr
    assert seen == ["model-default.example.com"]
    assert out.stdout.splitlines()[0] == "sparrow\t0\tanimal"


def test_stack_without_outputs(tmp_path):
    out = cli("--stack", "standard", env=fake_pulumi(tmp_path, "echo '{}'\n"))
    assert out.returncode == 2 and "has no predict_url output" in out.stderr


def test_stack_that_does_not_exist(tmp_path):
    env = fake_pulumi(tmp_path, "echo 'error: no stack named standard found' >&2; exit 255\n")
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 2 and "no stack named standard found" in out.stderr
