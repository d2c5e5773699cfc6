"""The policies' checks as plain functions over a resource's type, URN, properties and
secret outputs, so they are tested without the policy engine (see __main__.py for the pack).

"Workloads we create" means objects the program registers itself; objects rendered from
an upstream Helm chart (their URN passes through a `helm.sh/v4:Chart`) carry the chart
author's resource settings and are exempt from the resources rule, but not from the image
and hostPath rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

CHART = "kubernetes:helm.sh/v4:Chart"
HOST_PATH_ANNOTATION = "kserve-stack/host-path"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
MODES = ("Standard", "Knative", "RawDeployment", "Serverless")
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def kind_of(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def from_chart(urn: str) -> bool:
    return CHART in urn.split("::")[2] if urn.count("::") >= 3 else False


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    kind = kind_of(resource_type)
    spec = props.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in POD_TEMPLATE_KINDS:
        return (spec.get("template") or {}).get("spec") or {}
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return None


def containers(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, container) for every container the resource would run, InferenceServices included."""
    spec = pod_spec(resource_type, props)
    if spec is not None:
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                yield f"{key}/{c.get('name')}", c
    kind = kind_of(resource_type)
    if kind == "InferenceService":
        predictor = (props.get("spec") or {}).get("predictor") or {}
        if predictor.get("model"):
            yield "predictor.model", predictor["model"]
        for c in predictor.get("containers") or []:
            yield f"predictor.containers/{c.get('name')}", c
    if kind in ("ServingRuntime", "ClusterServingRuntime") and not (props.get("spec") or {}).get("disabled"):
        for c in (props.get("spec") or {}).get("containers") or []:
            yield f"containers/{c.get('name')}", c


def missing_resources(resource_type: str, urn: str, props: Mapping[str, Any]) -> list[str]:
    if from_chart(urn):
        return []
    out = []
    for where, c in containers(resource_type, props):
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            for name in ("cpu", "memory"):
                if not (res.get(section) or {}).get(name):
                    out.append(f"{where}: no {section}.{name}")
    return out


ISTIO_INJECTED = "auto"
"""Istio's gateway charts leave `image: auto` for its injector to fill in (from istiod's pinned
hub and tag) on pods that ask for an injection template."""


def injected_by_istio(resource_type: str, props: Mapping[str, Any]) -> bool:
    spec = props.get("spec") or {}
    if kind_of(resource_type) not in POD_TEMPLATE_KINDS:
        return False
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return "inject.istio.io/templates" in annotations


def unpinned_images(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    out = []
    for where, c in containers(resource_type, props):
        image = c.get("image")
        if not image:
            continue
        if "@" in image or (image == ISTIO_INJECTED and injected_by_istio(resource_type, props)):
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            out.append(f"{where}: image {image} has no tag")
        elif last.endswith(":latest"):
            out.append(f"{where}: image {image} uses latest")
    return out


def host_paths(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    kind = kind_of(resource_type)
    if kind == "PersistentVolume" and (props.get("spec") or {}).get("hostPath"):
        annotations = (props.get("metadata") or {}).get("annotations") or {}
        if annotations.get(HOST_PATH_ANNOTATION) != "enabled":
            return [f"hostPath PersistentVolume without {HOST_PATH_ANNOTATION}: enabled (set model.storage.hostPath)"]
        return []
    spec = pod_spec(resource_type, props)
    return [f"volume {v.get('name')} is a hostPath" for v in (spec or {}).get("volumes") or [] if v.get("hostPath")]


def tls_secret_not_secret(resource_type: str, props: Mapping[str, Any],
                          additional_secret_outputs: Iterable[str]) -> list[str]:
    if kind_of(resource_type) != "Secret":
        return []
    data_keys = set(props.get("data") or {}) | set(props.get("stringData") or {})
    if props.get("type") != "kubernetes.io/tls" and "tls.key" not in data_keys:
        return []
    secret = set(additional_secret_outputs)
    missing = [k for k in ("data", "stringData") if props.get(k) and k not in secret]
    return [f"TLS key material in {k} is not a Pulumi secret (additional_secret_outputs)" for k in missing]


KSERVE_CONFIG = "inferenceservice-config"


def deployment_mode_of(objects: Iterable[tuple[str, Mapping[str, Any]]]) -> str | None:
    """The mode the KServe controller runs with, read where the controller reads it: the
    `deploy` setting of the `inferenceservice-config` ConfigMap its chart renders. (Not the
    chart's values: the engine keeps no inputs for a `helm.v4.Chart`, a remote component.)"""
    for resource_type, props in objects:
        if kind_of(resource_type) == "ConfigMap" and (props.get("metadata") or {}).get("name") == KSERVE_CONFIG:
            try:
                return json.loads((props.get("data") or {}).get("deploy") or "{}").get("defaultDeploymentMode")
            except (ValueError, AttributeError):
                return None
    return None


def mode_annotation_problems(isvc_props: Mapping[str, Any], stack_mode: str | None) -> list[str]:
    annotations = (isvc_props.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(MODE_ANNOTATION)
    if value is None:
        return [f"no {MODE_ANNOTATION} annotation"]
    if value not in MODES:
        return [f"{MODE_ANNOTATION}={value} is not a KServe mode ({', '.join(MODES)})"]
    if stack_mode is not None and value != stack_mode:
        return [f"{MODE_ANNOTATION}={value} but the KServe controller is installed with {stack_mode}"]
    return []


AUTH_ANNOTATION = "kserve-stack/auth"
"""On an InferenceService the stack publishes without a token check (`kserve-stack:auth` none)."""
POLICY_ANNOTATION = "kserve-stack/inference-service"
"""On the AuthorizationPolicy that says who may call an InferenceService: `<namespace>/<name>`."""
ALLOW_OPEN_MODELS = "allowOpenModels"
"""The `models-behind-auth` setting (`--policy-pack-config`) that lets `auth: none` models through."""


def _namespaced(props: Mapping[str, Any]) -> str:
    meta = props.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def caller_rule_problems(policy_props: Mapping[str, Any]) -> list[str]:
    """What lets a call through an ALLOW AuthorizationPolicy without a token, or to any host: every
    rule must name request principals (a checked token's `<iss>/<sub>`; `*` is any checked token)
    in each of its sources, and the hosts it applies to. Rules are ORed, so one open rule opens
    the model; a policy with no rules allows nothing."""
    out = []
    for i, rule in enumerate((policy_props.get("spec") or {}).get("rules") or []):
        sources = rule.get("from") or []
        if not sources:
            out.append(f"rules[{i}] has no from: it admits callers without a token")
        for j, entry in enumerate(sources):
            if not ((entry or {}).get("source") or {}).get("requestPrincipals"):
                out.append(f"rules[{i}].from[{j}].source has no requestPrincipals: it admits callers without a token")
        operations = rule.get("to") or []
        if not operations or not all(((t or {}).get("operation") or {}).get("hosts") for t in operations):
            out.append(f"rules[{i}] names no hosts (to[].operation.hosts): it reaches every model behind the gateway")
    return out


def models_behind_auth(objects: Iterable[tuple[str, str, Mapping[str, Any]]],
                       allow_open_models: bool = False) -> list[tuple[str, str]]:
    """(urn, problem) over the stack's (type, urn, props): every InferenceService has an ALLOW
    AuthorizationPolicy annotated with its `<namespace>/<name>` whose rules all require a request
    principal and hosts (and every such policy does); one annotated `kserve-stack/auth: none` is
    refused unless the pack's config sets `allowOpenModels: true`."""
    objects = list(objects)
    policies: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for resource_type, urn, props in objects:
        if kind_of(resource_type) != "AuthorizationPolicy":
            continue
        target = ((props.get("metadata") or {}).get("annotations") or {}).get(POLICY_ANNOTATION)
        if target and (props.get("spec") or {}).get("action", "ALLOW") == "ALLOW":
            policies.setdefault(target, []).append((urn, props))
    out: list[tuple[str, str]] = []
    for resource_type, urn, props in objects:
        if kind_of(resource_type) != "InferenceService":
            continue
        key = _namespaced(props)
        if ((props.get("metadata") or {}).get("annotations") or {}).get(AUTH_ANNOTATION) == "none":
            if not allow_open_models:
                out.append((urn, f"InferenceService {key} is open ({AUTH_ANNOTATION}: none): anyone who reaches "
                                 f"the gateway can call it; set kserve-stack:auth, or allow open models with the "
                                 f"pack config {{\"models-behind-auth\": {{\"{ALLOW_OPEN_MODELS}\": true}}}}"))
            continue
        if key not in policies:
            out.append((urn, f"InferenceService {key} has no ALLOW AuthorizationPolicy annotated "
                             f"{POLICY_ANNOTATION}: {key}: nothing limits who calls it"))
            continue
        for policy_urn, policy in policies[key]:
            out += [(policy_urn, f"AuthorizationPolicy {_namespaced(policy)} for InferenceService {key}: {p}")
                    for p in caller_rule_problems(policy)]
    return out
