"""Call the served model and print each word with its label.

    python -m tools.predict --stack standard                 # URL and gateway from the stack outputs
    python -m tools.predict --url URL --host HOST [WORDS...] # e.g. through kubectl port-forward
    python -m tools.predict ... --expect 1,0,2               # exit 1 unless the answer matches

With --stack and no load-balancer address (kind, minikube, bare metal) the model's host does not
resolve, so it port-forwards to the gateway Service itself, on the stack's cluster (its
`kubernetes:context` and `kubernetes:kubeconfig`), and stops the port-forward when done.

Standard library only, so it runs with any python3 (the e2e workflow calls it through a port-forward).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
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


def stack_target(stack: str) -> Target:
    """Where to send the request, from `pulumi stack output` (and config, for a port-forward)."""
    outputs = pulumi_json(["stack", "output"], stack)
    predict_url = outputs.get("predict_url")
    if not predict_url:
        raise PredictError(f"stack {stack} has no predict_url output; has `pulumi up -s {stack}` run?")
    parsed = urllib.parse.urlsplit(predict_url)
    address = outputs.get("gateway_address")
    if address:
        return Target(urllib.parse.urlunsplit((parsed.scheme, address, parsed.path, "", "")), parsed.netloc)
    service = outputs.get("gateway_service") or GATEWAY_SERVICES.get(outputs.get("mode", ""))
    if not service:
        raise PredictError(f"stack {stack} has no gateway_address, gateway_service or mode output")
    return Target(predict_url, parsed.netloc, service, tuple(sorted(kubernetes_config(stack).items())))


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
def port_forward(service: str, kubernetes: dict[str, str], timeout: float) -> Iterator[int]:
    """A local port forwarded to port 80 of the gateway Service; the port-forward stops on the
    way out, also after an error."""
    namespace, _, name = service.partition("/")
    with kubectl_flags(kubernetes) as flags:
        command = ["kubectl", *flags, "-n", namespace, "port-forward", "--address", "127.0.0.1", f"svc/{name}", ":80"]
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


def request_body(words: list[str], protocol: str) -> dict:
    if protocol == "v2":
        return {"inputs": [{"name": "input-0", "shape": [len(words)], "datatype": "BYTES", "data": words}]}
    return {"instances": words}


def predictions(body: dict, protocol: str) -> list:
    if protocol == "v2":
        return list(body["outputs"][0]["data"])
    return list(body["predictions"])


def predict(url: str, host: str | None, words: list[str], protocol: str = "v1", timeout: float = 30) -> list:
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    request = urllib.request.Request(url, data=json.dumps(request_body(words, protocol)).encode(),
                                     headers=headers, method="POST")
    # A loopback URL is a port-forward: no HTTP(S)_PROXY in the way.
    loopback = urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if loopback else []))
    try:
        with opener.open(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise PredictError(f"{url} answered {err.code}: {err.read().decode(errors='replace')[:500]}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PredictError(f"cannot reach {url}: {reason}") from err
    except json.JSONDecodeError as err:
        raise PredictError(f"{url} did not answer JSON: {err}") from err
    try:
        return predictions(body, protocol)
    except (KeyError, IndexError, TypeError) as err:
        raise PredictError(f"{url} answered without predictions: {json.dumps(body)[:500]}") from err


def call(target: Target, words: list[str], protocol: str, timeout: float) -> list:
    if not target.gateway_service:
        return predict(target.url, target.host, words, protocol, timeout)
    with port_forward(target.gateway_service, dict(target.kubernetes), timeout) as port:
        parsed = urllib.parse.urlsplit(target.url)
        local = urllib.parse.urlunsplit(("http", f"127.0.0.1:{port}", parsed.path, parsed.query, ""))
        return predict(local, target.host, words, protocol, timeout)


def labels() -> dict[str, str]:
    try:
        return json.loads(METADATA.read_text()).get("labels", {})
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call the served model and print each word with its label.")
    parser.add_argument("words", nargs="*", default=SAMPLE, help=f"words to classify (default: {' '.join(SAMPLE)})")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="read predict_url and the gateway from this stack's outputs; without a "
                                        "gateway_address, port-forward to the gateway Service")
    target.add_argument("--url", help="the predict URL to POST to")
    parser.add_argument("--host", help="Host header (the InferenceService host) when --url is the gateway")
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    parser.add_argument("--expect", help="comma-separated predictions; exit 1 when the answer differs")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    try:
        where = stack_target(args.stack) if args.stack else Target(args.url, args.host)
        result = call(where, args.words, args.protocol, args.timeout)
    except PredictError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = labels()
    for word, label in zip(args.words, result, strict=False):
        print(f"{word}\t{label}\t{names.get(str(label), '')}".rstrip())
    if args.expect is not None:
        expected = [p.strip() for p in args.expect.split(",")]
        if [str(p) for p in result] != expected:
            print(f"error: expected predictions [{', '.join(expected)}], got {result}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
