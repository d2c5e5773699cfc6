"""What the upstream controllers would write, played by a test fixture, and only that.

The KWOK cluster runs no container, so cert-manager, istiod, the Knative operator and the
KServe controller never run. Their Deployments still turn Available (KWOK plays the
kubelet), and this fixture writes what each of those controllers would write once it
serves, to the same objects the real one writes:

- cert-manager's cainjector: the `caBundle` of every webhook configuration annotated
  `cert-manager.io/inject-ca-from(-secret)`, once cainjector is Available and the named
  Certificate is Ready (for the secret form: once cert-manager's webhook, which makes that
  secret, is Available);
- cert-manager: Issuers and ClusterIssuers `Ready` once cert-manager is Available; a
  Certificate's TLS Secret, then the Certificate `Ready`, once its issuer is Ready;
- istiod: for a Gateway whose class exists, the Service `<gateway>-istio` (owned by the
  Gateway) and the Gateway `Accepted`, `Programmed` unless a load-balancer address is
  pending, once istiod is Available;
- istiod's webhook controller: its validating webhooks' `caBundle` and `failurePolicy: Fail`,
  by an Update, once istiod is Available (istio 1.27.1 pkg/webhooks/validation/controller/
  controller.go, `updateValidatingWebhookConfiguration`);
- the Knative operator: KnativeServing `Ready` once the operator is Available;
- the KServe controller in Knative mode: InferenceService `Ready` and its URL, once the
  controller is Available, its runtime exists and the KnativeServing is Ready;
- the KServe controller in Standard (raw) mode, once it is Available and the runtime exists:
  the predictor Deployment `<name>-predictor` made from the InferenceService (its predictor
  labels on the pods, the storage URI as the storage initializer's argument, the resources,
  `minReplicas` replicas; `maxReplicas` reaches only the HPA, which is not played), updated
  whenever the InferenceService asks for other pods; and the status derived from that
  Deployment as kserve pkg/apis/serving/v1beta1/inference_service_status.go
  (`PropagateRawStatus`) derives it: `PredictorReady` from its Available, Progressing and
  ReplicaFailure conditions, `IngressReady` once the Gateway is Accepted, and
  `status.observedGeneration` copied from the *Deployment's*. The rollout itself is the real
  Deployment controller's, its pods KWOK's.

Each write happens `delay` seconds after its preconditions are first seen to hold, so a
benchmark can give every gate the same cost. Objects named in `never_ready` are never
made Ready: a gate that never opens (where the real controller would, their `Ready` is
written False instead). Admission webhooks stay off (nothing serves them).
The fixture polls (every `poll` seconds) and keeps what it wrote, as a controller keeps
its state: a CA bundle overwritten by a later apply is injected again.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "kserve-stack-tests/upstream-controllers"
"""The user agent of every write the fixture makes: how the audit log tells them apart."""
INJECT_FROM = "cert-manager.io/inject-ca-from"
INJECT_FROM_SECRET = "cert-manager.io/inject-ca-from-secret"
SERVICE_TYPE = "networking.istio.io/service-type"
CERT_MANAGER_NS, ISTIO_NS, KNATIVE_OPERATOR_NS, KSERVE_NS = "cert-manager", "istio-system", "knative-operator", "kserve"


@dataclass(frozen=True)
class Write:
    controller: str
    target: str
    """`Kind namespace/name` (or `Kind name`) of the object written."""
    at: float
    ready: bool = True
    """False for a condition written False (an object in `never_ready`)."""


@dataclass
class UpstreamControllers:
    """`with UpstreamControllers(api_client, delay=…):` runs the writers in a thread."""

    api: Any
    """A kubernetes ApiClient for the cluster."""
    delay: float = 0.0
    never_ready: frozenset[str] = frozenset()
    """`Kind namespace/name` of objects never made Ready."""
    ca_bundle: bytes = b"-----BEGIN CERTIFICATE-----\nkserve-stack-tests\n-----END CERTIFICATE-----\n"
    poll: float = 0.25
    writes: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _since: dict[tuple[str, str], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> UpstreamControllers:
        from kubernetes import client

        self.api.user_agent = USER_AGENT
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.custom, self.admission = client.CustomObjectsApi(self.api), client.AdmissionregistrationV1Api(self.api)
        self._thread = threading.Thread(target=self._run, name="upstream-controllers", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def written(self, target: str) -> Write | None:
        """The first write that made `target` ready (or wrote it, for objects with no condition)."""
        return next((w for w in self.writes if w.target == target and w.ready), None)

    def _run(self) -> None:
        steps = (self._inject_ca_bundles, self._issuers, self._certificates, self._gateways,
                 self._istiod_webhooks, self._knative_serving, self._inference_services)
        while not self._stop.is_set():
            for step in steps:
                try:
                    step()
                except Exception as err:  # a conflict or a vanished object: try again next round
                    message = f"{step.__name__}: {type(err).__name__}: {str(err)[:300]}"
                    if message not in self.errors[-5:]:
                        self.errors.append(message)
            self._stop.wait(self.poll)

    def _due(self, key: str, uid: str, holds: bool) -> bool:
        """Preconditions for `key` (on the object with `uid`) hold now; the write is due `delay`
        seconds after they were first seen to hold."""
        if not holds:
            self._since.pop((key, uid), None)
            return False
        since = self._since.setdefault((key, uid), time.monotonic())
        return time.monotonic() - since >= self.delay

    def _record(self, controller: str, target: str, ready: bool = True) -> None:
        self.writes.append(Write(controller, target, time.time(), ready))

    def _available(self, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            deploy = self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return _true(deploy.status.conditions or [], "Available", attr=True)

    # cert-manager ------------------------------------------------------------------------

    def _inject_ca_bundles(self) -> None:
        if not self._available(CERT_MANAGER_NS, "cert-manager-cainjector"):
            return
        bundle = base64.b64encode(self.ca_bundle).decode()
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            api = kind.removesuffix("WebhookConfiguration").lower()
            for config in getattr(self.admission, f"list_{api}_webhook_configuration")().items:
                annotations = config.metadata.annotations or {}
                if INJECT_FROM in annotations:
                    ns, cert = annotations[INJECT_FROM].split("/", 1)
                    source_ready = self._ready_custom("cert-manager.io", "v1", "certificates", cert, ns)
                elif INJECT_FROM_SECRET in annotations:
                    source_ready = self._available(CERT_MANAGER_NS, "cert-manager-webhook")
                else:
                    continue
                missing = [w for w in config.webhooks or [] if w.client_config.ca_bundle != bundle]
                if not self._due("inject", config.metadata.uid, source_ready and bool(missing)):
                    continue
                for webhook in config.webhooks:
                    webhook.client_config.ca_bundle = bundle
                getattr(self.admission, f"replace_{api}_webhook_configuration")(config.metadata.name, config)
                self._record("cert-manager-cainjector", f"{kind} {config.metadata.name}")

    def _issuers(self) -> None:
        if not self._available(CERT_MANAGER_NS, "cert-manager"):
            return
        for plural, kind in (("clusterissuers", "ClusterIssuer"), ("issuers", "Issuer")):
            for issuer in self._list("cert-manager.io", "v1", plural):
                self._make_ready("cert-manager", "cert-manager.io", "v1", plural, kind, issuer)

    def _certificates(self) -> None:
        if not self._available(CERT_MANAGER_NS, "cert-manager"):
            return
        for cert in self._list("cert-manager.io", "v1", "certificates"):
            meta, spec = cert["metadata"], cert["spec"]
            ref = spec["issuerRef"]
            cluster = ref.get("kind") == "ClusterIssuer"
            issuer_ready = self._ready_custom("cert-manager.io", "v1", "clusterissuers" if cluster else "issuers",
                                              ref["name"], None if cluster else meta["namespace"])
            if _ready(cert) or not self._due("certificate", meta["uid"], issuer_ready):
                continue
            if self._target("Certificate", meta) in self.never_ready:
                continue
            pem = base64.b64encode(self.ca_bundle).decode()
            secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                      "metadata": {"name": spec["secretName"], "namespace": meta["namespace"],
                                   "annotations": {"cert-manager.io/certificate-name": meta["name"]}},
                      "data": {"tls.crt": pem, "tls.key": pem, "ca.crt": pem}}
            self._create_or_keep(self.core.create_namespaced_secret, meta["namespace"], secret)
            self._record("cert-manager", f"Secret {meta['namespace']}/{spec['secretName']}")
            self._make_ready("cert-manager", "cert-manager.io", "v1", "certificates", "Certificate", cert, due=True)

    # istiod --------------------------------------------------------------------------------

    def _gateways(self) -> None:
        if not self._available(ISTIO_NS, "istiod"):
            return
        classes = {c["metadata"]["name"] for c in self._list("gateway.networking.k8s.io", "v1", "gatewayclasses")}
        for gateway in self._list("gateway.networking.k8s.io", "v1", "gateways"):
            meta, spec = gateway["metadata"], gateway["spec"]
            target = self._target("Gateway", meta)
            accepted = _true((gateway.get("status") or {}).get("conditions") or [], "Accepted",
                             generation=meta.get("generation"))
            if accepted or target in self.never_ready:
                continue
            if not self._due("gateway", meta["uid"], spec.get("gatewayClassName") in classes):
                continue
            service = self._gateway_service(gateway)
            now = _now()
            pending = service.spec.type == "LoadBalancer"
            conditions = [
                _condition("Accepted", "True", "Accepted", meta, now),
                _condition("Programmed", "False" if pending else "True",
                           "AddressNotAssigned" if pending else "Programmed", meta, now),
            ]
            status: dict = {"conditions": conditions}
            if not pending:
                status["addresses"] = [{"type": "IPAddress", "value": service.spec.cluster_ip}]
            self.custom.patch_namespaced_custom_object_status(
                "gateway.networking.k8s.io", "v1", meta["namespace"], "gateways", meta["name"], {"status": status})
            self._record("istiod", target)

    def _gateway_service(self, gateway: dict):
        """The Service istiod makes for a Gateway: `<name>-istio`, owned by the Gateway (so the
        garbage collector removes it with the Gateway), with the infrastructure labels."""
        meta, spec = gateway["metadata"], gateway["spec"]
        name = f"{meta['name']}-istio"
        ports = [{"name": "status-port", "port": 15021, "protocol": "TCP"}] + [
            {"name": f"{listener['protocol'].lower()}-{listener['port']}", "port": listener["port"], "protocol": "TCP"}
            for listener in spec.get("listeners") or []]
        body = {
            "metadata": {
                "name": name, "namespace": meta["namespace"],
                "labels": {**((spec.get("infrastructure") or {}).get("labels") or {}),
                           "gateway.networking.k8s.io/gateway-name": meta["name"]},
                "ownerReferences": [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                     "name": meta["name"], "uid": meta["uid"]}],
            },
            "spec": {"type": (meta.get("annotations") or {}).get(SERVICE_TYPE, "LoadBalancer"),
                     "selector": {"gateway.networking.k8s.io/gateway-name": meta["name"]}, "ports": ports},
        }
        self._create_or_keep(self.core.create_namespaced_service, meta["namespace"], body)
        self._record("istiod", f"Service {meta['namespace']}/{name}")
        return self.core.read_namespaced_service(name, meta["namespace"])

    def _istiod_webhooks(self) -> None:
        """istiod rewrites every webhook of its validating configurations whole (CA bundle and
        failure policy) with an Update, as soon as it serves, and again whenever they differ."""
        if not self._available(ISTIO_NS, "istiod"):
            return
        bundle = base64.b64encode(self.ca_bundle).decode()
        selector = "app.kubernetes.io/name=istiod"
        for config in self.admission.list_validating_webhook_configuration(label_selector=selector).items:
            stale = [w for w in config.webhooks or []
                     if w.client_config.ca_bundle != bundle or w.failure_policy != "Fail"]
            if not self._due("istiod-webhook", config.metadata.uid, bool(stale)):
                continue
            for webhook in config.webhooks:
                webhook.client_config.ca_bundle = bundle
                webhook.failure_policy = "Fail"
            self.admission.replace_validating_webhook_configuration(config.metadata.name, config)
            self._record("istiod", f"ValidatingWebhookConfiguration {config.metadata.name}")

    # Knative operator, KServe controller ----------------------------------------------------

    def _knative_serving(self) -> None:
        if not self._available(KNATIVE_OPERATOR_NS, "knative-operator"):
            return
        for serving in self._list("operator.knative.dev", "v1beta1", "knativeservings"):
            self._make_ready("knative-operator", "operator.knative.dev", "v1beta1", "knativeservings",
                             "KnativeServing", serving, extra={"version": serving["spec"].get("version", "")})

    def _inference_services(self) -> None:
        if not self._available(KSERVE_NS, "kserve-controller-manager"):
            return
        runtimes = {r["metadata"]["name"]
                    for r in self._list("serving.kserve.io", "v1alpha1", "clusterservingruntimes")}
        for isvc in self._list("serving.kserve.io", "v1beta1", "inferenceservices"):
            meta = isvc["metadata"]
            model = isvc["spec"]["predictor"].get("model") or {}
            mode = (meta.get("annotations") or {}).get("serving.kserve.io/deploymentMode", "")
            if mode not in ("Knative", "Serverless"):
                if model.get("runtime") in runtimes:
                    self._raw_inference_service(isvc)
                continue
            ingress = self._ready_custom("operator.knative.dev", "v1beta1", "knativeservings", "knative-serving",
                                         "knative-serving")
            url = f"http://{meta['name']}.{meta['namespace']}.example.com"
            self._make_ready("kserve-controller", "serving.kserve.io", "v1beta1", "inferenceservices",
                             "InferenceService", isvc, holds=ingress and model.get("runtime") in runtimes,
                             extra={"url": url}, types=("PredictorReady", "IngressReady", "Ready"))

    def _raw_inference_service(self, isvc: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        meta = isvc["metadata"]
        name, ns = f"{meta['name']}-predictor", meta["namespace"]
        target = self._target("InferenceService", meta)
        wanted = predictor_deployment(isvc)
        try:
            deploy = self.apps.read_namespaced_deployment(name, ns)
        except ApiException as err:
            if err.status != 404:
                raise
            if not self._due("raw-isvc", meta["uid"], True):
                return
            deploy = self.apps.create_namespaced_deployment(ns, wanted)
            self._record("kserve-controller", f"Deployment {ns}/{name}")
        current = self.api.sanitize_for_serialization(deploy)
        if (current["metadata"].get("annotations") or {}).get(PLAYED_SPEC) != wanted["metadata"]["annotations"][
                PLAYED_SPEC]:
            current["metadata"]["annotations"] = {**(current["metadata"].get("annotations") or {}),
                                                  **wanted["metadata"]["annotations"]}
            current["spec"]["template"], current["spec"]["replicas"] = wanted["spec"]["template"], \
                wanted["spec"]["replicas"]
            deploy = self.apps.replace_namespaced_deployment(name, ns, current)
            self._record("kserve-controller", f"Deployment {ns}/{name}")
            current = self.api.sanitize_for_serialization(deploy)
        gateway = self._get("gateway.networking.k8s.io", "v1", "gateways", "kserve-ingress-gateway", KSERVE_NS)
        ingress = gateway is not None and _true((gateway.get("status") or {}).get("conditions") or [], "Accepted")
        predictor_ready = "False" if target in self.never_ready else raw_predictor_ready(current.get("status") or {})
        ready = "True" if predictor_ready == "True" and ingress else (
            "False" if predictor_ready == "False" else "Unknown")
        observed = (current.get("status") or {}).get("observedGeneration")
        now = _now()
        status = {"observedGeneration": observed, "conditions": [
            _condition("PredictorReady", predictor_ready, "PredictorReady", meta, now),
            _condition("IngressReady", "True" if ingress else "False", "IngressReady", meta, now),
            _condition("Ready", ready, "Ready" if ready == "True" else "NotReady", meta, now)]}
        if predictor_ready == "True":
            status["url"] = f"http://{meta['name']}-{meta['namespace']}.example.com"
        old = isvc.get("status") or {}
        summary = [(c["type"], c["status"]) for c in status["conditions"]]
        if old.get("observedGeneration") == observed and \
                [(c.get("type"), c.get("status")) for c in old.get("conditions") or []] == summary:
            return
        self.custom.patch_namespaced_custom_object_status(
            "serving.kserve.io", "v1beta1", ns, "inferenceservices", meta["name"], {"status": status})
        self._record("kserve-controller", target, ready == "True")

    # shared --------------------------------------------------------------------------------

    def _list(self, group: str, version: str, plural: str) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.list_cluster_custom_object(group, version, plural)["items"]
        except ApiException as err:
            if err.status == 404:  # the CRD is not installed (yet, or any more)
                return []
            raise

    def _get(self, group: str, version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            if namespace:
                return self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
            return self.custom.get_cluster_custom_object(group, version, plural, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _ready_custom(self, group: str, version: str, plural: str, name: str, namespace: str | None = None) -> bool:
        obj = self._get(group, version, plural, name, namespace)
        return obj is not None and _ready(obj)

    def _make_ready(self, controller: str, group: str, version: str, plural: str, kind: str, obj: dict, *,
                    holds: bool = True, due: bool = False, extra: dict | None = None,
                    types: Iterable[str] = ("Ready",)) -> None:
        """Sets the conditions `types` True, or for an object in `never_ready` False: what the real
        controller reports for an object it cannot make ready."""
        meta = obj["metadata"]
        target = self._target(kind, meta)
        ready = target not in self.never_ready
        held = not ready and any(c.get("type") == "Ready" for c in (obj.get("status") or {}).get("conditions") or [])
        if _ready(obj) or held:
            return
        if not due and not self._due(plural, meta["uid"], holds):
            return
        now, value = _now(), "True" if ready else "False"
        reason = None if ready else "NotReadyInThisTest"
        status = {**(extra if ready and extra else {}), "observedGeneration": meta.get("generation"),
                  "conditions": [_condition(t, value, reason or t, meta, now) for t in types]}
        if meta.get("namespace"):
            self.custom.patch_namespaced_custom_object_status(group, version, meta["namespace"], plural, meta["name"],
                                                              {"status": status})
        else:
            self.custom.patch_cluster_custom_object_status(group, version, plural, meta["name"], {"status": status})
        self._record(controller, target, ready)

    @staticmethod
    def _target(kind: str, meta: dict) -> str:
        return f"{kind} {meta['namespace']}/{meta['name']}" if meta.get("namespace") else f"{kind} {meta['name']}"

    @staticmethod
    def _create_or_keep(create: Callable[..., Any], *args: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            create(*args)
        except ApiException as err:
            if err.status != 409:
                raise


PLAYED_SPEC = "kserve-stack-tests/played-spec"
"""The fixture's own record of the Deployment spec it asked for (the API server adds defaults to
the pod template, so comparing templates would roll the Deployment on every round)."""


def predictor_deployment(isvc: dict) -> dict:
    """The predictor Deployment KServe's raw-mode reconciler makes: selected by
    `app: isvc.<name>-predictor`, the predictor's labels on its pods, the model's storage URI the
    storage initializer's argument, the resources on `kserve-container`, port 8080."""
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    model = predictor.get("model") or {}
    app = f"isvc.{meta['name']}-predictor"
    labels = {**(predictor.get("labels") or {}), "app": app, "serving.kserve.io/inferenceservice": meta["name"],
              "component": "predictor"}
    spec = {
        "replicas": predictor.get("minReplicas", 1),
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "initContainers": [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.20.0",
                                    "args": [model.get("storageUri", ""), "/mnt/models"]}],
                "containers": [{"name": "kserve-container", "image": f"{model.get('runtime')}:played",
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": model.get("resources") or {}}],
            },
        },
    }
    return {
        "metadata": {"name": f"{meta['name']}-predictor", "namespace": meta["namespace"],
                     "labels": {"serving.kserve.io/inferenceservice": meta["name"]},
                     "annotations": {PLAYED_SPEC: hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
                                     .hexdigest()},
                     "ownerReferences": [{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                                          "name": meta["name"], "uid": meta["uid"], "controller": True}]},
        "spec": spec,
    }


def raw_predictor_ready(status: dict) -> str:
    """PredictorReady from the predictor Deployment's conditions, in PropagateRawStatus's order:
    Available True makes it True; Progressing True for any reason but NewReplicaSetAvailable
    makes it Unknown, Progressing False with a message False; Available False or ReplicaFailure
    True make it False."""
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    available, progressing = conditions.get("Available"), conditions.get("Progressing")
    result = "True" if available and available["status"] == "True" else "False"
    if progressing is not None:
        if progressing["status"] == "False" and progressing.get("message"):
            result = "False"
        elif progressing["status"] == "True":
            result = "True" if progressing.get("reason") == "NewReplicaSetAvailable" else "Unknown"
    if available is not None and available["status"] == "False":
        result = "False"
    failure = conditions.get("ReplicaFailure")
    if failure is not None and failure["status"] == "True":
        result = "False"
    return result


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, status: str, reason: str, meta: dict, now: str) -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": "written by the test's stand-in",
            "lastTransitionTime": now, "observedGeneration": meta.get("generation")}


def _true(conditions: list, type_: str, attr: bool = False, generation: int | None = None) -> bool:
    for c in conditions:
        ctype, cstatus = (c.type, c.status) if attr else (c.get("type"), c.get("status"))
        if ctype == type_ and cstatus == "True":
            return generation is None or attr or c.get("observedGeneration") in (None, generation)
    return False


def _ready(obj: dict) -> bool:
    return _true((obj.get("status") or {}).get("conditions") or [], "Ready",
                 generation=obj["metadata"].get("generation"))
