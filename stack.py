"""Composes the layers for a stack. Each edge here is a real readiness constraint; layers
without one (cert-manager, Gateway API CRDs, Istio base) install in parallel."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from components.cert_manager import SELF_SIGNED_ISSUER, CertManager, CertManagerArgs
from components.cluster_check import ClusterCheck, ClusterCheckArgs
from components.gateway_layer import GatewayLayer, GatewayLayerArgs
from components.istio_mesh import INGRESS_GATEWAY, IstioMesh, IstioMeshArgs
from components.istio_mesh import NAMESPACE as ISTIO_NAMESPACE
from components.knative_layer import KnativeLayer, KnativeLayerArgs
from components.kserve_release import (
    GATEWAY_SERVICE,
    KServeRelease,
    KServeReleaseArgs,
)
from components.kserve_release import (
    NAMESPACE as KSERVE_NAMESPACE,
)
from components.model_service import SAMPLE, ModelService, ModelServiceArgs, request_body
from settings import manifests
from settings.config import StackConfig, TlsIssuer
from settings.config.layers import INSTALL_KEYS, LAYER_MODES
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


def build(cfg: StackConfig, load_manifest: Loader = manifests.load) -> dict[str, Any]:
    """Registers every layer and returns the stack outputs. A layer the cluster already runs
    (`install.<layer>: false`) is not registered at all; the cluster check stands in for it."""
    waits, install, layers = cfg.waits, cfg.install, cfg.layers
    release = cfg.kserve
    check = ClusterCheck("cluster-check", ClusterCheckArgs(
        mode=cfg.mode, install=install, layers=layers, knative_serving=cfg.versions.knative_serving,
        gateway_api_minimum=release.compat.window("gatewayApi")[0], waits=waits,
        podspec_affinity=cfg.model.shares_a_node,
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
            profile=cfg.profile, after=after,
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
    model = ModelService(cfg.model.name, ModelServiceArgs(
        model=cfg.model, mode=cfg.mode, deployment_mode=release.deployment_mode(cfg.mode), domain=cfg.domain,
        waits=waits, gateway_service=gateway_service, smoke_test=cfg.smoke_test,
        image_registry=cfg.image_registry, kserve=[*kserve.ready, *istio_ready], after=after,
    ))
    outputs: dict[str, Any] = {
        "mode": cfg.mode,
        "kserve_version": release.version,
        "versions": {key: getattr(cfg.versions, attr) for key, attr in VERSION_OUTPUTS.items()},
        "kept_crds": list(cfg.kept_crds),
        "installed_layers": [key for key, attr in INSTALL_KEYS.items() if getattr(install, attr)
                             and LAYER_MODES.get(key, cfg.mode) == cfg.mode],
        "predict_url": model.predict_url,
        "internal_predict_url": model.internal_predict_url,
        "gateway_address": model.gateway_address,
        "gateway_service": "/".join(gateway_service),
        "curl": model.gateway_address.apply(lambda address: curl_command(cfg, model, gateway_service, address)),
    }
    if model.smoke_test is not None:
        outputs["smoke_test"] = model.smoke_test.metadata.apply(lambda m: f"passed: job {m.namespace}/{m.name}")
    return outputs


VERSION_OUTPUTS = {"kserve": "kserve", "certManager": "cert_manager", "istio": "istio",
                   "gatewayApi": "gateway_api", "knative": "knative", "knativeServing": "knative_serving"}
"""What the next `up` compares its config with (settings/upgrades)."""


def curl_command(cfg: StackConfig, model: ModelService, gateway_service: tuple[str, str], address: str | None) -> str:
    """A ready-to-run call through the gateway, the Host header picking the model's route; through
    a port-forward when the gateway has no load-balancer address (kind, minikube, bare metal), on
    the stack's `kubernetes:context`: the cluster the provider deployed to, not kubectl's current one."""
    body = request_body(cfg.model, SAMPLE)
    call = f"curl -sS -H 'Host: {model.host}' -H 'Content-Type: application/json' -d '{body}'"
    if address:
        return f"{call} {model.predict_url.replace(model.host, address, 1)}"
    ns, svc = gateway_service
    context = pulumi.Config("kubernetes").get("context")
    kubectl = f"kubectl --context {shlex.quote(context)}" if context else "kubectl"
    local = model.predict_url.replace(model.host, "127.0.0.1:8080", 1)
    return f"{kubectl} -n {ns} port-forward svc/{svc} 8080:80 & sleep 2; {call} {local}; kill %1"
