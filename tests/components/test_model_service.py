"""The InferenceService, its storage and the URLs, per model source and mode."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from components.model_service import (
    CLAIM_LABEL,
    DIGEST_ANNOTATION,
    HOST_PATH_ANNOTATION,
    ISVC_POD_LABEL,
    SERVING_LABEL,
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.joblib").write_bytes(b"weights-v1")
    (d / "metadata.json").write_text('{"sample": {"instances": ["a", "b"], "predictions": [1, 0]}}')
    return d


def model(**kw) -> dict:
    return {"name": "model", "namespace": "default", **kw}


def test_isvc_spec_from_the_shipped_stack(run_stack):
    isvc = run_stack("standard").one("InferenceService")
    assert isvc.inputs["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc.inputs["metadata"]["name"] == "model" and isvc.inputs["metadata"]["namespace"] == "default"
    predictor = isvc.inputs["spec"]["predictor"]
    assert set(predictor) == {"labels", "affinity", "minReplicas", "maxReplicas", "model"}, \
        "no legacy predictor.sklearn"
    m = predictor["model"]
    assert m["modelFormat"] == {"name": "sklearn"}
    assert m["runtime"] == "kserve-sklearnserver" and m["protocolVersion"] == "v1"
    assert re.fullmatch(r"pvc://model-model-store/model/[0-9a-f]{12}", m["storageUri"]), "a directory per version"
    assert m["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def test_standard_does_not_await_the_inference_service_itself(run_stack):
    """Raw mode's status.observedGeneration is the predictor Deployment's; the provider's waits
    compare it with the InferenceService's generation and would hang after a change that leaves
    the Deployment as it was. The serving gate and the smoke test gate instead."""
    annotations = run_stack("standard").one("InferenceService").inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/skipAwait"] == "true" and "pulumi.com/waitFor" not in annotations
    assert run_stack("standard").named("model-serving").inputs["metadata"]["annotations"][
        "pulumi.com/timeoutSeconds"] == "600", "the model's ready timeout moves to the serving gate"
    serverless = run_stack("serverless").one("InferenceService").inputs
    assert serverless["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert serverless["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "600", \
        "Knative mode's observedGeneration is the Knative Service's, which follows the InferenceService"
    assert SERVING_LABEL not in serverless["spec"]["predictor"]["labels"]


def test_standard_serving_gate_waits_for_a_ready_pod_of_the_new_version_alone(run_stack, model_dir):
    """A PodDisruptionBudget with minAvailable 0 over the new version's pods: its DisruptionAllowed
    condition is True exactly when one of them is Ready (kubernetes pkg/controller/disruption), and
    it blocks no eviction. A Service over the same pods, not awaited, is the smoke test's route to
    them."""
    def observe(**overrides):
        run = run_stack("standard", model=model(path=str(model_dir), **overrides))
        gate = run.named("model-serving")
        labels = run.one("InferenceService").inputs["spec"]["predictor"]["labels"]
        return run, gate, labels

    run, gate, labels = observe()
    selector = {ISVC_POD_LABEL: "model", SERVING_LABEL: labels[SERVING_LABEL]}
    assert gate.type == "kubernetes:policy/v1:PodDisruptionBudget" and run.waits_for(gate, run.named("model-copy"))
    assert not run.waits_for(gate, run.named("model-isvc")), "the two waits run side by side"
    assert gate.inputs["spec"] == {"minAvailable": 0, "selector": {"matchLabels": selector}}
    assert gate.inputs["metadata"]["name"] == f"model-v{labels[SERVING_LABEL]}"
    assert gate.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=DisruptionAllowed",
                                                      "pulumi.com/timeoutSeconds": "600"}
    route = run.named("model-serving-route")
    assert route.type == "kubernetes:core/v1:Service" and route.inputs["spec"]["selector"] == selector
    assert route.inputs["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]
    assert route.inputs["metadata"]["name"] == gate.inputs["metadata"]["name"]
    assert route.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}, \
        "a Service's wait passes on pods not scheduled yet: not the gate"
    assert run.waits_for(run.named("model-smoke-test"), gate) and run.waits_for(run.named("model-smoke-test"), route)

    assert observe(maxReplicas=3)[2] == labels, "replica counts change no pod: the same version"
    assert observe(resources={"limits": {"cpu": "2", "memory": "1Gi"}})[2] != labels
    (model_dir / "model.joblib").write_bytes(b"weights-v2")
    assert observe()[2] != labels, "a new model is a new version"
    assert [r.name for r in run_stack("serverless").of_type("core/v1:Service")] == ["gateway-service"]


def test_jobs_are_replaced_when_they_failed_once(run_stack):
    """A Job that failed once is replaced on the next `up` rather than re-awaited."""
    run = run_stack("standard")
    for name in ("model-copy", "model-smoke-test"):
        assert run.named(name).inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true", name
    skipped = run_stack("standard", readiness="skip").named("model-copy").inputs["metadata"]["annotations"]
    assert skipped == {"pulumi.com/skipAwait": "true"}


@pytest.mark.parametrize(("stack", "predict_url"), [
    ("standard", "http://model-default.example.com/v1/models/model:predict"),
    ("serverless", "http://model.default.example.com/v1/models/model:predict"),
])
def test_outputs(run_stack, stack, predict_url):
    out = run_stack(stack).outputs
    assert out["mode"] == stack
    assert out["predict_url"] == predict_url
    internal = {"standard": "http://kserve-ingress-gateway-istio.kserve.svc.cluster.local",
                "serverless": "http://model-predictor.default.svc.cluster.local"}[stack]
    assert out["internal_predict_url"] == f"{internal}/v1/models/model:predict"
    assert out["gateway_address"] == "192.0.2.10"
    host = predict_url.split("/")[2]
    assert f"-H 'Host: {host}'" in out["curl"]
    assert "http://192.0.2.10/v1/models/model:predict" in out["curl"]
    assert '{"instances":["sparrow","elephant","sunflower"]}' in out["curl"]


def test_gateway_service_read_per_mode(run_stack):
    std = [r for r in run_stack("standard").of_type("core/v1:Service") if r.read]
    srv = [r for r in run_stack("serverless").of_type("core/v1:Service") if r.read]
    assert [r.name for r in std + srv] == ["gateway-service", "gateway-service"]


def test_v2_protocol_picks_what_kserve_picks_unless_a_runtime_is_named(run_stack, model_dir):
    """MLServer serves sklearn over v2 at priority 2 (the sklearn server at 1); the choice is
    written into the InferenceService, with the model class MLServer loads it with."""
    run = run_stack("standard", model=model(path=str(model_dir), protocol="v2"))
    isvc = run.one("InferenceService").inputs
    m = isvc["spec"]["predictor"]["model"]
    assert m["protocolVersion"] == "v2" and m["runtime"] == "kserve-mlserver"
    assert isvc["metadata"]["labels"] == {"modelClass": "mlserver_sklearn.SKLearnModel"}
    assert run.outputs["predict_url"] == "http://model-default.example.com/v2/models/model/infer"
    kept = run_stack("standard", model=model(path=str(model_dir), protocol="v2", runtime="kserve-sklearnserver"))
    isvc = kept.one("InferenceService").inputs
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "kserve-sklearnserver"
    assert "labels" not in isvc["metadata"]


def test_path_source_copies_files_through_a_configmap(run_stack, model_dir):
    run = run_stack("standard", model=model(path=str(model_dir)))
    [files] = [r for r in run.of_type("core/v1:ConfigMap") if not r.read]
    assert base64.b64decode(files.inputs["binaryData"]["model.joblib"]) == b"weights-v1"
    job = run.named("model-copy")
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37.0"
    script = container["command"][-1]
    version = run.one("InferenceService").inputs["spec"]["predictor"]["model"]["storageUri"].rsplit("/", 1)[-1]
    assert f"base=/mnt/models/model; version={version}" in script and "cp -rL /src/. " in script
    affinity = job.inputs["spec"]["template"]["spec"]["affinity"]["podAffinity"]
    [term] = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": {"serving.kserve.io/inferenceservice": "model"}}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert "ttlSecondsAfterFinished" not in job.inputs["spec"]
    claim = run.one("PersistentVolumeClaim")
    assert claim.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert not run.of_type("core/v1:PersistentVolume")


def test_model_change_renames_the_copy_job_and_rolls_the_predictor(run_stack, model_dir):
    def observe():
        run = run_stack("standard", model=model(path=str(model_dir)))
        return (run.named("model-copy").inputs["metadata"]["name"],
                run.one("InferenceService").inputs["metadata"]["annotations"][DIGEST_ANNOTATION])

    first = observe()
    assert observe() == first, "the same files give the same names"
    (model_dir / "model.joblib").write_bytes(b"weights-v2")
    second = observe()
    assert second[0] != first[0] and second[1] != first[1]


def test_smoke_test_is_a_job_calling_the_gateway_service_in_the_cluster(run_stack, model_dir):
    run = run_stack("standard", model=model(path=str(model_dir)), smokeTest="on", imageRegistry="mirror.local")
    job = run.named("model-smoke-test")
    assert job.type == "kubernetes:batch/v1:Job" and run.waits_for(job, run.named("model-isvc"))
    pod = job.inputs["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "mirror.local/busybox:1.37.0"
    script = container["command"][-1]
    serving = run.named("model-serving").inputs["metadata"]["name"]
    new_pods, gateway = script.split("\nset -u\n")
    assert f"url=http://{serving}.default.svc.cluster.local/v1/models/model:predict;" in new_pods
    assert """expected='"predictions":[1,0]'""" in new_pods, "the answer, from the new version's pods"
    assert "url=http://kserve-ingress-gateway-istio.kserve.svc.cluster.local/v1/models/model:predict;" in gateway
    assert """expected='"predictions":'""" in gateway, "the route: old pods may still answer mid-rollout"
    assert "host=model-default.example.com;" in script
    assert """body='{"instances":["a","b"]}'""" in script
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert job.inputs["spec"]["backoffLimit"] == 0


def test_serverless_smoke_test_calls_the_istio_ingress_gateway(run_stack):
    script = run_stack("serverless").named("model-smoke-test").inputs["spec"]["template"]["spec"][
        "containers"][0]["command"][-1]
    assert "url=http://istio-ingressgateway.istio-system.svc.cluster.local/v1/models/model:predict;" in script
    assert "host=model.default.example.com;" in script


def test_a_new_model_or_inference_service_gives_a_new_smoke_test_job(run_stack, model_dir):
    def job_name(**overrides) -> str:
        return run_stack("standard", model=model(path=str(model_dir), **overrides)).named(
            "model-smoke-test").inputs["metadata"]["name"]

    first = job_name()
    assert job_name() == first, "nothing changed, no new call"
    assert job_name(resources={"limits": {"cpu": "2", "memory": "1Gi"}}) != first
    (model_dir / "model.joblib").write_bytes(b"weights-v2")
    assert job_name() != first


def test_smoke_test_off_and_skipped_waits(run_stack):
    assert not [j for j in run_stack("standard", smokeTest="off").of_type("batch/v1:Job") if "smoke" in j.name]
    skipped = run_stack("standard", readiness="skip")
    assert not [j for j in skipped.of_type("batch/v1:Job") if "smoke" in j.name]
    assert not skipped.of_type("core/v1:Service")
    assert skipped.outputs["gateway_address"] is None
    assert skipped.outputs["curl"].startswith("kubectl -n kserve port-forward svc/kserve-ingress-gateway-istio 8080:80")


def test_image_source(run_stack):
    run = run_stack("standard", model=model(image="registry.local/model:1.0", imagePath="/app/model"))
    container = run.named("model-copy").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/model:1.0"
    assert "cp -rL /app/model/. " in container["command"][-1]
    assert not [r for r in run.of_type("core/v1:ConfigMap") if not r.read]


def test_storage_uri_source_needs_no_pvc(run_stack):
    run = run_stack("standard", model=model(storageUri="s3://bucket/models/iris"))
    assert run.one("InferenceService").inputs["spec"]["predictor"]["model"]["storageUri"] == "s3://bucket/models/iris"
    for kind in ("PersistentVolumeClaim", "core/v1:ConfigMap"):
        assert not [r for r in run.of_type(kind) if not r.read], kind
    assert [j.name for j in run.of_type("batch/v1:Job")] == ["model-smoke-test"]


def test_host_path_volume_is_explicit(run_stack, model_dir):
    run = run_stack("standard", model=model(path=str(model_dir), storage={"hostPath": "/srv/models", "size": "2Gi",
                                                                          "node": "node-a"}))
    pv = run.one("core/v1:PersistentVolume")
    assert pv.inputs["metadata"]["annotations"][HOST_PATH_ANNOTATION] == "enabled"
    assert pv.inputs["spec"]["hostPath"]["path"] == "/srv/models"
    assert pv.inputs["spec"]["claimRef"] == {"namespace": "default", "name": "model-model-store"}
    claim = run.one("PersistentVolumeClaim")
    assert claim.inputs["spec"]["volumeName"] == pv.inputs["metadata"]["name"]
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert run.waits_for(claim, pv)


def test_existing_namespace_is_left_alone(run_stack, model_dir):
    run = run_stack("standard", model=model(namespace="team-a", path=str(model_dir), createNamespace=False))
    assert not [r for r in run.of_type("core/v1:Namespace") if "ModelNamespaces" in r.urn]
    assert run.one("InferenceService").inputs["metadata"]["namespace"] == "team-a"


def test_other_namespace_is_created(run_stack, model_dir):
    run = run_stack("standard", model=model(name="iris", namespace="ml", path=str(model_dir)))
    ns = [r for r in run.of_type("core/v1:Namespace") if r.name == "model-namespaces-ml"]
    assert ns and ns[0].inputs["metadata"]["name"] == "ml"
    [(alias, parent)] = ns[0].aliases
    assert alias == "iris-namespace" and parent.endswith("::kserve-stack:layers:ModelService::iris"), \
        "a one-model stack made its namespace as <model>-namespace under its ModelService: carried over, not deleted"
    assert run.outputs["predict_url"] == "http://iris-ml.example.com/v1/models/iris:predict"
    assert run.waits_for(run.named("iris-claim"), ns[0])


def test_v2_curl_sends_a_bytes_tensor(run_stack, model_dir):
    import json

    curl = run_stack("standard", model=model(path=str(model_dir), protocol="v2")).outputs["curl"]
    body = json.loads(curl.split("-d '", 1)[1].split("'", 1)[0])
    assert body["inputs"][0]["datatype"] == "BYTES"
    assert body["inputs"][0]["data"] == ["a", "b"], "the model's own sample, as the smoke test sends it"


def pod_template(job) -> dict:
    return job.inputs["spec"]["template"]


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_every_pod_that_mounts_a_read_write_once_claim_shares_its_node(run_stack, stack):
    """The copy Job's pod and every predictor pod (replica, rollout, Knative revision) carry the
    claim's label and require a pod carrying it on their node; the first such pod matches its own
    term, which the scheduler takes as satisfied when nothing else matches."""
    run = run_stack(stack)
    copy_pod = pod_template(run.named("model-copy"))
    predictor = run.one("InferenceService").inputs["spec"]["predictor"]
    assert predictor["affinity"] == copy_pod["spec"]["affinity"], "one rule for every pod on the claim"
    [term] = predictor["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {CLAIM_LABEL: "model-model-store"}}}
    for labels in (copy_pod["metadata"]["labels"], predictor["labels"]):
        assert term["labelSelector"]["matchLabels"].items() <= labels.items(), "each pod matches its own term"
    [preferred] = predictor["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["labelSelector"] == {"matchLabels": {ISVC_POD_LABEL: "model"}}, \
        "predictor pods made before the claim label still draw the copy Job and the new pods to their node"
    assert run.one("PersistentVolumeClaim").inputs["metadata"]["name"] == "model-model-store"


def test_read_write_many_and_storage_uri_models_are_not_pinned(run_stack, model_dir):
    rwx = run_stack("standard", model=model(path=str(model_dir), storage={"accessMode": "ReadWriteMany"}))
    predictor = rwx.one("InferenceService").inputs["spec"]["predictor"]
    assert "affinity" not in predictor and CLAIM_LABEL not in predictor["labels"]
    copy_pod = pod_template(rwx.named("model-copy"))
    assert "affinity" not in copy_pod["spec"] and CLAIM_LABEL not in copy_pod["metadata"]["labels"]
    uri = run_stack("standard", model=model(storageUri="s3://bucket/models/iris"))
    assert "affinity" not in uri.one("InferenceService").inputs["spec"]["predictor"]


def test_host_path_volume_is_pinned_to_its_node(run_stack, model_dir):
    """The PV's node affinity makes the scheduler put every pod that uses the claim on that node."""
    run = run_stack("standard", model=model(path=str(model_dir), storage={"hostPath": "/srv/models",
                                                                          "node": "worker-1"}))
    pv = run.one("core/v1:PersistentVolume")
    assert pv.inputs["spec"]["nodeAffinity"] == {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-1"]}]}]}}


def test_copy_job_writes_as_the_runtimes_user_on_shared_claims(run_stack, model_dir):
    """A ReadWriteMany export may squash root: the Job writes as uid 1000, the user
    kserve/sklearnserver runs as, with fsGroup for volumes that honour it."""
    for storage in ({"accessMode": "ReadWriteMany"}, {"accessMode": "ReadWriteMany", "storageClass": "nfs"}):
        run = run_stack("standard", model=model(path=str(model_dir), storage=storage))
        assert pod_template(run.named("model-copy"))["spec"]["securityContext"] == {
            "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True}


def test_copy_job_stays_root_where_the_claim_is_one_nodes(run_stack, model_dir):
    """ReadWriteOnce and hostPath: no root squash there, a hostPath or local-path directory gets no
    fsGroup, and a claim an earlier (root) Job wrote must keep taking new versions."""
    for run in (run_stack("standard"), run_stack("serverless"),
                run_stack("standard", model=model(image="registry.local/model:1.0")),
                run_stack("standard", model=model(path=str(model_dir), storage={"hostPath": "/srv/m", "node": "n1"}))):
        assert "securityContext" not in pod_template(run.named("model-copy"))["spec"]


@pytest.mark.parametrize("job", ["model-copy", "model-smoke-test"])
def test_jobs_opt_out_of_the_istio_sidecar(run_stack, job):
    """In an injected namespace a Job whose pod has a sidecar never completes. Istio 1.27 reads the
    label first and then the annotation, and its webhook's objectSelector skips the label."""
    metadata = pod_template(run_stack("standard").named(job))["metadata"]
    assert metadata["labels"]["sidecar.istio.io/inject"] == "false"
    assert metadata["annotations"] == {"sidecar.istio.io/inject": "false"}


def test_a_model_keeps_its_resources_when_another_namespace_takes_its_name(run_stack, model_dir):
    """The one model was `model`; with a second `model` in another namespace both are named by
    namespace, and the deployed one's alias to `model` moves its resources instead of replacing
    them (the children follow their parent's alias)."""
    run = run_stack("standard", model={}, models=[
        model(namespace="ml", storageUri="s3://bucket/model"), model(path=str(model_dir))],
        deployed={"internal_predict_url": "http://model-predictor.default.svc.cluster.local/v1/models/model:predict"})
    services = {r.name: r for r in run.of_type("ModelService")}
    assert set(services) == {"default.model", "ml.model"}
    assert [name for name, _ in services["default.model"].aliases] == ["model"]
    assert not services["ml.model"].aliases, "only one resource may claim an alias"
    assert {r.inputs["metadata"]["namespace"] for r in run.of_type("InferenceService")} == {"default", "ml"}
