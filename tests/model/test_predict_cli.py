"""The predict command against the real server, a lying server, no server, and stack outputs:
through the gateway's address, or through a port-forward (a fake kubectl) when it has none."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shlex
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from components.istio_mesh import INGRESS_GATEWAY
from components.istio_mesh import NAMESPACE as ISTIO_NAMESPACE
from components.kserve_release import GATEWAY_SERVICE
from components.kserve_release import NAMESPACE as KSERVE_NAMESPACE
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


@contextlib.contextmanager
def json_server(answer: Callable[[str, str, bytes], dict], status: int = 200, tls: ssl.SSLContext | None = None,
                headers: list[dict] | None = None):
    """A local HTTP server answering each POST with `answer(host, path, body)` as JSON and `status`;
    over TLS with `tls`; each request's headers appended to `headers`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if headers is not None:
                headers.append(dict(self.headers))
            data = json.dumps(answer(self.headers["Host"], self.path,
                                     self.rfile.read(int(self.headers["Content-Length"])))).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def fake_gateway():
    """A server that answers [0, 0, 0] and records the Host header it was sent."""
    seen: list[str] = []

    def answer(host: str, path: str, body: bytes) -> dict:
        seen.append(host)
        return {"predictions": [0, 0, 0]}

    with json_server(answer) as address:
        yield address, seen


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


FAKE_KUBECTL = """\
    import base64, http.server, json, os, ssl, sys
    log = os.environ["FAKE_KUBECTL_LOG"]
    args = sys.argv[1:]
    if "get" in args:
        with open(os.path.join(log, "get.json"), "w") as f:
            json.dump(args, f)
        print(base64.b64encode(open(os.environ["FAKE_CA"], "rb").read()).decode())
        sys.exit(0)
    kubeconfig = args[args.index("--kubeconfig") + 1] if "--kubeconfig" in args else None
    with open(os.path.join(log, "run.json"), "w") as f:
        json.dump({"args": args, "pid": os.getpid(), "kubeconfig": kubeconfig,
                   "kubeconfig_text": open(kubeconfig).read() if kubeconfig else None}, f)
    if os.environ.get("FAKE_KUBECTL_FAIL"):
        print('error: services "' + args[-2][4:] + '" not found', flush=True)
        sys.exit(1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            with open(os.path.join(log, "hosts"), "a") as f:
                f.write(self.headers["Host"] + "\\n")
            with open(os.path.join(log, "authorization"), "a") as f:
                f.write(self.headers.get("Authorization", "-") + "\\n")
            self.rfile.read(int(self.headers["Content-Length"]))
            status = int(os.environ.get("FAKE_GATEWAY_STATUS", "200"))
            body = json.dumps({"predictions": [1, 0, 2]}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def sni(sock, name, context):
        with open(os.path.join(log, "sni"), "a") as f:
            f.write(str(name) + "\\n")

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    if os.environ.get("FAKE_GATEWAY_CERT"):
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.environ["FAKE_GATEWAY_CERT"], os.environ["FAKE_GATEWAY_KEY"])
        tls.sni_callback = sni
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    print("Forwarding from 127.0.0.1:%d -> 8080" % server.server_address[1], flush=True)
    print("Forwarding from [::1]:%d -> 8080" % server.server_address[1], flush=True)
    server.serve_forever()
"""
"""Stands in for `kubectl port-forward`: records its arguments, serves the gateway's side on the
port it names (recording each Host and Authorization header; over TLS with FAKE_GATEWAY_CERT, and
each SNI) and runs until it is stopped. As `kubectl get secret` it prints FAKE_CA in base64."""


def fake_cluster(tmp_path: Path, outputs: dict, config: dict, config_get: str = "", **env: str) -> dict:
    """PATH with a fake pulumi (outputs, config, `config get`) and the fake kubectl."""
    bin_dir, data = tmp_path / "bin", tmp_path / "pulumi"
    for directory in (bin_dir, data, tmp_path / "log"):
        directory.mkdir()
    (data / "outputs.json").write_text(json.dumps(outputs))
    (data / "config.json").write_text(json.dumps(config))
    (data / "config_get").write_text(config_get + "\n")
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        "case \"$1 $2\" in\n"
        f"  'stack output') cat {data}/outputs.json ;;\n"
        f"  'config get') cat {data}/config_get ;;\n"
        f"  'config --json') cat {data}/config.json ;;\n"
        "  *) echo \"unexpected: $*\" >&2; exit 3 ;;\n"
        "esac\n")
    (bin_dir / "kubectl").write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_KUBECTL))
    for tool in ("pulumi", "kubectl"):
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_KUBECTL_LOG": str(tmp_path / "log"), **env}


def kubectl_run(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "log" / "run.json").read_text())


def assert_stopped(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


STANDARD = {"mode": "standard", "predict_url": "http://model-default.example.com/v1/models/model:predict",
            "gateway_address": None, "gateway_service": "kserve/kserve-ingress-gateway-istio"}


def test_no_gateway_address_port_forwards_with_the_stack_context(tmp_path):
    env = fake_cluster(tmp_path, STANDARD, {"kubernetes:context": {"value": "kind-kserve", "secret": False},
                                            "kserve-stack:mode": {"value": "standard", "secret": False}})
    out = cli("--stack", "standard", "--expect", "1,0,2", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "sparrow\t1\tbird"
    run = kubectl_run(tmp_path)
    args = run["args"]
    assert args[:2] == ["--context", "kind-kserve"] and "--kubeconfig" not in args
    assert args[args.index("-n") + 1] == "kserve"
    assert args[args.index("port-forward"):] == ["port-forward", "--address", "127.0.0.1",
                                                 "svc/kserve-ingress-gateway-istio", ":80"]
    assert (tmp_path / "log" / "hosts").read_text().splitlines() == ["model-default.example.com"]
    assert_stopped(run["pid"])


def test_serverless_stack_without_gateway_service_output_secret_context_and_kubeconfig_path(tmp_path):
    """A stack deployed before the `gateway_service` output: the Service follows from `mode`."""
    kubeconfig = tmp_path / "kind.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    outputs = {"mode": "serverless", "predict_url": "http://model.default.example.com/v1/models/model:predict"}
    config = {"kubernetes:context": {"secret": True}, "kubernetes:kubeconfig": {"value": str(kubeconfig)}}
    out = cli("--stack", "serverless", env=fake_cluster(tmp_path, outputs, config, config_get="kind-secret"))
    assert out.returncode == 0, out.stderr
    args = kubectl_run(tmp_path)["args"]
    assert args[:4] == ["--context", "kind-secret", "--kubeconfig", str(kubeconfig)]
    assert args[args.index("-n") + 1] == "istio-system" and "svc/istio-ingressgateway" in args
    assert (tmp_path / "log" / "hosts").read_text().splitlines() == ["model.default.example.com"]


def test_kubeconfig_content_goes_to_a_private_file_removed_afterwards(tmp_path):
    content = "apiVersion: v1\nkind: Config\ncurrent-context: kind-kind\n"
    env = fake_cluster(tmp_path, STANDARD, {"kubernetes:kubeconfig": {"value": content}})
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 0, out.stderr
    run = kubectl_run(tmp_path)
    assert run["kubeconfig_text"] == content and "--context" not in run["args"]
    assert not Path(run["kubeconfig"]).exists()


def test_port_forward_stopped_when_the_gateway_fails(tmp_path):
    out = cli("--stack", "standard", env=fake_cluster(tmp_path, STANDARD, {}, FAKE_GATEWAY_STATUS="503"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: http://127.0.0.1:") and "answered 503" in out.stderr
    assert_stopped(kubectl_run(tmp_path)["pid"])


def test_port_forward_that_fails_says_why(tmp_path):
    out = cli("--stack", "standard", env=fake_cluster(tmp_path, STANDARD, {}, FAKE_KUBECTL_FAIL="1"))
    assert out.returncode == 2
    assert 'kubectl port-forward exited 1: error: services "kserve-ingress-gateway-istio" not found' in out.stderr


def test_fallback_gateway_services_are_the_stacks():
    from tools.predict import GATEWAY_SERVICES

    assert GATEWAY_SERVICES == {"standard": f"{KSERVE_NAMESPACE}/{GATEWAY_SERVICE}",
                                "serverless": f"{ISTIO_NAMESPACE}/{INGRESS_GATEWAY}"}


@pytest.fixture
def recording_gateway():
    """A server that records each request (Host, path, body) and answers V2 bodies with a V2 answer
    ([0, 1, 2] as INT64) and any other with {"predictions": [1, 0, 2]}."""
    seen: list[dict] = []

    def answer(host: str, path: str, raw: bytes) -> dict:
        body = json.loads(raw)
        seen.append({"host": host, "path": path, "body": body})
        if "inputs" in body:
            return {"model_name": "m", "outputs": [{"name": "predict", "shape": [3, 1], "datatype": "INT64",
                                                    "data": [0, 1, 2]}]}
        return {"predictions": [1, 0, 2]}

    with json_server(answer) as address:
        yield address, seen


def sample_of(fmt: str) -> dict:
    return json.loads((PROJECT_DIR / "samples" / fmt / "metadata.json").read_text())["sample"]


def test_request_file_is_sent_as_is_and_the_first_outputs_data_printed(tmp_path, recording_gateway):
    address, seen = recording_gateway
    body = {"id": "7", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.5, 2]}],
            "outputs": [{"name": "predict"}]}
    (tmp_path / "body.json").write_text(json.dumps(body))
    out = cli("--url", f"http://{address}/v2/models/m/infer", "--request", str(tmp_path / "body.json"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "[0, 1, 2]\n"
    assert seen[0]["body"] == body and seen[0]["path"] == "/v2/models/m/infer"


def test_request_file_that_is_not_json(tmp_path):
    (tmp_path / "body.json").write_text("{nope")
    out = cli("--url", "http://127.0.0.1:9/v2/models/m/infer", "--request", str(tmp_path / "body.json"))
    assert out.returncode == 2 and "is not JSON" in out.stderr


@pytest.mark.parametrize("fmt", ["xgboost", "lightgbm"])
def test_sample_against_the_real_mlserver(mlservers, tmp_path, fmt):
    """--sample with a bare --expect, a list --expect (1 matches a regression's 1.0), and --request."""
    server, sample = mlservers[fmt], sample_of(fmt)
    url = f"{server.base}/v2/models/{server.name}/infer"
    out = cli("--url", url, "--sample", str(PROJECT_DIR / "samples" / fmt), "--expect")
    assert (out.returncode, json.loads(out.stdout)) == (0, sample["predictions"]), out.stderr
    (tmp_path / "body.json").write_text(json.dumps(sample["request"]))
    out = cli("--url", url, "--request", str(tmp_path / "body.json"), "--expect", "0,1,2")
    assert (out.returncode, json.loads(out.stdout)) == (0, sample["predictions"]), out.stderr


def test_sample_expect_fails_on_another_answer(tmp_path, recording_gateway):
    address, seen = recording_gateway
    sample = {"protocol": "v2", "request": sample_of("lightgbm")["request"], "predictions": [2.0, 1.0, 0.0]}
    (tmp_path / "metadata.json").write_text(json.dumps({"sample": sample}))
    out = cli("--url", f"http://{address}/v2/models/m/infer", "--sample", str(tmp_path), "--expect")
    assert out.returncode == 1
    assert "expected predictions [2.0, 1.0, 0.0], got [0, 1, 2]" in out.stderr
    assert seen[0]["body"] == sample["request"]


def test_the_tutorial_models_sample_is_v1_instances(model_server):
    out = cli("--url", f"{model_server}/v1/models/model:predict", "--sample", str(PROJECT_DIR / "model"), "--expect")
    assert (out.returncode, out.stdout) == (0, "[1, 0, 2]\n"), out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--url", "http://127.0.0.1:9/", "--expect"], "--expect without a value"),
    (["--url", "http://127.0.0.1:9/", "--model", "m"], "--model needs --stack"),
    (["--url", "http://127.0.0.1:9/", "--sample", "samples/xgboost", "sparrow"], "words and --request/--sample"),
])
def test_usage_errors(args, message):
    out = cli(*args)
    assert out.returncode == 2 and message in out.stderr


def model_entry(name: str, host: str, protocol: str = "v2", sample: dict | None = None, **extra) -> dict:
    path = f"/v2/models/{name}/infer" if protocol == "v2" else f"/v1/models/{name}:predict"
    entry = {"predict_url": f"http://{host}{path}", "internal_predict_url": f"http://{name}-predictor{path}",
             "host": host, "protocol": protocol, "curl": "curl ...", "smoke_test": "passed: job default/x", **extra}
    if sample is not None:
        entry["sample_request"] = json.dumps(sample)
    return entry


def models_stack(address: str) -> dict:
    return {"mode": "standard", "gateway_address": address, "gateway_service": "kserve/kserve-ingress-gateway-istio",
            "models": {
                "model": model_entry("model", "model-default.example.com", "v1", {"instances": ["sparrow"]}),
                "iris-xgb": model_entry("iris-xgb", "iris-xgb-default.example.com", "v2",
                                        sample_of("xgboost")["request"]),
                "team-a/iris-xgb": model_entry("iris-xgb", "iris-xgb-team-a.example.com", "v2"),
            }}


def test_model_takes_its_entrys_url_host_protocol_and_sample_request(tmp_path, recording_gateway):
    address, seen = recording_gateway
    env = fake_pulumi(tmp_path, f"echo '{json.dumps(models_stack(address))}'\n")
    out = cli("--stack", "standard", "--model", "iris-xgb", "--expect", "0,1,2", env=env)
    assert (out.returncode, out.stdout) == (0, "[0, 1, 2]\n"), out.stderr
    assert seen == [{"host": "iris-xgb-default.example.com", "path": "/v2/models/iris-xgb/infer",
                     "body": sample_of("xgboost")["request"]}]


def test_model_without_a_sample_request_sends_the_words_in_its_protocol(tmp_path, recording_gateway):
    address, seen = recording_gateway
    env = fake_pulumi(tmp_path, f"echo '{json.dumps(models_stack(address))}'\n")
    out = cli("--stack", "standard", "--model", "team-a/iris-xgb", "rose", env=env)
    assert out.returncode == 0, out.stderr
    assert seen[0]["host"] == "iris-xgb-team-a.example.com"
    assert seen[0]["body"] == {"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": ["rose"]}]}
    assert out.stdout.splitlines() == ["rose\t0\tanimal"]


def test_unknown_model_lists_the_stacks_models(tmp_path, recording_gateway):
    address, seen = recording_gateway
    env = fake_pulumi(tmp_path, f"echo '{json.dumps(models_stack(address))}'\n")
    out = cli("--stack", "standard", "--model", "iris", env=env)
    assert out.returncode == 2 and not seen
    assert "stack standard has no model 'iris'; its models: iris-xgb, model, team-a/iris-xgb" in out.stderr


def test_several_models_and_no_model_flag_asks_for_one(tmp_path, recording_gateway):
    address, seen = recording_gateway
    env = fake_pulumi(tmp_path, f"echo '{json.dumps(models_stack(address))}'\n")
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 2 and not seen
    assert "serves 3 models; pass --model with one of: iris-xgb, model, team-a/iris-xgb" in out.stderr


def test_one_model_and_no_model_flag_is_todays_words_call(tmp_path, recording_gateway):
    """The one entry's URL, host and protocol; the words, not its sample_request, as before `models`."""
    address, seen = recording_gateway
    entry = model_entry("model", "model-default.example.com", "v1", {"instances": ["rose"]})
    outputs = {"gateway_address": address, "predict_url": entry["predict_url"], "models": {"model": entry}}
    out = cli("--stack", "standard", "--expect", "1,0,2", env=fake_pulumi(tmp_path, f"echo '{json.dumps(outputs)}'\n"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["sparrow\t1\tbird", "elephant\t0\tanimal", "sunflower\t2\tplant"]
    assert seen == [{"host": "model-default.example.com", "path": "/v1/models/model:predict",
                     "body": {"instances": ["sparrow", "elephant", "sunflower"]}}]


def test_model_flag_on_a_stack_from_before_the_models_output(tmp_path, recording_gateway):
    address, _ = recording_gateway
    outputs = {"predict_url": "http://model-default.example.com/v1/models/model:predict", "gateway_address": address}
    out = cli("--stack", "standard", "--model", "model", env=fake_pulumi(tmp_path, f"echo '{json.dumps(outputs)}'\n"))
    assert out.returncode == 2 and "has no model 'model'; its models: none" in out.stderr


def test_an_llm_is_called_through_its_openai_url(tmp_path, recording_gateway):
    address, seen = recording_gateway
    outputs = {"gateway_address": address, "models": {
        "qwen": model_entry("qwen", "qwen-default.example.com", openai_url="http://qwen-default.example.com/openai/v1"),
        "model": model_entry("model", "model-default.example.com", "v1")}}
    out = cli("--stack", "standard", "--model", "qwen", env=fake_pulumi(tmp_path, f"echo '{json.dumps(outputs)}'\n"))
    assert out.returncode == 2 and not seen
    assert "answers OpenAI's API at http://qwen-default.example.com/openai/v1" in out.stderr


def test_model_through_a_port_forward(tmp_path):
    """No gateway address: the port-forward carries the chosen model's Host."""
    outputs = {**STANDARD, "models": {
        "model": model_entry("model", "model-default.example.com", "v1"),
        "other": model_entry("other", "other-default.example.com", "v1", {"instances": ["rose"]})}}
    out = cli("--stack", "standard", "--model", "other", env=fake_cluster(tmp_path, outputs, {}))
    assert (out.returncode, out.stdout) == (0, "[1, 0, 2]\n"), out.stderr
    assert (tmp_path / "log" / "hosts").read_text().splitlines() == ["other-default.example.com"]
    assert_stopped(kubectl_run(tmp_path)["pid"])


MODEL_HOST = "model-default.example.com"


def python_command(code: str) -> str:
    """A `token_command` that runs `code`: stands in for `kubectl create token`."""
    return shlex.join([sys.executable, "-c", code])


def auth_stack(address: str, auth_type: str = "kubernetes", token_command: str | None = None) -> dict:
    outputs = {"predict_url": f"http://{MODEL_HOST}/v1/models/model:predict", "gateway_address": address,
               "auth": {"type": auth_type, "issuer": "https://issuer.example.com", "audiences": ["kserve-stack"]}}
    if token_command is not None:
        outputs["token_command"] = token_command
    return outputs


def without_token(env: dict, **extra: str) -> dict:
    """The environment minus any KSERVE_STACK_TOKEN of the caller's own."""
    return {**{k: v for k, v in env.items() if k != "KSERVE_STACK_TOKEN"}, **extra}


def stack_outputs(tmp_path: Path, outputs: dict, **extra: str) -> dict:
    """A fake pulumi printing `outputs` from a file (a token command's quotes would break `echo '...'`)."""
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    return without_token(fake_pulumi(tmp_path, f"cat {tmp_path / 'outputs.json'}\n"), **extra)


@pytest.fixture
def header_gateway():
    """A gateway answering [1, 0, 2] and recording each request's headers."""
    headers: list[dict] = []
    with json_server(lambda host, path, body: {"predictions": [1, 0, 2]}, headers=headers) as address:
        yield address, headers


@pytest.mark.parametrize(("flag", "env_token", "token_command", "sent"), [
    ("from-flag", "from-env", python_command("raise SystemExit('not run')"), "from-flag"),
    (None, "from-env", python_command("raise SystemExit('not run')"), "from-env"),
    (None, None, python_command("print('minted-token')"), "minted-token"),
], ids=["flag", "env", "token_command"])
def test_token_from_the_flag_the_env_or_the_token_command(tmp_path, header_gateway, flag, env_token, token_command,
                                                          sent):
    address, headers = header_gateway
    env = stack_outputs(tmp_path, auth_stack(address, token_command=token_command),
                        **({"KSERVE_STACK_TOKEN": env_token} if env_token else {}))
    out = cli("--stack", "standard", "--expect", "1,0,2", *(["--token", flag] if flag else []), env=env)
    assert out.returncode == 0, out.stderr
    assert [h.get("Authorization") for h in headers] == [f"Bearer {sent}"]
    assert sent not in out.stdout + out.stderr


@pytest.mark.parametrize("auth", [{"type": "none"}, None], ids=["none", "absent"])
def test_no_token_is_sent_to_a_stack_without_auth(tmp_path, header_gateway, auth):
    address, headers = header_gateway
    outputs = {"predict_url": f"http://{MODEL_HOST}/v1/models/model:predict", "gateway_address": address}
    if auth is not None:
        outputs |= {"auth": auth, "auth_warning": "kserve-stack:auth is none: anyone ... can call every model"}
    env = stack_outputs(tmp_path, outputs, KSERVE_STACK_TOKEN="from-env")
    out = cli("--stack", "standard", "--token", "from-flag", env=env)
    assert out.returncode == 0, out.stderr
    assert len(headers) == 1 and "Authorization" not in headers[0]


def test_jwt_stack_without_a_token_asks_for_one(tmp_path, header_gateway):
    address, headers = header_gateway
    env = stack_outputs(tmp_path, auth_stack(address, "jwt"))
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 2 and not headers
    assert "pass --token or KSERVE_STACK_TOKEN" in out.stderr and "identity provider" in out.stderr


def test_a_failing_token_command_is_named(tmp_path, header_gateway):
    address, headers = header_gateway
    command = python_command("raise SystemExit('serviceaccounts \"default\" not found')")
    out = cli("--stack", "standard", env=stack_outputs(tmp_path, auth_stack(address, token_command=command)))
    assert out.returncode == 2 and not headers
    assert f"the stack's token_command failed (exit 1): {command}" in out.stderr
    assert 'serviceaccounts "default" not found' in out.stderr


@pytest.mark.parametrize(("status", "hint"), [(401, "check the token"), (403, "`callers`")])
def test_a_refusal_says_so_and_never_prints_the_token(tmp_path, status, hint):
    """The gateway's answer quotes the token back; the error shows it redacted."""
    headers: list[dict] = []

    def answer(host: str, path: str, body: bytes) -> dict:
        return {"error": f"rejected {headers[-1].get('Authorization')}"}

    with json_server(answer, status=status, headers=headers) as address:
        command = python_command("print('s3cret-minted-token')")
        out = cli("--stack", "standard", env=stack_outputs(tmp_path, auth_stack(address, token_command=command)))
    assert headers[0]["Authorization"] == "Bearer s3cret-minted-token"
    assert out.returncode == 2
    assert f"error: the gateway refused the call ({status}): " in out.stderr and hint in out.stderr
    assert "Bearer <token>" in out.stderr
    assert "s3cret" not in out.stdout + out.stderr


def test_a_refusal_without_a_token_says_none_was_sent(tmp_path):
    with json_server(lambda host, path, body: {"error": "RBAC: access denied"}, status=403) as address:
        out = cli("--url", f"http://{address}/v1/models/model:predict", env=without_token(dict(os.environ)))
    assert out.returncode == 2
    assert "the gateway refused the call (403): " in out.stderr and "no token was sent" in out.stderr


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(cert))
    return key, cert


@pytest.fixture(scope="session")
def gateway_certs(tmp_path_factory) -> dict[str, Path]:
    """A CA (as the stack's self-signed issuer makes), the gateway's certificate it signs for the
    model's host, and another CA that signed nothing here."""
    directory = tmp_path_factory.mktemp("certs")
    ca_key, ca = make_ca(directory, "stack-ca")
    _, other_ca = make_ca(directory, "other-ca")
    key, csr, cert = directory / "gateway.key", directory / "gateway.csr", directory / "gateway.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={MODEL_HOST}", "-keyout", str(key),
            "-out", str(csr))
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{MODEL_HOST}\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "1", "-extfile", str(directory / "san.ext"), "-out", str(cert))
    return {"ca": ca, "other_ca": other_ca, "cert": cert, "key": key}


@pytest.fixture
def tls_gateway(gateway_certs):
    """A TLS gateway with the model host's certificate; records each request's headers and SNI."""
    headers: list[dict] = []
    names: list[str | None] = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(gateway_certs["cert"], gateway_certs["key"])
    tls.sni_callback = lambda sock, name, context: names.append(name)
    with json_server(lambda host, path, body: {"predictions": [1, 0, 2]}, tls=tls, headers=headers) as address:
        yield address, headers, names


def test_https_is_checked_against_the_model_host_with_the_ca_given(gateway_certs, tls_gateway):
    address, headers, names = tls_gateway
    out = cli("--url", f"https://{address}/v1/models/model:predict", "--host", MODEL_HOST,
              "--cacert", str(gateway_certs["ca"]), "--expect", "1,0,2")
    assert out.returncode == 0, out.stderr
    assert names == [MODEL_HOST] and headers[0]["Host"] == MODEL_HOST


def test_https_refuses_a_certificate_of_another_ca(gateway_certs, tls_gateway):
    address, headers, _ = tls_gateway
    out = cli("--url", f"https://{address}/v1/models/model:predict", "--host", MODEL_HOST,
              "--cacert", str(gateway_certs["other_ca"]))
    assert out.returncode == 2 and not headers
    assert "the gateway's certificate for model-default.example.com is not trusted" in out.stderr
    assert "--cacert" in out.stderr


def test_https_through_a_port_forward_to_443_with_the_stacks_ca_and_token(tmp_path, gateway_certs):
    """No gateway address: kubectl reads the CA from `ca_secret` and forwards to the Service's 443;
    TLS goes to 127.0.0.1 with the model's host as SNI and Host, with a minted token."""
    outputs = {**STANDARD, "predict_url": f"https://{MODEL_HOST}/v1/models/model:predict", "host": MODEL_HOST,
               "auth": {"type": "kubernetes", "issuer": "https://kubernetes.default.svc.cluster.local",
                        "audiences": ["kserve-stack"]},
               "token_command": python_command("print('minted-token')"),
               "ca_secret": "kserve/kserve-ingress-gateway-certs"}
    env = without_token(fake_cluster(tmp_path, outputs, {"kubernetes:context": {"value": "kind-kserve"}},
                                     FAKE_CA=str(gateway_certs["ca"]), FAKE_GATEWAY_CERT=str(gateway_certs["cert"]),
                                     FAKE_GATEWAY_KEY=str(gateway_certs["key"])))
    out = cli("--stack", "standard", "--expect", "1,0,2", env=env)
    assert out.returncode == 0, out.stderr
    get = json.loads((tmp_path / "log" / "get.json").read_text())
    assert get == ["--context", "kind-kserve", "-n", "kserve", "get", "secret", "kserve-ingress-gateway-certs",
                   "-o", r"jsonpath={.data.ca\.crt}"]
    run = kubectl_run(tmp_path)
    assert run["args"][-2:] == ["svc/kserve-ingress-gateway-istio", ":443"]
    log = tmp_path / "log"
    assert (log / "sni").read_text().splitlines() == (log / "hosts").read_text().splitlines() == [MODEL_HOST]
    assert (log / "authorization").read_text().splitlines() == ["Bearer minted-token"]
    assert_stopped(run["pid"])


def test_https_port_forward_refuses_a_gateway_the_stacks_ca_did_not_sign(tmp_path, gateway_certs):
    outputs = {**STANDARD, "predict_url": f"https://{MODEL_HOST}/v1/models/model:predict", "host": MODEL_HOST,
               "ca_secret": "kserve/kserve-ingress-gateway-certs"}
    env = without_token(fake_cluster(tmp_path, outputs, {}, FAKE_CA=str(gateway_certs["other_ca"]),
                                     FAKE_GATEWAY_CERT=str(gateway_certs["cert"]),
                                     FAKE_GATEWAY_KEY=str(gateway_certs["key"])))
    out = cli("--stack", "standard", env=env)
    assert out.returncode == 2 and "is not trusted" in out.stderr
    assert not (tmp_path / "log" / "hosts").exists()
    assert_stopped(kubectl_run(tmp_path)["pid"])
