"""Call the served model and print each word with its label.

    python -m tools.predict --stack standard                 # URL and gateway from the stack outputs
    python -m tools.predict --url URL --host HOST [WORDS...] # e.g. through kubectl port-forward
    python -m tools.predict ... --expect 1,0,2               # exit 1 unless the answer matches

Standard library only, so it runs with any python3 (the e2e workflow calls it through a port-forward).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SAMPLE = ["sparrow", "elephant", "sunflower"]
METADATA = Path(__file__).resolve().parent.parent / "model" / "metadata.json"


class PredictError(RuntimeError):
    pass


def stack_target(stack: str) -> tuple[str, str | None]:
    """(url to send to, Host header) from `pulumi stack output`."""
    try:
        result = subprocess.run(["pulumi", "stack", "output", "--json", "-s", stack],
                                capture_output=True, text=True, timeout=120)
    except FileNotFoundError as err:
        raise PredictError("the pulumi CLI is not on PATH; pass --url and --host instead") from err
    if result.returncode != 0:
        raise PredictError(f"pulumi stack output -s {stack} failed: {result.stderr.strip() or result.stdout.strip()}")
    try:
        outputs = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as err:
        raise PredictError(f"pulumi stack output -s {stack} did not print JSON: {err}") from err
    predict_url = outputs.get("predict_url")
    if not predict_url:
        raise PredictError(f"stack {stack} has no predict_url output; has `pulumi up -s {stack}` run?")
    parsed = urllib.parse.urlsplit(predict_url)
    address = outputs.get("gateway_address")
    if not address:
        return predict_url, None
    return urllib.parse.urlunsplit((parsed.scheme, address, parsed.path, "", "")), parsed.netloc


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
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


def labels() -> dict[str, str]:
    try:
        return json.loads(METADATA.read_text()).get("labels", {})
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call the served model and print each word with its label.")
    parser.add_argument("words", nargs="*", default=SAMPLE, help=f"words to classify (default: {' '.join(SAMPLE)})")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="read predict_url and gateway_address from this stack's outputs")
    target.add_argument("--url", help="the predict URL to POST to")
    parser.add_argument("--host", help="Host header (the InferenceService host) when --url is the gateway")
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    parser.add_argument("--expect", help="comma-separated predictions; exit 1 when the answer differs")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    try:
        url, host = stack_target(args.stack) if args.stack else (args.url, args.host)
        result = predict(url, host or args.host, args.words, args.protocol, args.timeout)
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
