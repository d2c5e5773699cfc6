"""The model Jobs' scripts, run as the Jobs run them, by busybox's applets as in the Jobs'
busybox image: the copy script on a directory standing in for the claim, the smoke test
against the real KServe model server serving the committed model."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.model_service import (
    RUNTIME_USER,
    copy_script,
    expected_fragment,
    request_body,
    sample,
    smoke_script,
)
from components.model_service.jobs import refusal_script
from settings import config
from tests.conftest import PROJECT_DIR, missing_tool

APPLETS = ("sh", "wget", "timeout", "tail", "tr", "sleep", "mkdir", "rm", "cp", "mv", "ls", "touch",
           "grep", "id", "dirname", "cat")


@pytest.fixture(scope="module")
def busybox(tmp_path_factory) -> dict[str, str]:
    """An environment whose PATH holds busybox's applets only, as the busybox image does."""
    path = shutil.which("busybox")
    if not path:
        missing_tool("busybox is not installed (bash scripts/test.sh installs Debian's busybox)")
    bin_dir = tmp_path_factory.mktemp("busybox")
    for applet in APPLETS:
        (bin_dir / applet).symlink_to(path)
    return {"PATH": str(bin_dir)}


@pytest.fixture(scope="module")
def model_config() -> config.ModelConfig:
    return config.from_stack_file(PROJECT_DIR / "Pulumi.standard.yaml").models[0]


def run_script(env: dict[str, str], script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], env=env, executable=f"{env['PATH']}/sh",
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_models_own_sample_passes(busybox, model_server, model_config, protocol):
    model = replace(model_config, protocol=protocol)
    call = sample(model)
    assert call.expected.endswith("[1,0,2]")
    assert call.path == ("/v1/models/model:predict" if protocol == "v1" else "/v2/models/model/infer")
    script = smoke_script(f"{model_server}{call.path}", "model-default.example.com", call.body, call.expected)
    result = run_script(busybox, script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")


def test_a_wrong_answer_fails_with_the_models_reply(busybox, model_server, model_config):
    script = smoke_script(f"{model_server}/v1/models/model:predict", "h", sample(model_config).body,
                          expected_fragment(model_config, [2, 2, 2]))
    result = run_script(busybox, script)
    assert result.returncode == 1
    assert "unexpected reply" in result.stdout and '"predictions":[1,0,2]' in result.stdout.replace(" ", "")


def test_no_answer_fails_after_bounded_attempts(busybox, model_server, model_config):
    script = smoke_script(f"{model_server}/v1/models/absent:predict", "h", request_body(model_config, ["x"]),
                          expected_fragment(model_config, None), attempts=2, pause=0)
    result = run_script(busybox, script)
    assert result.returncode == 1
    assert "no answer from" in result.stdout and "404" in result.stdout


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_model_without_a_sample_is_asked_whether_it_is_ready(busybox, model_server, model_config, protocol):
    """A format whose inputs the stack cannot know: a GET of the protocol's model readiness route."""
    model = replace(model_config, protocol=protocol, format="xgboost", source=config.UriSource("s3://b/m"))
    call = sample(model)
    assert call.body is None and call.path.startswith(f"/{protocol}/models/model")
    result = run_script(busybox, smoke_script(f"{model_server}{call.path}", "h", call.body, call.expected))
    assert result.returncode == 0, result.stdout + result.stderr
    absent = smoke_script(f"{model_server}{call.path.replace('model', 'absent', 1)}", "h", None, "", attempts=2,
                          pause=0)
    assert run_script(busybox, absent).returncode == 1


def copy(env: dict[str, str], claim, version: str, source) -> subprocess.CompletedProcess:
    result = run_script(env, copy_script(str(claim / "model"), version, str(source), keep=3))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def model_files(tmp_path, name: str, weights: bytes):
    src = tmp_path / name
    src.mkdir()
    (src / "model.joblib").write_bytes(weights)
    (src / "metadata.json").write_text("{}")
    return src


def test_a_new_version_never_touches_the_one_being_served(busybox, tmp_path):
    claim = tmp_path / "claim"
    copy(busybox, claim, "v1", model_files(tmp_path, "one", b"weights-1"))
    served = claim / "model" / "v1" / "model.joblib"
    inode, before = served.stat().st_ino, served.read_bytes()
    copy(busybox, claim, "v2", model_files(tmp_path, "two", b"weights-2"))
    assert served.stat().st_ino == inode and served.read_bytes() == before == b"weights-1"
    assert (claim / "model" / "v2" / "model.joblib").read_bytes() == b"weights-2"
    assert sorted(p.name for p in (claim / "model").iterdir()) == ["v1", "v2"], "no scratch directory is left"


def test_a_rollback_reuses_the_version_on_the_claim_and_old_versions_are_pruned(busybox, tmp_path):
    claim = tmp_path / "claim"
    sources = {v: model_files(tmp_path, v, v.encode()) for v in ("v1", "v2", "v3", "v4")}
    clock = iter(range(1_000_000, 2_000_000, 60))

    def copy_at(version: str) -> subprocess.CompletedProcess:
        """Each `pulumi up` a minute after the one before (the script stamps the version now)."""
        result = copy(busybox, claim, version, sources[version])
        os.utime(claim / "model" / version, (t := next(clock), t))
        return result

    for version in ("v1", "v2", "v3"):
        copy_at(version)
    assert "already on the claim" in copy_at("v2").stdout
    copy_at("v4")
    assert sorted(p.name for p in (claim / "model").iterdir()) == ["v2", "v3", "v4"], \
        "the oldest beyond three go; the rolled-back v2 counts as recent"
    assert (claim / "model" / "v2" / "model.joblib").read_bytes() == b"v2"


@pytest.fixture
def runtime_user():
    """Runs scripts as the copy Job does: as uid 1000 (through setpriv when the tests run as root),
    in a directory that user can reach, standing in for a claim fsGroup made writable for it."""
    path = shutil.which("busybox")
    if not path:
        missing_tool("busybox is not installed (bash scripts/test.sh installs Debian's busybox)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            missing_tool("setpriv (util-linux) is needed to run the copy script as uid 1000")
        prefix = [setpriv, f"--reuid={RUNTIME_USER}", f"--regid={RUNTIME_USER}", "--clear-groups"]
    root = Path(tempfile.mkdtemp(prefix="kserve-stack-copy-"))
    root.chmod(0o755)
    (root / "bin").mkdir(mode=0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to(path)
    (root / "claim").mkdir()
    if prefix:
        os.chown(root / "claim", RUNTIME_USER, RUNTIME_USER)

    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, str(root / "bin" / "sh"), "-c", script], env={"PATH": str(root / "bin")},
                              capture_output=True, text=True, timeout=60)

    yield root, run
    shutil.rmtree(root)


def world_readable_model(root, name: str, weights: bytes):
    """The files as the ConfigMap volume shows them: root's, mode 0644."""
    src = model_files(root, name, weights)
    src.chmod(0o755)
    for f in src.iterdir():
        f.chmod(0o644)
    return src


def test_the_copy_script_works_as_the_runtimes_user(runtime_user):
    """mkdir, mv, touch and rm in the claim, as uid 1000 with no capability to override permissions."""
    root, run = runtime_user
    claim = root / "claim"
    user = RUNTIME_USER if os.geteuid() == 0 else os.geteuid()
    assert run("id -u").stdout.strip() == str(user) != "0"
    for minute, version in enumerate(("v1", "v2", "v3", "v4")):
        result = run(copy_script(str(claim / "model"), version, str(world_readable_model(root, version, b"w"))))
        assert result.returncode == 0, result.stdout + result.stderr
        os.utime(claim / "model" / version, (1_000_000 + 60 * minute,) * 2)
    assert sorted(p.name for p in (claim / "model").iterdir()) == ["v2", "v3", "v4"], "pruned without root"
    assert (claim / "model" / "v4" / "model.joblib").stat().st_uid == user


def test_a_claim_another_user_wrote_serves_its_versions_and_refuses_new_ones_saying_why(runtime_user):
    """A copy Job that ran as root left the base root's, on a volume that takes no fsGroup (a
    hostPath-backed provisioner): the version on it still passes; a new one fails naming the fix."""
    root, run = runtime_user
    base = root / "claim" / "model"
    result = run(copy_script(str(base), "v1", str(world_readable_model(root, "one", b"w1"))))
    assert result.returncode == 0, result.stdout + result.stderr
    base.chmod(0o555)
    try:
        again = run(copy_script(str(base), "v1", str(root / "one")))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already on the claim" in again.stdout
        new = run(copy_script(str(base), "v2", str(world_readable_model(root, "two", b"w2"))))
        assert new.returncode == 1
        assert f"{base} is not writable by uid" in new.stdout and "make it writable" in new.stdout
        assert sorted(p.name for p in base.iterdir()) == ["v1"]
    finally:
        base.chmod(0o755)


class StandInGateway(BaseHTTPRequestHandler):
    """Istio's answers at the gateway, for the smoke test's two calls: the model's reply for the
    good token, 401 for another token (RequestAuthentication), 403 without one (no ALLOW policy
    matched); `open` answers every call, as a gateway without the policies would."""

    open = False
    reply = b'{"predictions":[1,0,2]}'

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = self.headers.get("Authorization")
        if token == f"Bearer {TOKEN}" or self.open:
            self._send(200, self.reply)
        elif token:
            self._send(401, b"Jwt verification fails")
        else:
            self._send(403, b"RBAC: access denied")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


TOKEN = "eyJhbGciOiJSUzI1NiJ9.smoke.test"


@pytest.fixture(scope="module")
def gateway():
    """A stand-in gateway on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Gateway", (StandInGateway,), {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", server
    server.shutdown()


@pytest.fixture
def token_file(tmp_path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    return str(path)


def test_the_smoke_test_calls_with_its_token_and_is_refused_without(busybox, gateway, model_config, token_file):
    base, server = gateway
    server.RequestHandlerClass.open = False
    call = sample(model_config)
    script = "\n".join([
        smoke_script(f"{base}{call.path}", "model-default.example.com", call.body, call.expected, token=token_file),
        refusal_script(f"{base}{call.path}", "model-default.example.com", call.body, attempts=2, pause=0),
    ])
    result = run_script(busybox, script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ") and "refused without a token:" in result.stdout and "403" in result.stdout
    assert TOKEN not in result.stdout


def test_a_token_the_gateway_refuses_fails_the_smoke_test(busybox, gateway, model_config, tmp_path):
    base, server = gateway
    server.RequestHandlerClass.open = False
    (tmp_path / "forged").write_text("forged")
    call = sample(model_config)
    result = run_script(busybox, smoke_script(f"{base}{call.path}", "h", call.body, call.expected,
                                              token=str(tmp_path / "forged"), attempts=2, pause=0))
    assert result.returncode == 1 and "no answer from" in result.stdout and "401" in result.stdout


def test_an_open_gateway_fails_up_saying_the_models_are_open(busybox, gateway, model_config):
    base, server = gateway
    server.RequestHandlerClass.open = True
    call = sample(model_config)
    result = run_script(busybox, refusal_script(f"{base}{call.path}", "model-default.example.com", call.body,
                                                attempts=2, pause=0))
    assert result.returncode == 1
    assert "the models are open" in result.stdout


def test_a_gateway_that_neither_answers_nor_refuses_fails_too(busybox, model_config):
    call = sample(model_config)
    result = run_script(busybox, refusal_script(f"http://127.0.0.1:9{call.path}", "h", call.body, attempts=2,
                                                pause=0))
    assert result.returncode == 1 and "no refusal from" in result.stdout
