"""Composes the layers for a stack. Each edge here is a real readiness constraint; layers
without one (cert-manager, Gateway API CRDs, Istio base) install in parallel."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import SELF_SIGNED_ISSUER, CertManager, CertManagerArgs
from components.cluster_check import ClusterCheck, ClusterCheckArgs
from components.gateway_auth import GatewayAuth, GatewayAuthArgs
from components.gateway_layer import GatewayLayer, GatewayLayerArgs
from components.istio_mesh import INGRESS_GATEWAY, IstioMesh, IstioMeshArgs
from components.istio_mesh import NAMESPACE as ISTIO_NAMESPACE
from components.knative_layer import KnativeLayer, KnativeLayerArgs, features_needed
from components.kserve_release import (
    GATEWAY_SERVICE,
    GATEWAY_TLS_SECRET,
    KServeRelease,
    KServeReleaseArgs,
)
from components.kserve_release import (
    NAMESPACE as KSERVE_NAMESPACE,
)
from components.model_service import ModelNamespaces, ModelNamespacesArgs, ModelService, ModelServiceArgs
from components.model_service.namespaces import created as created_namespaces
from components.model_service.urls import curl_body, curl_command, token_command
from settings import manifests
from settings.config import AuthConfig, StackConfig, TlsIssuer
from settings.config.layers import INSTALL_KEYS, LAYER_MODES
from settings.config.models import output_keys, resource_aliases, resource_names
from settings.versions import ManifestSource

Loader = Callable[[ManifestSource], list[dict[str, Any]]]
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
"""The engine's own function behind StackReference (pulumi pkg/resource/deploy/builtins.go)."""


def deployed_outputs(attempts: int = 20, pause: float = 0.5) -> Mapping[str, Any]:
    """The outputs of this stack's previous `up`, read from the backend before anything is
    registered, so that a change the deployed stack cannot take fails `preview` (settings/upgrades).
    The file backend may be writing the checkpoint just then (`up` records its start): a read
    that finds it half-written is tried again."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(attempts):
        try:
            result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
            break
        except Exception as err:  # the engine reports every backend failure the same way
            if attempt == attempts - 1:
                raise RuntimeError(f"cannot read the outputs of {name}'s previous update: {err}") from err
            time.sleep(pause)
    outputs = (result.value or {}).get("outputs") if isinstance(result.value, Mapping) else None
    return outputs or {}


def build(cfg: StackConfig, load_manifest: Loader = manifests.load,
          secret_values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Registers every layer and returns the stack outputs. A layer the cluster already runs
    (`install.<layer>: false`) is not registered at all; the cluster check stands in for it."""
    waits, install, layers = cfg.waits, cfg.install, cfg.layers
    release = cfg.kserve
    check = ClusterCheck("cluster-check", ClusterCheckArgs(
        mode=cfg.mode, install=install, layers=layers, knative_serving=cfg.versions.knative_serving,
        gateway_api_minimum=release.compat.window("gatewayApi")[0], waits=waits,
        knative_features=features_needed(any(m.shares_a_node for m in cfg.models),
                                         any(m.node_selector for m in cfg.models),
                                         any(m.tolerations for m in cfg.models)),
    ))
    after = check.ready
    cert_manager = CertManager("cert-manager", CertManagerArgs(
        version=cfg.versions.cert_manager, source=cfg.charts["certManager"], waits=waits,
        image_registry=cfg.image_registry, install=install.cert_manager, after=after,
    ))
    gateway_api = None
    if cfg.mode == "standard" and install.gateway_api:
        gateway_api = GatewayLayer("gateway-api", GatewayLayerArgs(
            version=cfg.versions.gateway_api, crds=load_manifest(cfg.gateway_api_crds), waits=waits,
            gateway_class=install.istio, after=after,
        ))
    istio_ready: list[pulumi.Resource] = check.ready
    if install.istio:
        istio = IstioMesh("istio", IstioMeshArgs(
            mode=cfg.mode, version=cfg.versions.istio, charts=cfg.charts, waits=waits,
            service_type=cfg.gateway.service_type, image_registry=cfg.image_registry, gateway_api=gateway_api,
            profile=cfg.profile, after=after, jwks_root_ca=cluster_ca() if cfg.auth.enabled else None,
        ))
        istio_ready = istio.ready
    if cfg.mode == "standard":
        ingress_api = [gateway_api] if gateway_api is not None else check.ready
        gateway_service = (KSERVE_NAMESPACE, GATEWAY_SERVICE)
    else:
        ingress_api = check.ready
        if install.knative:
            ingress_api = [KnativeLayer("knative", KnativeLayerArgs(
                version=cfg.versions.knative, serving_version=cfg.versions.knative_serving,
                chart=cfg.charts["knativeOperator"], domain=cfg.domain,
                waits=waits, istio=[istio.istiod] if install.istio else check.ready,
                image_registry=cfg.image_registry, profile=cfg.profile, after=after,
            ))]
        gateway_service = (ISTIO_NAMESPACE, INGRESS_GATEWAY) if install.istio else (
            layers.istio_namespace, layers.ingress_gateway)
    kserve = KServeRelease("kserve", KServeReleaseArgs(
        mode=cfg.mode, release=release, charts=cfg.charts, domain=cfg.domain, waits=waits,
        tls_issuer=cfg.gateway.tls_issuer or TlsIssuer(kind="ClusterIssuer", name=SELF_SIGNED_ISSUER),
        service_type=cfg.gateway.service_type, image_registry=cfg.image_registry,
        cert_manager=cert_manager.ready, ingress_api=ingress_api, istio=istio_ready, kept_crds=cfg.kept_crds,
        layers=layers, after=after,
    ))
    secrets = None
    if cfg.secrets:
        secrets = pulumi.Output.secret(secret_values) if secret_values is not None else (
            pulumi.Config().require_secret_object("secrets"))
    platform = [*kserve.ready, *istio_ready]
    if cfg.auth.enabled:
        platform += GatewayAuth("gateway-auth", GatewayAuthArgs(
            mode=cfg.mode, auth=cfg.auth, stack=pulumi.get_stack(), layers=layers, after=[*after, *platform],
        )).ready
    models = model_services(cfg, gateway_service, platform, after, secrets)
    outputs: dict[str, Any] = {
        "mode": cfg.mode,
        "kserve_version": release.version,
        "versions": {key: getattr(cfg.versions, attr) for key, attr in VERSION_OUTPUTS.items()},
        "kept_crds": list(cfg.kept_crds),
        "installed_layers": [key for key, attr in INSTALL_KEYS.items() if getattr(install, attr)
                             and LAYER_MODES.get(key, cfg.mode) == cfg.mode],
        "gateway_service": "/".join(gateway_service),
        **auth_outputs(cfg),
    }
    address = gateway_address(gateway_service, list(models.values())) if waits and models else None
    context = pulumi.Config("kubernetes").get("context")
    ca = ca_secret(cfg)
    entries = {key: model_outputs(service, gateway_service, address, context, cfg.auth, ca)
               for key, service in models.items()}
    outputs["models"] = entries
    if address is not None:
        outputs["gateway_address"] = address
    if len(entries) == 1:
        [only] = entries.values()
        outputs.update({k: only[k] for k in ("predict_url", "internal_predict_url", "curl", "smoke_test") if k in only})
        outputs.setdefault("gateway_address", None)
    return outputs


def model_services(cfg: StackConfig, gateway_service: tuple[str, str], kserve: list[pulumi.Resource],
                   after: list[pulumi.Resource], secrets: pulumi.Output | None) -> dict[str, ModelService]:
    """A ModelService per model, keyed as the `models` output is; each waits for the platform and
    its namespace only, never for another model, so models install side by side."""
    names, keys = resource_names(cfg.models), output_keys(cfg.models)
    aliases = resource_aliases(cfg.models, cfg.bare_models)
    namespaces: dict[str, pulumi.Resource] = {}
    if created_namespaces(cfg.models):
        namespaces = dict(ModelNamespaces("model-namespaces", ModelNamespacesArgs(
            models=cfg.models, after=after)).namespaces)
    release = cfg.kserve
    return {
        keys[(m.namespace, m.name)]: ModelService(names[(m.namespace, m.name)], ModelServiceArgs(
            model=m, mode=cfg.mode, deployment_mode=release.deployment_mode(cfg.mode), domain=cfg.domain,
            waits=cfg.waits, gateway_service=gateway_service, smoke_test=cfg.smoke_test,
            image_registry=cfg.image_registry, kserve=kserve,
            after=[*after, *([namespaces[m.namespace]] if m.namespace in namespaces else [])], secrets=secrets,
            auth=cfg.auth, scheme=cfg.gateway.scheme, layers=cfg.layers,
        ), pulumi.ResourceOptions(aliases=[pulumi.Alias(name=a) for a in aliases[(m.namespace, m.name)]]))
        for m in cfg.models
    }


def gateway_address(gateway_service: tuple[str, str], models: list[ModelService]) -> pulumi.Output[str | None]:
    """The gateway Service's load-balancer address, read once every model's InferenceService
    exists (the ids stay unknown until then, so a first preview does not read a Service that is
    not there yet)."""
    ns, svc = gateway_service
    service = k8s.core.v1.Service.get(
        "gateway-service", pulumi.Output.all(*[m.inference_service.id for m in models]).apply(lambda _: f"{ns}/{svc}"),
    )

    def address(status) -> str | None:
        ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
        return next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), None)

    return service.status.apply(address)


def cluster_ca() -> pulumi.Output[str]:
    """The CA of the cluster's API server, which every namespace holds (the root-ca-cert-publisher
    of kube-controller-manager): istiod must trust it to fetch the service-account issuer's keys."""
    root = k8s.core.v1.ConfigMap.get("cluster-ca", "kube-system/kube-root-ca.crt")
    return root.data.apply(lambda d: (d or {}).get("ca.crt", ""))


def ca_secret(cfg: StackConfig) -> str | None:
    """The Secret holding the CA a caller trusts over https: only the stack's self-signed issuer
    needs one; a real issuer's chain is in the system store."""
    if cfg.gateway.scheme != "https" or cfg.gateway.tls_issuer is not None:
        return None
    return f"{KSERVE_NAMESPACE}/{GATEWAY_TLS_SECRET}"


def auth_outputs(cfg: StackConfig) -> dict[str, Any]:
    auth = cfg.auth
    if not auth.enabled:
        return {"auth": {"type": "none"}, "auth_warning": (
            "kserve-stack:auth is none: anyone who reaches the gateway can call every model of this stack")}
    out: dict[str, Any] = {
        "auth": {"type": auth.type, "issuer": auth.issuer, "audiences": list(auth.audiences)},
        "token_command": token_command(auth, pulumi.Config("kubernetes").get("context")),
    }
    if (ca := ca_secret(cfg)) is not None:
        out["ca_secret"] = ca
    return out


def model_outputs(service: ModelService, gateway_service: tuple[str, str], address: pulumi.Output[str | None] | None,
                  context: str | None, auth: AuthConfig, ca: str | None) -> dict[str, Any]:
    """What `tools.predict --model` and a user need of one model."""
    model = service.model
    curl = pulumi.Output.from_input(address).apply(
        lambda a: curl_command(model, service.host, service.predict_url, gateway_service, a, context, auth, ca))
    out: dict[str, Any] = {
        "predict_url": service.predict_url,
        "internal_predict_url": service.internal_predict_url,
        "host": service.host,
        "namespace": model.namespace,
        "protocol": model.protocol,
        "runtime": model.runtime,
        "curl": curl,
    }
    body = curl_body(model)
    if body is not None:
        out["sample_request"] = body
    if service.openai_url:
        out["openai_url"] = service.openai_url
    if service.smoke_test is not None:
        out["smoke_test"] = service.smoke_test.metadata.apply(lambda m: f"passed: job {m.namespace}/{m.name}")
    return out


VERSION_OUTPUTS = {"kserve": "kserve", "certManager": "cert_manager", "istio": "istio",
                   "gatewayApi": "gateway_api", "knative": "knative", "knativeServing": "knative_serving"}
"""What the next `up` compares its config with (settings/upgrades)."""
