"""The ModelService component: one model, from its files to the URLs to call it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.gateway_auth import attachment
from components.model_service import access, jobs, storage, urls
from components.model_service import inference_service as isvc
from components.readiness import await_annotations
from settings.config import AuthConfig, Layers, ModelConfig, Scheme, UriSource
from settings.versions import Mode


@dataclass(frozen=True)
class ModelServiceArgs:
    model: ModelConfig
    mode: Mode
    deployment_mode: str
    """The KServe version's own string for the mode (Standard/Knative or RawDeployment/Serverless)."""
    domain: str
    waits: bool
    gateway_service: tuple[str, str]
    """(namespace, name) of the ingress gateway's Service: the smoke test calls it in the cluster."""
    smoke_test: str = "auto"
    image_registry: str | None = None
    kserve: Sequence[pulumi.Resource] = ()
    """The controller, runtimes and ingress must serve before the InferenceService."""
    after: Sequence[pulumi.Resource] = ()
    """The cluster check and the model's namespace: nothing of the model is written before them."""
    secrets: pulumi.Output[Mapping[str, str]] | None = None
    """`kserve-stack:secrets`, for a model whose environment reads some."""
    auth: AuthConfig = AuthConfig()
    scheme: Scheme = "http"
    layers: Layers = Layers()
    """Where the gateway's pods and Knative run: the only callers the predictor admits."""


AUTH_ANNOTATION = "kserve-stack/auth"
"""On an InferenceService anyone who reaches the gateway may call (`auth: none`)."""


class ModelService(pulumi.ComponentResource):
    """A model's InferenceService, fed from a claim a copy Job fills, or from a storage URI; with
    its smoke test and URLs. Each model is one of these, waiting for nothing of another model."""

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:ModelService", name, None, opts)
        self.model = model = args.model
        after = list(args.after)
        digest = storage.model_digest(model)
        self.volume = self.claim = self.files = self.copy_job = None
        claim_labels: dict[str, str] = {}
        affinity = None
        if isinstance(model.source, UriSource):
            self.storage_uri = model.source.uri
            ready_inputs: list[pulumi.Resource] = after
        else:
            claim = storage.claim_name(model)
            self.storage_uri = f"pvc://{claim}/{model.name}/{storage.version_of(digest)}"
            affinity = storage.claim_affinity(model, claim)
            claim_labels = {storage.CLAIM_LABEL: claim} if affinity else {}
            self.volume = storage.volume(name, model, self, after)
            self.claim = storage.claim(name, model, self, after, self.volume)
            self.files = storage.files(name, model, self, after)
            self.copy_job = jobs.copy_job(
                name, model, digest, claim_labels, affinity, args.image_registry, args.waits, self,
                [r for r in (self.claim, self.files) if r is not None])
            ready_inputs = [self.copy_job]
        secrets = args.secrets or pulumi.Output.from_input({})
        self.env_secret = isvc.env_secret(name, model, secrets, self, after)
        self.hf_token = isvc.hf_token(name, model, secrets, self, after)
        ready_inputs = [*ready_inputs, *(r for r in (self.env_secret,) if r), *self.hf_token]

        standard = args.mode == "standard"
        self.serving = isvc.serving_version(model, self.storage_uri)
        predictor_labels = {**claim_labels, **({isvc.SERVING_LABEL: self.serving} if standard else {})}
        spec = isvc.inference_service_spec(model, self.storage_uri, predictor_labels, affinity, standard)
        wait = isvc.RAW_MODE_WAIT if standard and args.waits else await_annotations(
            args.waits, "condition=Ready", model.ready_timeout)
        annotations = {
            "serving.kserve.io/deploymentMode": args.deployment_mode,
            isvc.DIGEST_ANNOTATION: digest[:16],
            **({} if standard else isvc.knative_annotations(model)),
            **wait,
        }
        if not args.auth.enabled:
            annotations[AUTH_ANNOTATION] = "none"
        self.host = urls.host(model, args.mode, args.domain)
        # The predictor's pods admit only the gateway before they exist, and the gateway lets a
        # call through only as the model's policy says, before the model is served.
        self.network_policy = access.network_policy(name, model, args.mode, args.layers, self, after)
        self.policy = None
        if args.auth.enabled:
            self.policy = access.authorization_policy(name, model, args.mode, self.host, args.auth,
                                                      attachment(args.mode, args.layers), self, list(args.kserve))
        self.smoke_account = access.smoke_service_account(name, model, self, after)
        isvc_inputs = [*ready_inputs, *args.kserve, self.network_policy, *([self.policy] if self.policy else [])]
        self.inference_service = isvc.inference_service(name, model, spec, annotations, self, isvc_inputs)

        self.predict_url = urls.predict_url(model, args.mode, args.domain, args.scheme)
        self.internal_predict_url = urls.internal_predict_url(model, args.mode, args.gateway_service)
        self.openai_url = f"{args.scheme}://{self.host}{urls.OPENAI_PREFIX}" if model.is_llm else None
        self.serving_gate = self.serving_service = None
        if standard and args.waits:
            self.serving_gate = isvc.serving_gate(name, model, self.serving, args.waits, self, isvc_inputs)
            self.serving_service = isvc.serving_route(name, model, self.serving, self, isvc_inputs)
        self.smoke_test = None
        if args.smoke_test != "off" and args.waits:
            self.smoke_test = jobs.smoke_test(
                name, model, urls.sample(model), self.host, args.gateway_service,
                isvc.serving_name(model, self.serving) if self.serving_service else None,
                json.dumps([digest, args.deployment_mode, spec]), args.image_registry, args.waits, self,
                [self.inference_service, self.smoke_account,
                 *(r for r in (self.serving_gate, self.serving_service) if r)],
                jobs.SmokeAuth(audience=args.auth.audience if args.auth.enabled else None))
        self.register_outputs({
            "predict_url": self.predict_url,
            "internal_predict_url": self.internal_predict_url,
        })
