"""Where a model answers and what to ask it: hosts, paths, sample requests, the `curl` output."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from settings.config import ModelConfig, PathSource
from settings.versions import Mode

SAMPLE = ["sparrow", "elephant", "sunflower"]
"""The tutorial's words: what an sklearn model without a sample of its own is asked."""
OPENAI_PREFIX = "/openai/v1"
"""The OpenAI-compatible routes of KServe's huggingface server (KSERVE_OPENAI_ROUTE_PREFIX's default)."""
CHAT_PROMPT = "Say hello in one word."


@dataclass(frozen=True)
class Sample:
    """One call to the model: `body` None is a GET. `expected` is what the reply, without white
    space, must contain; `routed` what any version's reply contains (the gateway may still reach
    an old pod mid-rollout)."""

    path: str
    body: str | None
    expected: str
    routed: str


def host(model: ModelConfig, mode: Mode, domain: str) -> str:
    """KServe's default domain templates: Gateway API `<name>-<ns>.<domain>`, Knative `<name>.<ns>.<domain>`."""
    sep = "-" if mode == "standard" else "."
    return f"{model.name}{sep}{model.namespace}.{domain}"


def predict_path(model: ModelConfig) -> str:
    if model.is_llm:
        return f"{OPENAI_PREFIX}/chat/completions"
    if model.protocol == "v2":
        return f"/v2/models/{model.name}/infer"
    return f"/v1/models/{model.name}:predict"


def ready_path(model: ModelConfig) -> str:
    if model.protocol == "v2":
        return f"/v2/models/{model.name}/ready"
    return f"/v1/models/{model.name}"


def metadata_sample(model: ModelConfig) -> dict | None:
    """The `sample` of the model's metadata.json, when a `path` model has one."""
    if isinstance(model.source, PathSource):
        meta = next((f for f in model.source.files if f.name == "metadata.json"), None)
        if meta is not None:
            return json.loads(meta.read_text()).get("sample") or None
    return None


def result_field(model: ModelConfig) -> str:
    return '"data":' if model.protocol == "v2" else '"predictions":'


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def request_body(model: ModelConfig, words: list[str]) -> str:
    if model.protocol == "v2":
        data = {"inputs": [{"name": "input-0", "shape": [len(words)], "datatype": "BYTES", "data": words}]}
    else:
        data = {"instances": words}
    return compact(data)


def expected_fragment(model: ModelConfig, predictions: list | None) -> str:
    """The predictions when the model's metadata gives them, else the protocol's result field."""
    return result_field(model) + (compact(predictions) if predictions is not None else "")


def chat_body(model: ModelConfig) -> str:
    return compact({"model": model.name, "messages": [{"role": "user", "content": CHAT_PROMPT}], "max_tokens": 8})


def sample(model: ModelConfig) -> Sample:
    """What the smoke test asks. An LLM lists its model on the OpenAI route (the server's model
    id is `--model_name`, the InferenceService's name); a model whose metadata has a sample is
    asked it; an sklearn model without one the tutorial's words; any other model its readiness
    route, the one call every runtime answers without knowing the model's inputs."""
    if model.is_llm:
        listed = f'"id":{compact(model.name)}'
        return Sample(f"{OPENAI_PREFIX}/models", None, listed, listed)
    data = metadata_sample(model) or {}
    predictions = data.get("predictions")
    if data.get("request") is not None:
        body = compact(data["request"])
    elif data.get("instances") or model.format == "sklearn":
        body = request_body(model, list(data.get("instances") or SAMPLE))
    else:
        return Sample(ready_path(model), None, "", "")
    return Sample(predict_path(model), body, expected_fragment(model, predictions), result_field(model))


def curl_body(model: ModelConfig) -> str | None:
    """The body the `curl` output sends: a chat completion for an LLM, else the sample's request."""
    if model.is_llm:
        return chat_body(model)
    return sample(model).body


def curl_command(model: ModelConfig, model_host: str, predict_url: str, gateway_service: tuple[str, str],
                 address: str | None, context: str | None) -> str:
    """A ready-to-run call through the gateway, the Host header picking the model's route; through
    a port-forward when the gateway has no load-balancer address (kind, minikube, bare metal), on
    the stack's `kubernetes:context`: the cluster the provider deployed to, not kubectl's current one."""
    body = curl_body(model)
    data = f"-d '{body}'" if body is not None else "-d @request.json"
    call = f"curl -sS -H 'Host: {model_host}' -H 'Content-Type: application/json' {data}"
    if address:
        return f"{call} {predict_url.replace(model_host, address, 1)}"
    ns, svc = gateway_service
    kubectl = f"kubectl --context {shlex.quote(context)}" if context else "kubectl"
    local = predict_url.replace(model_host, "127.0.0.1:8080", 1)
    return f"{kubectl} -n {ns} port-forward svc/{svc} 8080:80 & sleep 2; {call} {local}; kill %1"
