"""Where a model answers and what to ask it: hosts, paths, sample requests, the `curl` output."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from settings.config import AuthConfig, ModelConfig, PathSource, Scheme
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


def predict_url(model: ModelConfig, mode: Mode, domain: str, scheme: Scheme = "http") -> str:
    return f"{scheme}://{host(model, mode, domain)}{predict_path(model)}"


def internal_predict_url(model: ModelConfig, mode: Mode, gateway_service: tuple[str, str]) -> str:
    """For callers in the cluster. Standard: the gateway's Service, called with the model's host
    (the predictor admits only the gateway, access.network_policy). Serverless: the predictor's
    cluster host, which Knative routes through its local gateway, where the token is checked."""
    if mode == "standard":
        ns, svc = gateway_service
        return f"http://{svc}.{ns}.svc.cluster.local{predict_path(model)}"
    return f"http://{model.name}-predictor.{model.namespace}.svc.cluster.local{predict_path(model)}"


def token_command(auth: AuthConfig, context: str | None, account: str = "default",
                  namespace: str = "default") -> str | None:
    """Mints a service-account token for the stack's audience (an hour, kubectl's default)."""
    if not auth.enabled:
        return None
    return f"{kubectl(context)} create token {account} -n {namespace} --audience {shlex.quote(auth.audience)}"


def kubectl(context: str | None) -> str:
    return f"kubectl --context {shlex.quote(context)}" if context else "kubectl"


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
                 address: str | None, context: str | None, auth: AuthConfig,
                 ca_secret: str | None = None) -> str:
    """A ready-to-run call through the gateway, the Host header picking the model's route; through
    a port-forward when the gateway has no load-balancer address (kind, minikube, bare metal), on
    the stack's `kubernetes:context`: the cluster the provider deployed to, not kubectl's current one.
    It sends a token minted on the spot (`jwt`: the identity provider's, from $TOKEN). Over https
    it checks the gateway's certificate against the model's host (`--resolve`), with the stack's
    own CA when the issuer is its self-signed one (`ca_secret`, namespace/name)."""
    body = curl_body(model)
    data = f"-d '{body}'" if body is not None else "-d @request.json"
    token = {"kubernetes": f'-H "Authorization: Bearer $({token_command(auth, context)})" ',
             "jwt": '-H "Authorization: Bearer $TOKEN" '}.get(auth.type, "")
    https = predict_url.startswith("https://")
    ca, fetch_ca = "", ""
    if https and ca_secret:
        secret_ns, secret = ca_secret.split("/", 1)
        fetch_ca = (f"{kubectl(context)} -n {secret_ns} get secret {secret} -o jsonpath='{{.data.ca\\.crt}}' "
                    "| base64 -d > ca.crt; ")
        ca = "--cacert ca.crt "
    ns, svc = gateway_service
    port = 443 if https else 80
    local_port = 8443 if https else 8080
    if https:
        target = address or "127.0.0.1"
        url = predict_url if address else predict_url.replace(model_host, f"{model_host}:{local_port}", 1)
        call = (f"curl -sS {ca}--resolve {model_host}:{local_port if not address else port}:{target} {token}"
                f"-H 'Content-Type: application/json' {data} {url}")
    else:
        call = f"curl -sS -H 'Host: {model_host}' {token}-H 'Content-Type: application/json' {data}"
        url = predict_url.replace(model_host, address or f"127.0.0.1:{local_port}", 1)
        call = f"{call} {url}"
    if address:
        return f"{fetch_ca}{call}"
    return f"{fetch_ca}{kubectl(context)} -n {ns} port-forward svc/{svc} {local_port}:{port} & sleep 2; {call}; kill %1"
