"""The committed model served by the real KServe Python server over HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

SAMPLE = ["sparrow", "elephant", "sunflower"]


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_v1_predict(model_server):
    status, body = post(f"{model_server}/v1/models/model:predict", json.dumps({"instances": SAMPLE}).encode())
    assert (status, body) == (200, {"predictions": [1, 0, 2]})


def test_v2_infer_with_bytes_input(model_server):
    request = {"inputs": [{"name": "input-0", "shape": [3], "datatype": "BYTES", "data": SAMPLE}]}
    status, body = post(f"{model_server}/v2/models/model/infer", json.dumps(request).encode())
    assert status == 200
    assert body["model_name"] == "model"
    assert body["outputs"][0]["data"] == [1, 0, 2]


def test_v2_health_and_model_ready(model_server):
    with urllib.request.urlopen(f"{model_server}/v2/health/ready", timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["ready"] is True
    with urllib.request.urlopen(f"{model_server}/v2/models/model/ready", timeout=10) as r:
        assert json.loads(r.read())["ready"] is True


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"not json", "application/json", "Unrecognized request format"),
    (b"not json", "text/plain", "not JSON"),
    (b'{"words": ["sparrow"]}', "application/json", '"instances"'),
    (b'{"instances": [1, 2]}', "application/json", "must be a string"),
    (b'{"instances": "sparrow"}', "application/json", "list"),
    (b'{"instances": []}', "application/json", "non-empty"),
])
def test_malformed_bodies_are_4xx_with_a_message_and_the_server_keeps_serving(model_server, body, content_type,
                                                                               message):
    status, answer = post(f"{model_server}/v1/models/model:predict", body, content_type)
    assert 400 <= status < 500, (status, answer)
    assert message in answer.get("error", ""), answer
    status, answer = post(f"{model_server}/v1/models/model:predict", json.dumps({"instances": SAMPLE}).encode())
    assert (status, answer) == (200, {"predictions": [1, 0, 2]})


def test_unknown_model_is_404(model_server):
    status, _ = post(f"{model_server}/v1/models/nope:predict", json.dumps({"instances": SAMPLE}).encode())
    assert status == 404
