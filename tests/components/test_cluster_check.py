"""The cluster check: the Kubernetes floor per mode and release, and what a layer the cluster
runs itself must hold. The template itself runs under the real engine (tests/integration)."""

from __future__ import annotations

import pytest

from components.cluster_check import CHART, ClusterCheckArgs, check_values, required_objects
from components.knative_layer import features_needed
from settings.config import Install, Layers
from settings.versions import kubernetes_floor


def args(mode="standard", waits=True, serving="1.21.1", **install) -> ClusterCheckArgs:
    return ClusterCheckArgs(mode=mode, install=Install(**install), layers=Layers(), knative_serving=serving,
                            gateway_api_minimum="1.2", waits=waits)


def test_the_chart_renders_nothing_of_its_own():
    assert (CHART / "Chart.yaml").is_file()
    assert [p.name for p in (CHART / "templates").iterdir()] == ["checks.yaml"]
    assert "kind:" not in (CHART / "templates" / "checks.yaml").read_text()


@pytest.mark.parametrize(("serving", "floor"), [("1.21.1", "1.33"), ("1.21", "1.33"), ("1.20.0", "1.32"),
                                                ("1.15.2", "1.32")])
def test_serverless_floor_is_knative_servings(serving, floor):
    minimum, key, why = kubernetes_floor("serverless", serving)
    assert minimum == floor
    assert key == ("versions.knativeServing" if floor == "1.33" else "mode")
    assert serving in why or floor == "1.32"


def test_standard_floor_is_the_stacks():
    assert kubernetes_floor("standard", "1.21.1")[:2] == ("1.32", "mode")


def test_a_knative_the_cluster_runs_sets_no_floor_of_its_own():
    assert check_values(args("serverless"))["kubernetes"]["minimum"] == "1.33"
    assert check_values(args("serverless", knative=False))["kubernetes"]["minimum"] == "1.32"


def test_a_stack_that_installs_every_layer_checks_no_object():
    assert required_objects(args("standard")) == []
    assert required_objects(args("serverless")) == []


def names(objects) -> set[tuple[str, str, str]]:
    return {(o["layer"], o["kind"], o["name"]) for o in objects}


def test_cert_manager_the_cluster_runs():
    objs = required_objects(args(cert_manager=False))
    assert {o["layer"] for o in objs} == {"certManager"}
    crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    assert {o["name"] for o in crds} == {"certificates.cert-manager.io", "issuers.cert-manager.io",
                                         "clusterissuers.cert-manager.io"}
    assert all(o["servedVersions"] == ["v1"] and o["conditions"] == ["Established"] for o in crds)
    webhook = next(o for o in objs if o["kind"] == "ValidatingWebhookConfiguration")
    assert webhook["caBundle"] is True
    assert {o["name"] for o in objs if o["kind"] == "Deployment"} == {
        "cert-manager", "cert-manager-webhook", "cert-manager-cainjector"}


def test_without_waits_only_presence_is_checked():
    """readiness skip: no pod runs, so no Deployment is Available and no CA bundle injected."""
    objs = required_objects(args(waits=False, cert_manager=False, istio=False, gateway_api=False))
    assert {o["kind"] for o in objs} == {"CustomResourceDefinition", "GatewayClass"}
    assert not [o for o in objs if o["kind"] == "GatewayClass" and o.get("conditions")]


def test_gateway_api_the_cluster_runs_must_be_recent_enough():
    objs = required_objects(args(gateway_api=False))
    assert names(objs) == {("gatewayApi", "CustomResourceDefinition", f"{k}.gateway.networking.k8s.io")
                           for k in ("gatewayclasses", "gateways", "httproutes")}
    assert {o["minimumBundleVersion"] for o in objs} == {"1.2.0"}


def test_istio_the_cluster_runs_serverless_needs_its_ingress_gateway():
    objs = required_objects(args("serverless", istio=False))
    assert ("istio", "Service", "istio-ingressgateway") in names(objs)
    deployments = {(o["namespace"], o["name"]) for o in objs if o["kind"] == "Deployment"}
    assert deployments == {("istio-system", "istiod"), ("istio-system", "istio-ingressgateway")}


def test_istio_and_gateway_api_the_cluster_runs_need_an_accepted_class():
    objs = required_objects(args(istio=False, gateway_api=False))
    classes = [o for o in objs if o["kind"] == "GatewayClass"]
    assert [o.get("conditions") for o in classes] == [None, ["Accepted"]]


def test_knative_the_cluster_runs():
    objs = required_objects(args("serverless", knative=False))
    assert ("knative", "CustomResourceDefinition", "services.serving.knative.dev") in names(objs)
    assert {o["namespace"] for o in objs if o["kind"] == "Deployment"} == {"knative-serving"}


def layer_types(run) -> set[str]:
    return {r.type.rsplit(":", 1)[-1] for r in run.regs.values() if r.type.startswith("kserve-stack:layers:")}


def test_layers_the_cluster_runs_are_not_registered(run_stack):
    run = run_stack("standard", install={"certManager": False, "istio": False, "gatewayApi": False})
    assert layer_types(run) == {"ClusterCheck", "CertManager", "KServeRelease", "GatewayAuth", "ModelService"}
    cert_manager = [r.name for r in run.regs.values() if r.layer == "CertManager" and r.custom]
    assert cert_manager == ["cert-manager-selfsigned-issuer"], "the stack's own issuer stays"
    check = run.named("cluster-check-chart")
    assert len(check.inputs["values"]["objects"]) >= 10
    assert run.outputs["installed_layers"] == []
    w = run.waits_for
    assert w(run.named("kserve-controller"), check) and w(run.named("kserve-gateway"), check)


def test_serverless_calls_the_gateway_where_the_cluster_keeps_it(run_stack):
    run = run_stack("serverless", install={"istio": False, "knative": False},
                    layers={"istio": {"namespace": "mesh", "ingressGateway": "public-gw"},
                            "knative": {"namespace": "serving"}})
    assert layer_types(run) == {"ClusterCheck", "CertManager", "KServeRelease", "GatewayAuth", "ModelService"}
    tokens = run.named("gateway-auth-tokens").inputs
    assert tokens["metadata"]["namespace"] == "mesh"
    assert tokens["spec"]["selector"] == {"matchLabels": {"istio": "public-gw"}}, "the name less istio-"
    ingress = run.named("model-predictor-ingress").inputs["spec"]["ingress"][0]["from"]
    assert {"kubernetes.io/metadata.name": "mesh"} in [p["namespaceSelector"]["matchLabels"] for p in ingress]
    assert {"kubernetes.io/metadata.name": "serving"} in [p["namespaceSelector"]["matchLabels"] for p in ingress]
    smoke = run.named("model-smoke-test").inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "http://public-gw.mesh.svc.cluster.local/v1/models/model:predict" in smoke
    gateway = run.named("kserve-controller").inputs["values"]["kserve"]["controller"]["gateway"]
    assert gateway["ingressGateway"]["gateway"] == "serving/knative-ingress-gateway"
    assert gateway["localGateway"] == {"gateway": "serving/knative-local-gateway",
                                       "gatewayService": "knative-local-gateway.mesh.svc.cluster.local"}
    assert run.outputs["installed_layers"] == ["certManager"]


def test_default_stacks_keep_the_charts_gateway_values(run_stack):
    gateway = run_stack("serverless").named("kserve-controller").inputs["values"]["kserve"]["controller"]["gateway"]
    assert "localGateway" not in gateway and "gateway" not in gateway["ingressGateway"]


def test_standard_names_the_class_the_cluster_has(run_stack):
    run = run_stack("standard", install={"gatewayApi": False, "istio": False},
                    layers={"gatewayApi": {"gatewayClass": "mesh-gw"}})
    assert run.named("kserve-gateway").inputs["spec"]["gatewayClassName"] == "mesh-gw"
    ingress = run.named("kserve-controller").inputs["values"]["kserve"]["controller"]["gateway"]["ingressGateway"]
    assert ingress["className"] == "mesh-gw"


def test_a_running_istiod_of_the_clusters_makes_the_class_itself(run_stack):
    """istiod makes class `istio` as soon as the Gateway API CRDs appear (Istio 1.27
    gatewayclass.go); a create of the stack's would meet it."""
    run = run_stack("standard", install={"istio": False})
    assert "gateway-api-crds" in {r.name for r in run.regs.values()}
    assert not run.of_type("GatewayClass")
    assert run_stack("standard").of_type("GatewayClass")


def test_layers_the_stack_installs_must_not_be_the_clusters_already():
    absent = check_values(args("standard"))["absent"]
    assert {(o["layer"], o["kind"], o["name"], o["ownerNamespace"]) for o in absent} == {
        ("certManager", "CustomResourceDefinition", "certificates.cert-manager.io", "cert-manager"),
        ("istio", "Deployment", "istiod", "istio-system"),
        ("gatewayApi", "CustomResourceDefinition", "gateways.gateway.networking.k8s.io", "kserve"),
    }
    serverless = check_values(args("serverless", istio=False))["absent"]
    assert {o["layer"] for o in serverless} == {"certManager", "knative"}
    assert check_values(args("serverless", cert_manager=False, istio=False, knative=False))["absent"] == []


def test_no_marker_is_something_destroy_leaves_behind():
    """Knative Serving's CRDs stay after `destroy` (README): a marker among them would refuse the
    next `up` of the same stack."""
    names = {o["name"] for o in check_values(args("serverless"))["absent"]}
    assert not [n for n in names if n.endswith(".knative.dev")]


def test_a_knative_the_cluster_runs_must_allow_the_models_affinity():
    objs = required_objects(ClusterCheckArgs(mode="serverless", install=Install(knative=False), layers=Layers(),
                                             knative_serving="1.21.1", gateway_api_minimum="1.2", waits=False,
                                             knative_features=features_needed(True, False, True)))
    [features] = [o for o in objs if o["kind"] == "ConfigMap"]
    assert (features["namespace"], features["name"]) == ("knative-serving", "config-features")
    assert features["data"] == {"kubernetes.podspec-affinity": "enabled", "kubernetes.podspec-tolerations": "enabled"}
    assert not [o for o in required_objects(args("serverless", knative=False)) if o["kind"] == "ConfigMap"]


def test_the_stack_says_when_the_model_shares_a_node(run_stack):
    values = run_stack("serverless", install={"knative": False}).named("cluster-check-chart").inputs["values"]
    assert [o["name"] for o in values["objects"] if o["kind"] == "ConfigMap"] == ["config-features"]
    uri = run_stack("serverless", install={"knative": False}, model={"storageUri": "gs://b/m"})
    assert not [o for o in uri.named("cluster-check-chart").inputs["values"]["objects"] if o["kind"] == "ConfigMap"]


def test_a_model_placed_by_node_selector_needs_the_flag_on_a_knative_the_cluster_runs(run_stack):
    model = {"name": "model", "storageUri": "s3://bucket/model", "nodeSelector": {"pool": "gpu"}}
    run = run_stack("serverless", install={"knative": False}, model=model)
    values = run.named("cluster-check-chart").inputs["values"]
    [features] = [o for o in values["objects"] if o["kind"] == "ConfigMap"]
    assert features["data"] == {"kubernetes.podspec-nodeselector": "enabled"}, "a storage URI shares no node"
