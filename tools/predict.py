"""Call a served model: the tutorial's words, a JSON body, or a model directory's sample.

    python -m tools.predict --stack standard                 # URL and gateway from the stack outputs
    python -m tools.predict --stack standard --model NAME    # one of the stack's `models`
    python -m tools.predict --url URL --host HOST [WORDS...] # e.g. through kubectl port-forward
    python -m tools.predict ... --expect 1,0,2               # exit 1 unless the answer matches
    python -m tools.predict ... --request body.json          # a V1 or V2 body, sent as is
    python -m tools.predict ... --sample samples/xgboost --expect   # DIR/metadata.json's sample

Words print one per line with their label; any other body prints its answer's predictions (V1)
or its first output's data (V2) as one JSON list. With --model, the body is the model's
`sample_request` unless words, --request or --sample say otherwise.

With --stack and no load-balancer address (kind, minikube, bare metal) the model's host does not
resolve, so it port-forwards to the gateway Service itself (port 443 over https, else 80), on the
stack's cluster (its `kubernetes:context` and `kubernetes:kubeconfig`), and stops the port-forward
when done.

A stack whose `auth` output checks tokens gets `Authorization: Bearer`: --token, else
$KSERVE_STACK_TOKEN, else one minted by its `token_command` (a `jwt` stack's tokens come from its
identity provider, so one must be given). The token is never printed. Over https the gateway's
certificate must be valid for the model's host (sent as SNI, whatever address is dialled), signed by
--cacert, else by the CA of the stack's `ca_secret` (its self-signed issuer's), else by one the
system trusts.

Standard library only, so it runs with any python3 (the e2e workflow calls it through a port-forward).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import queue
import re
import shlex
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SAMPLE = ["sparrow", "elephant", "sunflower"]
ROOT = Path(__file__).resolve().parent.parent
METADATA = ROOT / "model" / "metadata.json"
GATEWAY_SERVICES = {"standard": "kserve/kserve-ingress-gateway-istio",
                    "serverless": "istio-system/istio-ingressgateway"}
"""The gateway Service per mode (stack.py), for stacks deployed before their `gateway_service` output."""
KUBERNETES_KEYS = ("kubernetes:context", "kubernetes:kubeconfig")
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ")
TOKEN_ENV = "KSERVE_STACK_TOKEN"


class PredictError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    url: str
    host: str | None = None
    gateway_service: str | None = None
    """`<namespace>/<name>`: set when the request must go through a port-forward to this Service."""
    kubernetes: tuple[tuple[str, str], ...] = ()
    """The stack's `kubernetes:*` config, so that kubectl reaches the cluster the provider deployed to."""
    protocol: str | None = None
    sample_request: str | None = None
    """The JSON body the stack's `models` entry offers, taken when --model names it."""
    auth: dict | None = None
    """The stack's `auth` output ({"type": "none"} when it has none); None with --url, where only a
    token given is sent."""
    token_command: str | None = None
    ca_secret: str | None = None
    """`<namespace>/<name>` of the Secret whose `ca.crt` signed the gateway's certificate."""


@dataclass(frozen=True)
class Request:
    body: dict
    protocol: str
    words: list[str] | None = None
    """Set when the body was made from words, which then print with their labels."""
    predictions: list | None = None
    """What --sample's metadata promises, for a bare --expect."""


def run_pulumi(args: list[str], stack: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["pulumi", *args, "-s", stack], capture_output=True, text=True, timeout=120, cwd=ROOT)
    except FileNotFoundError as err:
        raise PredictError("the pulumi CLI is not on PATH; pass --url and --host instead") from err


def pulumi_json(args: list[str], stack: str) -> dict:
    command = f"pulumi {' '.join(args)} -s {stack}"
    result = run_pulumi([*args, "--json"], stack)
    if result.returncode != 0:
        raise PredictError(f"{command} failed: {result.stderr.strip() or result.stdout.strip()}")
    try:
        value = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as err:
        raise PredictError(f"{command} did not print JSON: {err}") from err
    return value if isinstance(value, dict) else {}


def kubernetes_config(stack: str) -> dict[str, str]:
    """`pulumi config --json` leaves a secret's value out (a kubeconfig often is one);
    `pulumi config get` decrypts it."""
    entries = pulumi_json(["config"], stack)
    found = {}
    for key in KUBERNETES_KEYS:
        entry = entries.get(key)
        if not isinstance(entry, dict):
            continue
        value = entry.get("value")
        if value is None and entry.get("secret"):
            result = run_pulumi(["config", "get", key], stack)
            if result.returncode != 0:
                raise PredictError(f"pulumi config get {key} -s {stack} failed: {result.stderr.strip()}")
            value = result.stdout.rstrip("\n")
        if value:
            found[key] = value
    return found


def model_entry(outputs: dict, stack: str, name: str | None) -> dict:
    """The `models` entry to call. Without --model only a stack of one model has an answer; a stack
    deployed before the `models` output has its one model's URL at the top level."""
    models = outputs.get("models") or {}
    known = ", ".join(sorted(models))
    if name is not None:
        if name not in models:
            raise PredictError(f"stack {stack} has no model {name!r}; its models: {known or 'none'}")
        return models[name]
    if len(models) > 1:
        raise PredictError(f"stack {stack} serves {len(models)} models; pass --model with one of: {known}")
    return next(iter(models.values()), outputs)


def stack_target(stack: str, model: str | None = None) -> Target:
    """Where to send the request, from `pulumi stack output` (and config, for kubectl)."""
    outputs = pulumi_json(["stack", "output"], stack)
    entry = model_entry(outputs, stack, model)
    if entry.get("openai_url"):
        raise PredictError(f"that model is an LLM, which answers OpenAI's API at {entry['openai_url']}, "
                           "not predictions; its `curl` output calls it")
    predict_url = entry.get("predict_url")
    if not predict_url:
        raise PredictError(f"stack {stack} has no predict_url output; has `pulumi up -s {stack}` run?")
    parsed = urllib.parse.urlsplit(predict_url)
    host = entry.get("host") or parsed.netloc
    protocol = entry.get("protocol")
    sample = entry.get("sample_request") if model is not None else None
    auth = outputs.get("auth") if isinstance(outputs.get("auth"), dict) else {"type": "none"}
    token_command = outputs.get("token_command")
    ca_secret = outputs.get("ca_secret") if parsed.scheme == "https" else None
    address = outputs.get("gateway_address")
    service = None
    if not address:
        service = outputs.get("gateway_service") or GATEWAY_SERVICES.get(outputs.get("mode", ""))
        if not service:
            raise PredictError(f"stack {stack} has no gateway_address, gateway_service or mode output")
    # kubectl (port-forward, the CA's Secret, a minted token) must reach the stack's cluster.
    needs_cluster = service or ca_secret or (auth.get("type") != "none" and token_command)
    kubernetes = tuple(sorted(kubernetes_config(stack).items())) if needs_cluster else ()
    url = urllib.parse.urlunsplit((parsed.scheme, address, parsed.path, "", "")) if address else predict_url
    return Target(url, host, service, kubernetes, protocol, sample, auth, token_command, ca_secret)


@contextlib.contextmanager
def kubectl_flags(kubernetes: dict[str, str]) -> Iterator[list[str]]:
    """Like the provider, `kubernetes:kubeconfig` is a path (`~` and relative to the project) or
    the file's content, which kubectl only takes as a file: a private one, removed afterwards."""
    flags = []
    if kubernetes.get("kubernetes:context"):
        flags += ["--context", kubernetes["kubernetes:context"]]
    kubeconfig = kubernetes.get("kubernetes:kubeconfig")
    if not kubeconfig:
        yield flags
        return
    if "\n" not in kubeconfig.strip() and not kubeconfig.lstrip().startswith("{"):
        path = ROOT / Path(kubeconfig).expanduser()
        if not path.is_file():
            raise PredictError(f"kubernetes:kubeconfig names {kubeconfig}, which is not a file")
        yield [*flags, "--kubeconfig", str(path)]
        return
    fd, name = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(kubeconfig)
        yield [*flags, "--kubeconfig", name]
    finally:
        os.unlink(name)


def forwarded_port(proc: subprocess.Popen, timeout: float) -> int:
    """kubectl picks the free local port itself (`:80`) and names it on its first line; its
    output is read to the end on a thread, so that its pipe never fills."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    said: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            said_so_far = "".join(said).strip()
            raise PredictError(f"kubectl port-forward named no port in {timeout:g} s: {said_so_far}") from None
        if line is None:
            proc.wait()
            raise PredictError(f"kubectl port-forward exited {proc.returncode}: {''.join(said).strip()}")
        match = FORWARDING.match(line)
        if match:
            return int(match.group(1))
        said.append(line)


@contextlib.contextmanager
def port_forward(service: str, kubernetes: dict[str, str], timeout: float, remote_port: int = 80) -> Iterator[int]:
    """A local port forwarded to `remote_port` of the gateway Service (443 over https); the
    port-forward stops on the way out, also after an error."""
    namespace, _, name = service.partition("/")
    with kubectl_flags(kubernetes) as flags:
        command = ["kubectl", *flags, "-n", namespace, "port-forward", "--address", "127.0.0.1", f"svc/{name}",
                   f":{remote_port}"]
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        except FileNotFoundError as err:
            raise PredictError("kubectl is not on PATH; it port-forwards to the gateway") from err
        try:
            yield forwarded_port(proc, timeout)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def mint_token(command: str, kubernetes: dict[str, str], timeout: float) -> str:
    """Runs the stack's `token_command` without a shell; with the stack's kubeconfig, if it has
    one, so that its `--context` is found. Only the command, never its output, goes in an error."""
    with kubectl_flags(kubernetes) as flags:
        env = {**os.environ, "KUBECONFIG": flags[flags.index("--kubeconfig") + 1]} if "--kubeconfig" in flags else None
        try:
            result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout, env=env)
        except (OSError, ValueError, subprocess.TimeoutExpired) as err:
            raise PredictError(f"the stack's token_command failed: {command}: {err}") from err
    token = result.stdout.strip()
    if result.returncode != 0 or not token:
        said = result.stderr.strip() or "it printed no token"
        raise PredictError(f"the stack's token_command failed (exit {result.returncode}): {command}: {said}")
    return token


def bearer_token(given: str | None, target: Target, timeout: float) -> str | None:
    """--token, else $KSERVE_STACK_TOKEN, else minted by the stack's `token_command`. A stack with
    auth none (or from before the `auth` output) checks no token, so none is sent to it."""
    kind = target.auth.get("type", "none") if target.auth is not None else None
    if kind == "none":
        return None
    given = given or os.environ.get(TOKEN_ENV)
    if given or kind is None:
        return given
    if kind == "jwt":
        raise PredictError(f"the stack checks tokens of {target.auth.get('issuer')}: pass --token or {TOKEN_ENV} "
                           "with a token from that identity provider")
    if not target.token_command:
        raise PredictError(f"the stack checks tokens but has no token_command output: pass --token or {TOKEN_ENV}")
    return mint_token(target.token_command, dict(target.kubernetes), timeout)


def secret_ca(secret: str, kubernetes: dict[str, str], timeout: float) -> str:
    """The PEM CA in `data["ca.crt"]` of the stack's `ca_secret`, read with kubectl on its cluster."""
    namespace, _, name = secret.partition("/")
    with kubectl_flags(kubernetes) as flags:
        command = ["kubectl", *flags, "-n", namespace, "get", "secret", name, "-o", r"jsonpath={.data.ca\.crt}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PredictError(f"cannot read the gateway's CA from Secret {secret} ({err}); pass --cacert") from err
    if result.returncode != 0:
        raise PredictError(f"kubectl get secret {secret} failed: {result.stderr.strip()}; pass --cacert")
    try:
        pem = base64.b64decode(result.stdout.strip(), validate=True).decode()
    except ValueError as err:
        raise PredictError(f"Secret {secret}'s ca.crt is not base64 PEM: {err}") from err
    if not pem.strip():
        raise PredictError(f"Secret {secret} has no ca.crt; pass --cacert")
    return pem


def tls_context(target: Target, cacert: Path | None, timeout: float) -> ssl.SSLContext:
    """Trusts --cacert, else the stack's own CA, else the system's; hostname checks stay on."""
    try:
        if cacert is not None:
            return ssl.create_default_context(cafile=str(cacert))
        if target.ca_secret:
            return ssl.create_default_context(cadata=secret_ca(target.ca_secret, dict(target.kubernetes), timeout))
        return ssl.create_default_context()
    except (OSError, ssl.SSLError) as err:
        raise PredictError(f"cannot load the CA {cacert or target.ca_secret or 'store'}: {err}") from err


def sni_handler(context: ssl.SSLContext, server_hostname: str) -> urllib.request.HTTPSHandler:
    """Dials the URL's address (the gateway's, or the port-forward's 127.0.0.1) but speaks TLS as
    the model's host: SNI picks the gateway's certificate, which must be valid for that name."""

    class Connection(http.client.HTTPSConnection):
        def connect(self):
            sock = socket.create_connection((self.host, self.port), self.timeout)
            self.sock = context.wrap_socket(sock, server_hostname=server_hostname)

    class Handler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(Connection, req)

    return Handler()


def refused(code: int, said: str, token: str | None) -> PredictError:
    """401: no token or one the gateway does not accept; 403: the model's `callers` leave its caller out."""
    hint = (f"no token was sent: pass --token or {TOKEN_ENV}" if not token else
            f"check the token (--token, {TOKEN_ENV} or the stack's token_command: issuer, audience, expiry) "
            "and that the model's `callers` admit its caller")
    return PredictError(f"the gateway refused the call ({code}): {said}; {hint}")


def request_body(words: list[str], protocol: str) -> dict:
    if protocol == "v2":
        return {"inputs": [{"name": "input-0", "shape": [len(words)], "datatype": "BYTES", "data": words}]}
    return {"instances": words}


def predictions(body: dict, protocol: str) -> list:
    if protocol == "v2":
        return list(body["outputs"][0]["data"])
    return list(body["predictions"])


def send(url: str, host: str | None, body: dict, protocol: str, timeout: float = 30, token: str | None = None,
         context: ssl.SSLContext | None = None) -> list:
    """POSTs the body; over https with `context`, TLS is checked against `host` (else the URL's)."""
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    parsed = urllib.parse.urlsplit(url)
    tls = parsed.scheme == "https" and context is not None
    handlers: list[urllib.request.BaseHandler] = []
    # A loopback URL is a port-forward, and TLS as the model's host dials the gateway itself: no proxy in the way.
    if parsed.hostname in ("127.0.0.1", "localhost", "::1") or tls:
        handlers.append(urllib.request.ProxyHandler({}))
    if tls:
        handlers.append(sni_handler(context, urllib.parse.urlsplit(f"//{host}").hostname if host else parsed.hostname))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as err:
        said = err.read().decode(errors="replace")[:500]
        if err.code in (401, 403):
            raise refused(err.code, said, token) from err
        raise PredictError(f"{url} answered {err.code}: {said}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise PredictError(f"{url}: the gateway's certificate for {host or parsed.hostname} is not trusted: "
                               f"{reason.verify_message}; pass --cacert with the CA that signed it") from err
        raise PredictError(f"cannot reach {url}: {reason}") from err
    except json.JSONDecodeError as err:
        raise PredictError(f"{url} did not answer JSON: {err}") from err
    try:
        return predictions(answer, protocol)
    except (KeyError, IndexError, TypeError) as err:
        raise PredictError(f"{url} answered without predictions: {json.dumps(answer)[:500]}") from err


def call(target: Target, request: Request, timeout: float, token: str | None = None,
         cacert: Path | None = None) -> list:
    parsed = urllib.parse.urlsplit(target.url)
    context = tls_context(target, cacert, timeout) if parsed.scheme == "https" else None
    if not target.gateway_service:
        return send(target.url, target.host, request.body, request.protocol, timeout, token, context)
    remote_port = 443 if context else 80
    with port_forward(target.gateway_service, dict(target.kubernetes), timeout, remote_port) as port:
        local = urllib.parse.urlunsplit((parsed.scheme, f"127.0.0.1:{port}", parsed.path, parsed.query, ""))
        return send(local, target.host, request.body, request.protocol, timeout, token, context)


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise PredictError(f"cannot read {what} {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise PredictError(f"{what} {path} is not JSON: {err}") from err


def body_request(body, source: str, protocol: str | None = None, expected: list | None = None) -> Request:
    """A body says its own protocol: V2 has `inputs`."""
    if not isinstance(body, dict):
        raise PredictError(f"{source} is not a JSON object")
    return Request(body, protocol or ("v2" if "inputs" in body else "v1"), predictions=expected)


def sample_request(model_dir: Path, protocol: str | None) -> Request:
    """`sample.request` of DIR/metadata.json; the tutorial's model/ has `sample.instances` (V1) instead."""
    metadata = read_json(model_dir / "metadata.json", "model metadata")
    sample = (metadata.get("sample") if isinstance(metadata, dict) else None) or {}
    body = sample.get("request")
    if body is None and "instances" in sample:
        body = {"instances": sample["instances"]}
    if body is None:
        raise PredictError(f"{model_dir / 'metadata.json'} has no sample.request")
    return body_request(body, f"{model_dir}'s sample.request", protocol or sample.get("protocol"),
                        sample.get("predictions"))


def choose_request(args: argparse.Namespace, target: Target) -> Request:
    if args.request:
        return body_request(read_json(args.request, "request"), str(args.request), args.protocol)
    if args.sample:
        return sample_request(args.sample, args.protocol)
    if not args.words and target.sample_request:
        try:
            body = json.loads(target.sample_request)
        except json.JSONDecodeError as err:
            raise PredictError(f"the stack's sample_request is not JSON: {err}") from err
        return body_request(body, "the stack's sample_request", args.protocol)
    words = args.words or SAMPLE
    protocol = args.protocol or target.protocol or "v1"
    if protocol not in ("v1", "v2"):
        raise PredictError(f"the model speaks {protocol!r}; tools.predict speaks v1 and v2")
    return Request(request_body(words, protocol), protocol, words=words)


def matches(result: list, expected: list[str]) -> bool:
    """`--expect 1,0,2` matches [1, 0, 2] and also a regression's [1.0, 0.0, 2.0]."""
    def same(value, text: str) -> bool:
        if str(value) == text:
            return True
        try:
            return not isinstance(value, str) and float(text) == value
        except ValueError:
            return False

    return len(result) == len(expected) and all(same(v, e) for v, e in zip(result, expected, strict=True))


def labels() -> dict[str, str]:
    try:
        return json.loads(METADATA.read_text()).get("labels", {})
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call a served model: the tutorial's words, a JSON body, "
                                                 "or a model directory's sample.")
    parser.add_argument("words", nargs="*", help=f"words to classify (default: {' '.join(SAMPLE)})")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="read predict_url and the gateway from this stack's outputs; without a "
                                        "gateway_address, port-forward to the gateway Service")
    target.add_argument("--url", help="the predict URL to POST to")
    parser.add_argument("--model", help="with --stack: the key of the model to call in its `models` output")
    parser.add_argument("--host", help="Host header (the InferenceService host) when --url is the gateway")
    parser.add_argument("--protocol", choices=("v1", "v2"),
                        help="how to send words and read the answer (default: the model's, else v1)")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--request", type=Path, metavar="FILE", help="a JSON request body, sent as is")
    body.add_argument("--sample", type=Path, metavar="DIR",
                      help="send the sample of DIR/metadata.json (sample.request)")
    parser.add_argument("--expect", nargs="?", const=True, metavar="LIST",
                        help="comma-separated predictions, or with --sample and no value its sample.predictions; "
                             "exit 1 when the answer differs")
    parser.add_argument("--token", help=f"bearer token for the gateway (default: ${TOKEN_ENV}, which keeps it out of "
                                         "the process list, else one minted by the stack's token_command)")
    parser.add_argument("--cacert", type=Path, metavar="FILE",
                        help="over https: the CA to trust (default: the stack's ca_secret, else the system's)")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    if args.model is not None and not args.stack:
        parser.error("--model needs --stack")
    if args.words and (args.request or args.sample):
        parser.error("words and --request/--sample: give one of them")
    if args.expect is True and not args.sample:
        parser.error("--expect without a value compares with --sample's predictions; give --sample or a list")
    token = None
    try:
        where = stack_target(args.stack, args.model) if args.stack else Target(args.url, args.host)
        request = choose_request(args, where)
        if args.expect is True and request.predictions is None:
            raise PredictError(f"{args.sample / 'metadata.json'} has no sample.predictions")
        token = bearer_token(args.token, where, args.timeout)
        result = call(where, request, args.timeout, token, args.cacert)
    except PredictError as err:
        # The token stays secret even if an answer quotes it back.
        message = str(err).replace(token, "<token>") if token else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2
    if request.words is not None:
        names = labels()
        for word, label in zip(request.words, result, strict=False):
            print(f"{word}\t{label}\t{names.get(str(label), '')}".rstrip())
    else:
        print(json.dumps(result))
    if args.expect is True and result != request.predictions:
        print(f"error: expected predictions {json.dumps(request.predictions)}, got {json.dumps(result)}",
              file=sys.stderr)
        return 1
    if isinstance(args.expect, str):
        expected = [p.strip() for p in args.expect.split(",")]
        if not matches(result, expected):
            print(f"error: expected predictions [{', '.join(expected)}], got {result}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
