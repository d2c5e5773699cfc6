"""The model: its files on a PVC (or a storage URI), an InferenceService, and the URLs to call it."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import registry_image
from components.readiness import SKIP_AWAIT, await_annotations, job_annotations
from settings.config import ImageSource, ModelConfig, PathSource, UriSource
from settings.versions import IMAGES, Mode

MOUNT = "/mnt/models"
HOST_PATH_ANNOTATION = "kserve-stack/host-path"
DIGEST_ANNOTATION = "kserve-stack/model-digest"
MANUAL_STORAGE_CLASS = "kserve-stack-manual"
SAMPLE = ["sparrow", "elephant", "sunflower"]
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
"""KServe labels an InferenceService's pods with its name."""
SERVING_LABEL = "kserve-stack/serving"
"""Standard mode: the predictor pods' spec version, so the new pods can be selected alone."""
CLAIM_LABEL = "kserve-stack/model-store"
"""The ReadWriteOnce claim a pod mounts (`claim_affinity`)."""
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
"""A Job's pod never completes while an Istio sidecar runs beside it. Istio 1.27 honours the label
and the annotation, the label first (pkg/kube/inject/inject.go, injectRequired), and istiod's
injection webhook is not even called for a pod labelled "false" (its objectSelector,
manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml)."""
RUNTIME_USER = 1000
"""The user kserve/sklearnserver runs as (kserve v0.20.0 python/sklearn.Dockerfile: `useradd kserve
-u 1000`, `USER 1000`); the predictor only reads, so any user's world-readable files serve."""
PREDICTOR_PORT = 8080
"""The port KServe's predictor container serves on (its `<name>-predictor` Service maps 80 to it)."""
RAW_MODE_WAIT = {SKIP_AWAIT: "true"}
"""Standard mode's InferenceService is not awaited itself. In raw mode KServe copies the predictor
*Deployment's* observedGeneration into the InferenceService status (kserve
pkg/apis/serving/v1beta1/inference_service_status.go, PropagateRawStatus), and a change that leaves
the Deployment as it was (`maxReplicas` reaches only the HPA) keeps it below the InferenceService's
generation for good. The provider's `condition=` and `jsonpath=` waits both refuse a status whose
observedGeneration is behind (pulumi-kubernetes provider/pkg/await/condition kubectl.go and, in
the 4.25 build, jsonpath.go), so either would hang every later `up`. The serving gate (a Ready pod
of the new version, `_serving_gate`) and the smoke test (its answer, and the route through the
gateway) are the gates instead."""
SMOKE_TEST_SECONDS = 180
"""How long the smoke test keeps calling: the route may take a moment after the model is Ready."""
JOB_RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}


@dataclass(frozen=True)
class ModelServiceArgs:
    model: ModelConfig
    mode: Mode
    deployment_mode: str
    """The KServe version's own string for the mode (Standard/Knative or RawDeployment/Serverless)."""
    domain: str
    waits: bool
    gateway_service: tuple[str, str]
    """(namespace, name) of the ingress gateway's Service: the smoke test calls it in the
    cluster, and its load-balancer address, when it has one, is an output."""
    smoke_test: str = "auto"
    image_registry: str | None = None
    kserve: Sequence[pulumi.Resource] = ()
    after: Sequence[pulumi.Resource] = ()
    """The cluster check: nothing of the model is written before the cluster passed it."""
    """The controller, runtimes and ingress must serve before the InferenceService."""


def model_digest(model: ModelConfig) -> str:
    """Changes whenever the served bytes may change, so the copy Job and the predictor roll."""
    h = hashlib.sha256()
    source = model.source
    if isinstance(source, PathSource):
        for f in source.files:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    elif isinstance(source, ImageSource):
        h.update(f"{source.image}\0{source.path}".encode())
    else:
        h.update(source.uri.encode())
    return h.hexdigest()


def host(model: ModelConfig, mode: Mode, domain: str) -> str:
    """KServe's default domain templates: Gateway API `<name>-<ns>.<domain>`, Knative `<name>.<ns>.<domain>`."""
    sep = "-" if mode == "standard" else "."
    return f"{model.name}{sep}{model.namespace}.{domain}"


def predict_path(model: ModelConfig) -> str:
    if model.protocol == "v2":
        return f"/v2/models/{model.name}/infer"
    return f"/v1/models/{model.name}:predict"


def sample(model: ModelConfig) -> tuple[list[str], list[int] | None]:
    """The words to send and the answer to expect, from the model's metadata when it has one."""
    if isinstance(model.source, PathSource):
        meta = next((f for f in model.source.files if f.name == "metadata.json"), None)
        if meta is not None:
            data = json.loads(meta.read_text())
            smoke = data.get("sample") or {}
            if smoke.get("instances"):
                return list(smoke["instances"]), smoke.get("predictions")
    return SAMPLE, None


def serving_version(model: ModelConfig, storage_uri: str) -> str:
    """Changes whenever the predictor's pods must change (model version, runtime, resources), and
    not for replica counts, which change no pod."""
    spec = inference_service_spec(model, storage_uri)["predictor"]["model"]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def inference_service_spec(model: ModelConfig, storage_uri: str, labels: dict[str, str] | None = None,
                           affinity: dict | None = None) -> dict:
    """`affinity` sits on the predictor itself: v1beta1 PredictorSpec embeds a PodSpec."""
    return {
        "predictor": {
            **({"labels": labels} if labels else {}),
            **({"affinity": affinity} if affinity else {}),
            "minReplicas": model.min_replicas,
            "maxReplicas": model.max_replicas,
            "model": {
                "modelFormat": {"name": model.format},
                "protocolVersion": model.protocol,
                "runtime": model.runtime,
                "storageUri": storage_uri,
                "resources": model.resources,
            },
        },
    }


def claim_affinity(model: ModelConfig, claim_name: str) -> dict | None:
    """A ReadWriteOnce claim mounts on one node at a time, so every pod that mounts it (the copy
    Job's; every predictor replica, rollout and Knative revision) carries `CLAIM_LABEL` and needs a
    pod carrying it on its node. The first one goes anywhere: when no pod matches the term, a pod
    that matches its own term passes (kubernetes v1.34 pkg/scheduler/framework/plugins/
    interpodaffinity/filtering.go, satisfyPodAffinity). A finished pod no longer counts (the
    scheduler watches non-terminal pods only: pkg/scheduler/scheduler.go, newPodInformer) and no
    longer holds the volume (attach-detach util.DetermineVolumeAction), so the finished copy Job
    pins nothing. A pod on a lost node counts until it is deleted, as the node's volume stays
    attached until then. The preferred term finds predictor pods made before the label existed."""
    if not model.shares_a_node:
        return None
    return {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {CLAIM_LABEL: claim_name}}},
        ],
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {ISVC_POD_LABEL: model.name}}},
        }],
    }}


def copy_security(model: ModelConfig) -> k8s.core.v1.PodSecurityContextArgs | None:
    """On a ReadWriteMany claim (NFS and the like, where exports squash root) the copy Job writes as
    the runtime's user, with fsGroup for the volumes that honour it. Elsewhere it stays root: a
    hostPath or local-path directory gets no fsGroup (the kubelet makes it as root, mode 0755), and
    claims an earlier root Job wrote must keep taking new versions."""
    if model.storage.host_path or model.storage.access_mode != "ReadWriteMany":
        return None
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_user=RUNTIME_USER, run_as_group=RUNTIME_USER, fs_group=RUNTIME_USER, run_as_non_root=True,
    )


KEEP_VERSIONS = 3
"""Model versions kept on the claim: the new one, the one being served until the predictor
rolls, and one more to roll back to without copying."""


def version_of(digest: str) -> str:
    return digest[:12]


def copy_script(base: str, version: str, source_dir: str, keep: int = KEEP_VERSIONS) -> str:
    """Copy a model version into its own directory `<base>/<version>`, never into the one being
    served: into a scratch directory first, then renamed into place, so the predictor only ever
    sees a complete version. A version already there (a rollback) is left as it is. The oldest
    versions beyond `keep` are removed; the predictor serves one of the newest two. Run as a
    non-root user, a base another user wrote (a copy Job that ran as root, on a volume that takes
    no fsGroup) still serves the versions on it, and a new version fails saying so."""
    b, v, src = shlex.quote(base), shlex.quote(version), shlex.quote(source_dir.rstrip("/") + "/.")
    return "\n".join([
        "set -eu",
        f"base={b}; version={v}",
        'unwritable() { echo "$1 is not writable by uid $(id -u) (another user wrote it, e.g. a copy Job that ran as'
        ' root): make it writable for uid $(id -u), or use a new claim"; exit 1; }',
        'mkdir -p "$base" || unwritable "$(dirname "$base")"',
        'if [ -d "$base/$version" ]; then echo "version $version is already on the claim"; else',
        '  [ -w "$base" ] || unwritable "$base"',
        '  rm -rf "$base/.partial-$version"; mkdir "$base/.partial-$version"',
        f'  cp -rL {src} "$base/.partial-$version/"',
        '  mv "$base/.partial-$version" "$base/$version"',
        "fi",
        'if [ -w "$base" ]; then',
        '  touch "$base/$version"',
        f'  ls -1t "$base" | grep -vx "$version" | tail -n +{keep} | while read -r old; do',
        '    rm -rf "${base:?}/$old"',
        "  done",
        "fi",
        'ls -l "$base" "$base/$version"',
    ])


class ModelService(pulumi.ComponentResource):
    """An sklearn InferenceService, fed from a PVC filled by a copy Job, or from a storage URI."""

    namespace: k8s.core.v1.Namespace | None
    volume: k8s.core.v1.PersistentVolume | None
    claim: k8s.core.v1.PersistentVolumeClaim | None
    files: k8s.core.v1.ConfigMap | None
    copy_job: k8s.batch.v1.Job | None
    inference_service: k8s.apiextensions.CustomResource
    smoke_test: k8s.batch.v1.Job | None
    storage_uri: str
    protocol: str
    host: str
    predict_url: str
    internal_predict_url: str
    gateway_address: pulumi.Output[str | None]

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kserve-stack:layers:ModelService", name, None, opts)
        model = args.model
        ns = model.namespace
        digest = model_digest(model)
        self.namespace = None
        if ns != "default" and model.create_namespace:
            self.namespace = k8s.core.v1.Namespace(
                f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(name=ns),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
        in_ns = [self.namespace] if self.namespace else list(args.after)

        self.volume = self.claim = self.files = self.copy_job = None
        claim_labels: dict[str, str] = {}
        affinity = None
        if isinstance(model.source, UriSource):
            self.storage_uri = model.source.uri
            ready_inputs: list[pulumi.Resource] = in_ns
        else:
            claim_name = f"{model.name}-model-store"
            self.storage_uri = f"pvc://{claim_name}/{model.name}/{version_of(digest)}"
            affinity = claim_affinity(model, claim_name)
            claim_labels = {CLAIM_LABEL: claim_name} if affinity else {}
            self._storage(name, args, claim_name, in_ns)
            self.copy_job = self._copy_job(name, args, claim_name, digest, claim_labels, affinity)
            ready_inputs = [self.copy_job]

        standard = args.mode == "standard"
        self.serving = serving_version(model, self.storage_uri)
        predictor_labels = {**claim_labels, **({SERVING_LABEL: self.serving} if standard else {})}
        isvc_spec = inference_service_spec(model, self.storage_uri, predictor_labels, affinity)
        wait = RAW_MODE_WAIT if standard and args.waits else await_annotations(args.waits, "condition=Ready",
                                                                                 model.ready_timeout)
        self.inference_service = k8s.apiextensions.CustomResource(
            f"{name}-isvc",
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata={
                "name": model.name,
                "namespace": ns,
                "annotations": {
                    "serving.kserve.io/deploymentMode": args.deployment_mode,
                    DIGEST_ANNOTATION: digest[:16],
                    **wait,
                },
            },
            spec=isvc_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*ready_inputs, *args.kserve]),
        )
        self._isvc_inputs = [*ready_inputs, *args.kserve]

        self.protocol = model.protocol
        self.host = host(model, args.mode, args.domain)
        path = predict_path(model)
        self.predict_url = f"http://{self.host}{path}"
        self.internal_predict_url = f"http://{model.name}-predictor.{ns}.svc.cluster.local{path}"
        self.serving_gate = self._serving_gate(name, args) if standard and args.waits else None
        self.serving_service = self._serving_route(name, args) if self.serving_gate else None
        self.gateway_address = self._gateway_address(name, args)
        self.smoke_test = self._smoke_test(name, args, json.dumps([digest, args.deployment_mode, isvc_spec]))
        self.register_outputs({
            "predict_url": self.predict_url,
            "internal_predict_url": self.internal_predict_url,
            "gateway_address": self.gateway_address,
        })

    def _storage(self, name: str, args: ModelServiceArgs, claim_name: str, in_ns: list[pulumi.Resource]) -> None:
        """A hostPath volume is one node's directory: its node affinity puts every pod that uses
        the claim on that node."""
        model, storage = args.model, args.model.storage
        storage_class = storage.storage_class
        volume_name = None
        if storage.host_path:
            storage_class = MANUAL_STORAGE_CLASS
            volume_name = f"{model.namespace}-{model.name}-model-store"
            self.volume = k8s.core.v1.PersistentVolume(
                f"{name}-volume",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=volume_name, annotations={HOST_PATH_ANNOTATION: "enabled"}),
                spec=k8s.core.v1.PersistentVolumeSpecArgs(
                    storage_class_name=storage_class,
                    capacity={"storage": storage.size},
                    access_modes=[storage.access_mode],
                    persistent_volume_reclaim_policy="Retain",
                    host_path=k8s.core.v1.HostPathVolumeSourceArgs(path=storage.host_path, type="DirectoryOrCreate"),
                    node_affinity=k8s.core.v1.VolumeNodeAffinityArgs(required=k8s.core.v1.NodeSelectorArgs(
                        node_selector_terms=[k8s.core.v1.NodeSelectorTermArgs(match_expressions=[
                            k8s.core.v1.NodeSelectorRequirementArgs(
                                key="kubernetes.io/hostname", operator="In", values=[storage.node]),
                        ])],
                    )) if storage.node else None,
                    claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=model.namespace, name=claim_name),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=claim_name, namespace=model.namespace,
                # Binding may wait for the first consumer: the copy Job completing is the gate.
                annotations={SKIP_AWAIT: "true"},
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=[storage.access_mode],
                storage_class_name=storage_class,
                volume_name=volume_name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*in_ns, *([self.volume] if self.volume else [])]),
        )
        if isinstance(model.source, PathSource):
            self.files = k8s.core.v1.ConfigMap(
                f"{name}-files",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{model.name}-model-files", namespace=model.namespace),
                binary_data={f.name: base64.b64encode(f.read_bytes()).decode() for f in model.source.files},
                opts=pulumi.ResourceOptions(parent=self, depends_on=in_ns),
            )

    def _copy_job(self, name: str, args: ModelServiceArgs, claim_name: str, digest: str,
                  labels: dict[str, str], affinity: dict | None) -> k8s.batch.v1.Job:
        model = args.model
        volumes = [k8s.core.v1.VolumeArgs(
            name="model-store",
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name),
        )]
        mounts = [k8s.core.v1.VolumeMountArgs(name="model-store", mount_path=MOUNT)]
        if isinstance(model.source, ImageSource):
            image, source_dir = model.source.image, model.source.path
        else:
            image, source_dir = registry_image(args.image_registry, IMAGES["busybox"]), "/src"
            volumes.append(k8s.core.v1.VolumeArgs(
                name="model-files", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{model.name}-model-files"),
            ))
            mounts.append(k8s.core.v1.VolumeMountArgs(name="model-files", mount_path="/src", read_only=True))
        depends = [r for r in (self.claim, self.files) if r is not None]
        return k8s.batch.v1.Job(
            f"{name}-copy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{model.name}-model-copy-{digest[:8]}", namespace=model.namespace,
                annotations=job_annotations(args.waits, timeout=600),
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=2,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**NO_SIDECAR, **labels}, annotations=NO_SIDECAR),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        affinity=affinity,
                        security_context=copy_security(model),
                        containers=[k8s.core.v1.ContainerArgs(
                            name="copy",
                            image=image,
                            command=["/bin/sh", "-c", copy_script(f"{MOUNT}/{model.name}", version_of(digest),
                                                                  source_dir)],
                            volume_mounts=mounts,
                            resources=k8s.core.v1.ResourceRequirementsArgs(**JOB_RESOURCES),
                        )],
                        volumes=volumes,
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    def _serving_gate(self, name: str, args: ModelServiceArgs) -> k8s.policy.v1.PodDisruptionBudget:
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
        after `model.readyTimeoutSeconds`, naming it. Its name carries the version, so a new
        version is a new wait. It waits for what the InferenceService waits for, not for the
        InferenceService: the two run side by side."""
        model = args.model
        return k8s.policy.v1.PodDisruptionBudget(
            f"{name}-serving",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.serving_service_name(model), namespace=model.namespace,
                annotations=await_annotations(args.waits, "condition=DisruptionAllowed", model.ready_timeout),
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=0,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self._serving_selector(model)),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._isvc_inputs),
        )

    def _serving_route(self, name: str, args: ModelServiceArgs) -> k8s.core.v1.Service:
        """The new version's pods alone, for the smoke test to call: mid-rollout the gateway may
        still reach an old pod. Not awaited: the PodDisruptionBudget is the gate."""
        model = args.model
        return k8s.core.v1.Service(
            f"{name}-serving-route",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.serving_service_name(model), namespace=model.namespace,
                annotations={SKIP_AWAIT: "true"},
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=self._serving_selector(model),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=PREDICTOR_PORT)],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._isvc_inputs),
        )

    def _serving_selector(self, model: ModelConfig) -> dict[str, str]:
        return {ISVC_POD_LABEL: model.name, SERVING_LABEL: self.serving}

    def serving_service_name(self, model: ModelConfig) -> str:
        return f"{model.name}-v{self.serving}"

    def _gateway_address(self, name: str, args: ModelServiceArgs) -> pulumi.Output[str | None]:
        """The gateway Service's load-balancer address, read once the model is Ready (the
        id stays unknown until then, so a first preview does not read a Service that is
        not there yet)."""
        if not args.waits:
            return pulumi.Output.from_input(None)
        ns, svc = args.gateway_service
        service = k8s.core.v1.Service.get(
            f"{name}-gateway-service",
            self.inference_service.id.apply(lambda _: f"{ns}/{svc}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

        def address(status) -> str | None:
            ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
            return next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), None)

        return service.status.apply(address)

    def _smoke_test(self, name: str, args: ModelServiceArgs, served: str) -> k8s.batch.v1.Job | None:
        """A Job in the model's namespace that calls the model through the gateway Service, as
        a client would, with the Host header that picks its route: it needs no load balancer, so
        it works on every cluster. `up` fails when the model does not answer as its metadata
        says it should; the Job's log holds the reply."""
        if args.smoke_test == "off" or not args.waits:
            return None
        model = args.model
        ns, svc = args.gateway_service
        words, expected = sample(model)
        path = predict_path(model)
        gateway = f"http://{svc}.{ns}.svc.cluster.local{path}"
        body = request_body(model, words)
        if self.serving_service is None:
            script = smoke_script(gateway, self.host, body, expected_fragment(model, expected))
        else:
            # Mid-rollout the gateway may still reach an old pod: the answer is checked from the
            # new pods, the route through the gateway by the protocol's result field.
            new_pods = f"http://{self.serving_service_name(model)}.{model.namespace}.svc.cluster.local{path}"
            script = "\n".join([
                smoke_script(new_pods, self.host, body, expected_fragment(model, expected)),
                smoke_script(gateway, self.host, body, expected_fragment(model, None)),
            ])
        return k8s.batch.v1.Job(
            f"{name}-smoke-test",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                # A new name, so a new call, whenever what is served may change (`served`: the
                # model's bytes and the InferenceService): Jobs cannot be updated.
                name=f"{model.name}-smoke-test-{hashlib.sha256((served + script).encode()).hexdigest()[:8]}",
                namespace=model.namespace,
                annotations=job_annotations(args.waits, timeout=SMOKE_TEST_SECONDS + 60),
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=0,
                active_deadline_seconds=SMOKE_TEST_SECONDS,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=NO_SIDECAR, annotations=NO_SIDECAR),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        containers=[k8s.core.v1.ContainerArgs(
                            name="predict",
                            image=registry_image(args.image_registry, IMAGES["busybox"]),
                            command=["/bin/sh", "-c", script],
                            # The pod's status then carries the reply for `kubectl describe`.
                            termination_message_policy="FallbackToLogsOnError",
                            resources=k8s.core.v1.ResourceRequirementsArgs(**JOB_RESOURCES),
                        )],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                self.inference_service, *(r for r in (self.serving_gate, self.serving_service) if r)]),
        )


def request_body(model: ModelConfig, words: list[str]) -> str:
    if model.protocol == "v2":
        data = {"inputs": [{"name": "input-0", "shape": [len(words)], "datatype": "BYTES", "data": words}]}
    else:
        data = {"instances": words}
    return json.dumps(data, separators=(",", ":"))


def expected_fragment(model: ModelConfig, predictions: list[int] | None) -> str:
    """What the reply, with white space removed, must contain: the predictions when the model's
    metadata gives them, else the protocol's result field."""
    field = '"data":' if model.protocol == "v2" else '"predictions":'
    return field + (json.dumps(predictions, separators=(",", ":")) if predictions is not None else "")


def smoke_script(url: str, host: str, body: str, expected: str, attempts: int = 60, pause: int = 2) -> str:
    """A POSIX shell script for busybox's applets (sh, wget, timeout, tail, tr, sleep): call until
    the gateway answers (bounded), then check the reply. `timeout`, not wget's `-T`, bounds a
    call: `-T` crashes some busybox builds. Scripts join: each falls through when its answer is right."""
    q = shlex.quote
    return "\n".join([
        "set -u",
        f"url={q(url)}; host={q(host)}; body={q(body)}; expected={q(expected)}",
        "i=0",
        'until reply=$(timeout 10 wget -O - --header "Host: $host" --header "Content-Type: application/json" '
        '--post-data "$body" "$url" 2>/tmp/wget.log); do',
        "  i=$((i + 1))",
        f"  if [ $i -ge {attempts} ]; then",
        '    echo "no answer from $url (Host: $host): $(tail -n 1 /tmp/wget.log)"; exit 1',
        "  fi",
        f"  sleep {pause}",
        "done",
        'case "$(printf %s "$reply" | tr -d \' \\n\\r\\t\')" in',
        '  *"$expected"*) echo "ok: $reply" ;;',
        '  *) echo "unexpected reply from $url: $reply (expected $expected)"; exit 1 ;;',
        "esac",
    ])
