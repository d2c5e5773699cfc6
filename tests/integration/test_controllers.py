"""The stand-in for the upstream controllers writes nothing before its preconditions hold, and
each write `delay` seconds after they do: the readiness tests prove an order only if it does."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.integration.controllers import UpstreamControllers, predictor_deployment, raw_predictor_ready

DELAY = 1.0
CERT_MANAGER = ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook")


def deployment(namespace: str, name: str) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "example.invalid/x:1"}]}}}}


def certificate(name: str) -> dict:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": name, "namespace": "kserve"},
            "spec": {"secretName": f"{name}-tls", "dnsNames": ["a.example.com"],
                     "issuerRef": {"kind": "ClusterIssuer", "name": "selfsigned"}}}


def wait_for(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_writes_follow_their_preconditions_after_the_delay(kwok_cluster, upstream_crds):
    from kubernetes import client

    api = kwok_cluster.client()
    ext, core, apps = client.ApiextensionsV1Api(api), client.CoreV1Api(api), client.AppsV1Api(api)
    custom, admission = client.CustomObjectsApi(api), client.AdmissionregistrationV1Api(api)
    files = [*(upstream_crds / "cert-manager").glob("*.yaml"),
             *(upstream_crds / "gateway-api" / f"gateway.networking.k8s.io_{k}.yaml" for k in ("gateways",
                                                                                                "gatewayclasses"))]
    for path in files:
        for crd in yaml.safe_load_all(path.read_text()):
            if crd:
                ext.create_custom_resource_definition(crd)
    for ns in ("cert-manager", "istio-system", "kserve"):
        core.create_namespace({"metadata": {"name": ns}})
    wait_for(lambda: all(_established(ext, crd["metadata"]["name"]) for path in files
                         for crd in yaml.safe_load_all(path.read_text()) if crd))

    controllers = UpstreamControllers(kwok_cluster.client(), delay=DELAY, ca_bundle=kwok_cluster.ca_bundle(),
                                      never_ready=frozenset({"Certificate kserve/never"}))
    with controllers:
        admission.create_validating_webhook_configuration({
            "metadata": {"name": "cert-manager-webhook", "annotations": {
                "cert-manager.io/inject-ca-from-secret": "cert-manager/cert-manager-webhook-ca"}},
            "webhooks": [{"name": "webhook.cert-manager.io", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "clientConfig": {"service": {"name": "cert-manager-webhook", "namespace": "cert-manager"}}}],
        })
        custom.create_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", {
            "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "selfsigned"},
            "spec": {"selfSigned": {}}})
        for name in ("gateway", "never"):
            custom.create_namespaced_custom_object("cert-manager.io", "v1", "kserve", "certificates",
                                                   certificate(name))
        custom.create_cluster_custom_object("gateway.networking.k8s.io", "v1", "gatewayclasses", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "istio"},
            "spec": {"controllerName": "istio.io/gateway-controller"}})
        custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", "kserve", "gateways", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "kserve-ingress-gateway", "namespace": "kserve"},
            "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})
        time.sleep(DELAY + 2)
        assert controllers.writes == [], "written before any controller Deployment was Available"

        for name in CERT_MANAGER:
            apps.create_namespaced_deployment("cert-manager", deployment("cert-manager", name))
        apps.create_namespaced_deployment("istio-system", deployment("istio-system", "istiod"))
        targets = ("ValidatingWebhookConfiguration cert-manager-webhook", "ClusterIssuer selfsigned",
                   "Secret kserve/gateway-tls", "Certificate kserve/gateway",
                   "Service kserve/kserve-ingress-gateway-istio", "Gateway kserve/kserve-ingress-gateway")
        writes = wait_for(lambda: [controllers.written(t) for t in targets] if all(map(controllers.written, targets))
                          else None)
        time.sleep(DELAY + 1)

    by_target = dict(zip(targets, writes, strict=True))
    issuer, cert = by_target["ClusterIssuer selfsigned"], by_target["Certificate kserve/gateway"]
    assert cert.at - issuer.at >= DELAY, "the Certificate was issued before the delay after its issuer was Ready"
    assert by_target["Secret kserve/gateway-tls"].at <= cert.at, "Ready before its Secret"
    assert controllers.written("Certificate kserve/never") is None
    assert len([w for w in controllers.writes if w.target == "ClusterIssuer selfsigned"]) == 1, "written twice"

    webhook = admission.read_validating_webhook_configuration("cert-manager-webhook")
    assert webhook.webhooks[0].client_config.ca_bundle
    gateway = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", "kserve", "gateways",
                                                  "kserve-ingress-gateway")
    conditions = {c["type"]: c["status"] for c in gateway["status"]["conditions"]}
    assert conditions == {"Accepted": "True", "Programmed": "False"}, "a load-balancer address stays pending"
    service = core.read_namespaced_service("kserve-ingress-gateway-istio", "kserve")
    assert service.spec.type == "LoadBalancer"
    assert [o.kind for o in service.metadata.owner_references] == ["Gateway"], "removed with its Gateway"


def _established(ext, name: str) -> bool:
    crd = ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(("conditions", "ready"), [
    ([condition("Available", "True"), condition("Progressing", "True", "NewReplicaSetAvailable")], "True"),
    ([condition("Available", "True"), condition("Progressing", "True", "ReplicaSetUpdated")], "Unknown"),
    ([condition("Available", "True"),
      condition("Progressing", "False", "ProgressDeadlineExceeded", "timed out")], "False"),
    ([condition("Available", "False", "MinimumReplicasUnavailable"),
      condition("Progressing", "True", "NewReplicaSetAvailable")], "False"),
    ([condition("Available", "True"), condition("Progressing", "True", "NewReplicaSetAvailable"),
      condition("ReplicaFailure", "True", "FailedCreate")], "False"),
    ([], "False"),
])
def test_raw_predictor_ready_follows_propagate_raw_status(conditions, ready):
    """PredictorReady from the predictor Deployment's conditions, case by case as kserve's
    PropagateRawStatus derives it."""
    assert raw_predictor_ready({"conditions": conditions}) == ready


def test_predictor_deployment_carries_what_kserve_puts_on_the_pods():
    isvc = {"metadata": {"name": "m", "namespace": "ns", "uid": "u"},
            "spec": {"predictor": {"labels": {"team": "a"}, "minReplicas": 2, "maxReplicas": 5, "model": {
                "runtime": "kserve-sklearnserver", "storageUri": "pvc://c/m/1",
                "resources": {"limits": {"cpu": "1"}}}}}}
    deploy = predictor_deployment(isvc)
    pod = deploy["spec"]["template"]
    assert deploy["metadata"]["name"] == "m-predictor" and deploy["spec"]["replicas"] == 2
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == "m"
    assert pod["spec"]["initContainers"][0]["args"] == ["pvc://c/m/1", "/mnt/models"]
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    scaled = {**isvc, "spec": {"predictor": {**isvc["spec"]["predictor"], "maxReplicas": 9}}}
    assert predictor_deployment(scaled) == deploy, "maxReplicas reaches only the HPA"
