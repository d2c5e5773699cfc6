"""Built-in objects the program creates, validated strictly against the Kubernetes 1.32
OpenAPI schema (the oldest Kubernetes the stack supports), offline."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.conftest import VARIANTS

OLDEST_KUBERNETES = "1.32"
BUILTIN_GROUPS = ("v1", "batch/", "networking.k8s.io/", "apps/", "rbac.authorization.k8s.io/",
                  "apiextensions.k8s.io/")


def builtins(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["apiVersion"] == "v1" or o["apiVersion"].startswith(BUILTIN_GROUPS[1:])]


@pytest.mark.parametrize(("stack", "overrides"), VARIANTS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(VARIANTS)])
def test_builtin_objects_match_the_oldest_supported_kubernetes(run_stack, stack, overrides):
    objects = builtins(run_stack(stack, **overrides).objects())
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, OLDEST_KUBERNETES, strict=True)


def test_every_builtin_kind_is_covered(run_stack):
    kinds = set()
    for stack, overrides in VARIANTS:
        kinds |= {o["kind"] for o in builtins(run_stack(stack, **overrides).objects())}
    assert kinds >= {"Namespace", "PersistentVolume", "PersistentVolumeClaim", "ConfigMap", "Job", "IngressClass",
                     "CustomResourceDefinition"}


def _first(run_stack, kind: str) -> dict:
    return copy.deepcopy(next(o for o in run_stack("standard").objects() if o["kind"] == kind))


@pytest.mark.parametrize(("kind", "mutate"), [
    ("Job", lambda o: o["spec"]["template"]["spec"].update(
        volumeMounts=o["spec"]["template"]["spec"]["containers"][0].pop("volumeMounts"))),
    ("Job", lambda o: o["spec"].update(backofLimit=o["spec"].pop("backoffLimit"))),
    ("PersistentVolumeClaim", lambda o: o["spec"].update(accesModes=o["spec"].pop("accessModes"))),
    ("ConfigMap", lambda o: o.update(binarydata=o.pop("binaryData"))),
    ("Namespace", lambda o: o["metadata"].update(labels=["not", "a", "map"])),
])
def test_a_misspelled_or_misplaced_field_fails(run_stack, kind, mutate):
    obj = _first(run_stack, kind)
    kubernetes_validate.validate(obj, OLDEST_KUBERNETES, strict=True)
    mutate(obj)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, OLDEST_KUBERNETES, strict=True)
