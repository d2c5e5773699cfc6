"""The InferenceService: its spec, the Secret its environment reads, and, in Standard mode, the
gate that holds `up` until a pod of the new version is Ready."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.model_service.storage import ISVC_POD_LABEL
from components.readiness import SKIP_AWAIT, await_annotations
from settings.config import ModelConfig
from settings.runtimes import MLSERVER_MODEL_CLASSES

DIGEST_ANNOTATION = "kserve-stack/model-digest"
SERVING_LABEL = "kserve-stack/serving"
"""Standard mode: the predictor pods' spec version, so the new pods can be selected alone."""
PREDICTOR_PORT = 8080
"""The port KServe's predictor container serves on (its `<name>-predictor` Service maps 80 to it)."""
MLSERVER = "kserve-mlserver"
MODEL_CLASS_LABEL = "modelClass"
"""kserve-mlserver's container sets MLSERVER_MODEL_IMPLEMENTATION from `{{.Labels.modelClass}}`."""
SHM_VOLUME = "devshm"
"""The name of the huggingface runtime's own /dev/shm volume (kserve v0.20.0 kserve-runtime-configs
files/runtimes/resources.yaml): KServe merges predictor volumes by name and mounts by path, so a size
given here lands on it."""
HF_TOKEN_KEY = "HF_TOKEN"
"""The one key KServe's credential builder hands the storage initializer for `hf://` (pkg/credentials/
hf/hf_secret.go). It reads the Secrets of the predictor's ServiceAccount, and only the first kind of
credential it recognises in each Secret (service_account_credentials.go, mountSecretCredential): the
token has a Secret of its own. The predictor's own env never reaches the storage initializer
(kserve#4400)."""
KNATIVE_PROGRESS_DEADLINE = "serving.knative.dev/progress-deadline"
"""Knative gives up on a revision not Ready after 600 s (config-deployment `progress-deadline`)."""
KNATIVE_DEFAULT_DEADLINE = 600
RAW_MODE_WAIT = {SKIP_AWAIT: "true"}
"""Standard mode's InferenceService is not awaited itself. In raw mode KServe copies the predictor
*Deployment's* observedGeneration into the InferenceService status (kserve
pkg/apis/serving/v1beta1/inference_service_status.go, PropagateRawStatus), and a change that leaves
the Deployment as it was (`maxReplicas` reaches only the HPA) keeps it below the InferenceService's
generation for good. The provider's `condition=` and `jsonpath=` waits both refuse a status whose
observedGeneration is behind (pulumi-kubernetes provider/pkg/await/condition kubectl.go and, in
the 4.25 build, jsonpath.go), so either would hang every later `up`. The serving gate (a Ready pod
of the new version, `serving_gate`) and the smoke test (its answer, and the route through the
gateway) are the gates instead."""


def env_secret_name(model: ModelConfig) -> str:
    return f"{model.name}-env"


def _env(model: ModelConfig) -> list[dict]:
    out: list[dict] = []
    for var in model.env:
        if var.secret:
            out.append({"name": var.name, "valueFrom": {"secretKeyRef": {"name": env_secret_name(model),
                                                                         "key": var.name}}})
        else:
            out.append({"name": var.name, "value": var.value})
    return out


def hf_token_names(model: ModelConfig) -> tuple[str, str]:
    """(Secret, ServiceAccount) that carry a model's Hugging Face token to its storage initializer."""
    return f"{model.name}-hf-token", f"{model.name}-model"


def readiness_probe(model: ModelConfig, standard: bool) -> dict | None:
    """An LLM's server listens before its engine has loaded the weights (kserve v0.20.0
    huggingfaceserver: the vLLM engine starts beside the REST server), so KServe's default TCP probe
    passes too early; the model's V1 readiness route answers only once it can serve. Knative fills in
    the container's port and refuses another; a Deployment needs it."""
    if not model.is_llm:
        return None
    http = {"path": f"/v1/models/{model.name}", **({"port": PREDICTOR_PORT} if standard else {})}
    return {"httpGet": http, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}


def inference_service_spec(model: ModelConfig, storage_uri: str, labels: dict[str, str] | None = None,
                           affinity: dict | None = None, standard: bool = True) -> dict:
    """`affinity`, `volumes` and the service account sit on the predictor itself (v1beta1
    PredictorSpec embeds a PodSpec); args, env, mounts and probes on its model container. Keys a
    model does not use are left out, so a model that uses none keeps the spec it always had."""
    env = _env(model)
    probe = readiness_probe(model, standard)
    container = {
        "modelFormat": {"name": model.format},
        "protocolVersion": model.protocol,
        "runtime": model.runtime,
        "storageUri": storage_uri,
        "resources": model.resources,
        **({"args": list(model.args)} if model.args else {}),
        **({"env": env} if env else {}),
        **({"volumeMounts": [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]} if model.shared_memory else {}),
        **({"readinessProbe": probe} if probe else {}),
    }
    return {
        "predictor": {
            **({"labels": labels} if labels else {}),
            **({"affinity": affinity} if affinity else {}),
            **({"nodeSelector": dict(model.node_selector)} if model.node_selector else {}),
            **({"tolerations": [dict(t) for t in model.tolerations]} if model.tolerations else {}),
            **({"serviceAccountName": hf_token_names(model)[1]} if model.hf_token else {}),
            **({"timeout": model.request_timeout} if model.request_timeout else {}),
            **({"volumes": [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": model.shared_memory}}]}
               if model.shared_memory else {}),
            "minReplicas": model.min_replicas,
            "maxReplicas": model.max_replicas,
            **({"canaryTrafficPercent": model.canary_traffic_percent}
               if model.canary_traffic_percent is not None else {}),
            "model": container,
        },
    }


def isvc_labels(model: ModelConfig) -> dict[str, str]:
    """MLServer is told which of its runtimes loads the model through a label on the InferenceService."""
    if model.runtime == MLSERVER and model.format in MLSERVER_MODEL_CLASSES:
        return {MODEL_CLASS_LABEL: MLSERVER_MODEL_CLASSES[model.format]}
    return {}


def serving_version(model: ModelConfig, storage_uri: str) -> str:
    """Changes whenever the predictor's pods must change (model version, runtime, resources, args,
    env), and not for replica counts or the canary's share, which change no pod."""
    spec = inference_service_spec(model, storage_uri)["predictor"]
    pods = {k: v for k, v in spec.items()
            if k not in ("minReplicas", "maxReplicas", "canaryTrafficPercent", "timeout")}
    if set(pods) == {"model"}:
        pods = pods["model"]
    return hashlib.sha256(json.dumps(pods, sort_keys=True).encode()).hexdigest()[:8]


def env_secret(name: str, model: ModelConfig, values: pulumi.Output[Mapping[str, str]], parent: pulumi.Resource,
               after: list[pulumi.Resource]) -> k8s.core.v1.Secret | None:
    """The model's secret environment, from `kserve-stack:secrets`: Pulumi keeps the values
    encrypted in its state, and the Secret's data is a secret output."""
    wanted = {var.name: var.secret for var in model.env if var.secret}
    if not wanted:
        return None
    return k8s.core.v1.Secret(
        f"{name}-env",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=env_secret_name(model), namespace=model.namespace),
        type="Opaque",
        string_data=pulumi.Output.secret(values).apply(lambda v: {key: str(v[entry]) for key, entry in wanted.items()}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def hf_token(name: str, model: ModelConfig, values: pulumi.Output[Mapping[str, str]], parent: pulumi.Resource,
             after: list[pulumi.Resource]) -> list[pulumi.Resource]:
    """The token's own Secret and the ServiceAccount the predictor runs as, which lists it."""
    if not model.hf_token:
        return []
    secret_name, account = hf_token_names(model)
    entry = model.hf_token
    secret = k8s.core.v1.Secret(
        f"{name}-hf-token",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=model.namespace),
        type="Opaque",
        string_data=pulumi.Output.secret(values).apply(lambda v: {HF_TOKEN_KEY: str(v[entry])}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
    service_account = k8s.core.v1.ServiceAccount(
        f"{name}-service-account",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=account, namespace=model.namespace),
        secrets=[k8s.core.v1.ObjectReferenceArgs(name=secret_name)],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*after, secret]),
    )
    return [secret, service_account]


def knative_annotations(model: ModelConfig) -> dict[str, str]:
    """A model allowed longer than Knative's default to turn Ready tells Knative so; the
    InferenceService's annotations reach the revision."""
    if model.ready_timeout <= KNATIVE_DEFAULT_DEADLINE:
        return {}
    return {KNATIVE_PROGRESS_DEADLINE: f"{model.ready_timeout}s"}


def inference_service(name: str, model: ModelConfig, spec: dict, annotations: dict[str, str],
                      parent: pulumi.Resource, after: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
    labels = isvc_labels(model)
    return k8s.apiextensions.CustomResource(
        f"{name}-isvc",
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata={
            "name": model.name,
            "namespace": model.namespace,
            **({"labels": labels} if labels else {}),
            "annotations": annotations,
        },
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def serving_name(model: ModelConfig, serving: str) -> str:
    return f"{model.name}-v{serving}"


def serving_selector(model: ModelConfig, serving: str) -> dict[str, str]:
    return {ISVC_POD_LABEL: model.name, SERVING_LABEL: serving}


def serving_gate(name: str, model: ModelConfig, serving: str, waits: bool, parent: pulumi.Resource,
                 after: list[pulumi.Resource]) -> k8s.policy.v1.PodDisruptionBudget:
    """Standard mode: `up` returns only once a pod of the new version is Ready. The predictor
    Deployment keeps Available=True throughout a rollout (one surged pod, the old one kept),
    so nothing on the InferenceService says the new pods are Ready, and a Service's own wait
    does not either: the provider passes a Service once its endpoints settle with none
    pending, which holds for pods not scheduled yet, or not created yet (pulumi-kubernetes
    pkg/await/service.go, checkAndLogStatus). A PodDisruptionBudget over the new version's
    pods (`SERVING_LABEL`, which KServe puts on the predictor's pods) with `minAvailable: 0`
    blocks no eviction, and the disruption controller sets its `DisruptionAllowed` condition
    True exactly when at least one of them is Ready (kubernetes pkg/controller/disruption,
    updatePdbStatus: disruptionsAllowed = currentHealthy - 0). The provider waits for that
    condition; a version that never turns Ready (crash loop, no room on any node) fails `up`
    after `readyTimeoutSeconds`, naming it. Its name carries the version, so a new version is
    a new wait. It waits for what the InferenceService waits for, not for the InferenceService:
    the two run side by side."""
    return k8s.policy.v1.PodDisruptionBudget(
        f"{name}-serving",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=serving_name(model, serving), namespace=model.namespace,
            annotations=await_annotations(waits, "condition=DisruptionAllowed", model.ready_timeout),
        ),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            min_available=0,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=serving_selector(model, serving)),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def serving_route(name: str, model: ModelConfig, serving: str, parent: pulumi.Resource,
                  after: list[pulumi.Resource]) -> k8s.core.v1.Service:
    """The new version's pods alone, for the smoke test to call: mid-rollout the gateway may
    still reach an old pod. Not awaited: the PodDisruptionBudget is the gate."""
    return k8s.core.v1.Service(
        f"{name}-serving-route",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=serving_name(model, serving), namespace=model.namespace,
            annotations={SKIP_AWAIT: "true"},
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=serving_selector(model, serving),
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=PREDICTOR_PORT)],
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
