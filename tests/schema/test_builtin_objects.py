"""Built-in objects the program creates itself (not chart output), validated strictly
against the OpenAPI schema of the oldest Kubernetes the stack supports, offline."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.schema.crd_schemas import KUBERNETES, builtin_kinds, gvk
from tests.schema.variants import IDS, INDEXES


def builtins(objects: list[dict]) -> list[dict]:
    return [o for o in objects if gvk(o) in builtin_kinds()]


def validate(obj: dict) -> str:
    return kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("i", INDEXES, ids=IDS)
def test_builtin_objects_match_the_oldest_supported_kubernetes(variant, i):
    objects = builtins(variant(i).objects())
    assert any(o["kind"] == "Namespace" for o in objects)
    failures = {}
    for obj in objects:
        try:
            assert validate(obj) == KUBERNETES
        except kubernetes_validate.ValidationError as err:
            failures[f"{obj['kind']} {obj['metadata'].get('name')}"] = f"{list(err.absolute_path)}: {err.message}"
    assert not failures, failures


def test_every_builtin_kind_is_covered(all_objects):
    assert {o["kind"] for o in builtins(all_objects)} == {
        "Namespace", "PersistentVolume", "PersistentVolumeClaim", "ConfigMap", "Job", "IngressClass", "Service",
        "CustomResourceDefinition", "PodDisruptionBudget", "Secret", "ServiceAccount", "NetworkPolicy",
        "ClusterRoleBinding",
    }


def _container(o: dict) -> dict:
    return o["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("kind", "change"), [
    ("Job", lambda o: o["spec"].update(restartPolicy=o["spec"]["template"]["spec"].pop("restartPolicy"))),
    ("Job", lambda o: o["spec"]["template"].update(restartPolicy=o["spec"]["template"]["spec"].pop("restartPolicy"))),
    ("Job", lambda o: o["spec"]["template"]["spec"].update(volumeMounts=_container(o).pop("volumeMounts"))),
    ("Job", lambda o: o["spec"].update(backofLimit=o["spec"].pop("backoffLimit"))),
    ("Job", lambda o: _container(o).update(command="/bin/sh -c true")),
    ("PersistentVolumeClaim", lambda o: o["spec"].update(accesModes=o["spec"].pop("accessModes"))),
    ("PersistentVolume", lambda o: o["spec"].update(hostpath=o["spec"].pop("hostPath"))),
    ("ConfigMap", lambda o: o.update(binarydata=o.pop("binaryData"))),
    ("ConfigMap", lambda o: o.update(data={"replicas": 1})),
    ("Namespace", lambda o: o["metadata"].update(labels=["not", "a", "map"])),
    ("Namespace", lambda o: o.update(spec={"finalizer": ["kubernetes"]})),
    ("IngressClass", lambda o: o["spec"].update(controler=o["spec"].pop("controller"))),
    ("CustomResourceDefinition", lambda o: o["spec"].update(version=o["spec"].pop("versions"))),
    ("PodDisruptionBudget", lambda o: o["spec"].update(minAvailible=o["spec"].pop("minAvailable"))),
    ("NetworkPolicy", lambda o: o["spec"].update(ingres=o["spec"].pop("ingress"))),
    ("NetworkPolicy", lambda o: o["spec"]["ingress"][0]["from"][0].update(namespaceSelector="kserve")),
    ("ClusterRoleBinding", lambda o: o.update(roleref=o.pop("roleRef"))),
])
def test_a_misspelled_misplaced_or_mistyped_field_fails(first, kind, change):
    obj = first(kind)
    validate(obj)
    change(obj)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(obj)


def test_configmap_binary_data_formats_are_not_checked_offline(first):
    """The schema marks binaryData `format: byte`, but kubernetes-validate checks no formats:
    bad base64 is refused only by the API server."""
    config_map = first("ConfigMap")
    config_map["binaryData"]["model.joblib"] = "not base64!"
    assert validate(config_map) == KUBERNETES


def test_restart_policy_moved_into_the_container_passes_the_schema(first):
    """Containers have had a `restartPolicy` field since 1.28 (sidecars), so this mistake is
    schema-valid; only the API server's own checks refuse it (a Job needs Never/OnFailure on
    the pod, and a regular container may not set one)."""
    job = first("Job")
    _container(job)["restartPolicy"] = job["spec"]["template"]["spec"].pop("restartPolicy")
    assert validate(job) == KUBERNETES


def test_the_smoke_tests_projected_token_is_checked_too(all_objects):
    [job, *_] = [o for o in all_objects if o["kind"] == "Job" and "-smoke-test-" in o["metadata"]["name"]
                 and o["spec"]["template"]["spec"].get("volumes")]
    assert validate(job) == KUBERNETES
    token = job["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    token["expirationSecond"] = token.pop("expirationSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)
