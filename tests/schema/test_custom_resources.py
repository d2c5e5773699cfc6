"""Every custom resource the program builds, validated against the upstream CRD schema of
its kind (shared/upstream-crds) as strictly as the API server with fieldValidation=Strict."""

from __future__ import annotations

import pytest

from tests.schema.crd_schemas import builtin_kinds, gvk
from tests.schema.variants import IDS, INDEXES

PULUMI_PSEUDO_GROUPS = {"helm.sh", "yaml", "kustomize"}
"""Type-token groups of the Kubernetes provider that are components or the provider, not objects."""


def custom(objects: list[dict]) -> list[dict]:
    return [o for o in objects if gvk(o) not in builtin_kinds()]


def describe(obj: dict) -> str:
    return f"{obj['apiVersion']} {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata'].get('name')}"


@pytest.mark.parametrize("i", INDEXES, ids=IDS)
def test_every_custom_resource_matches_its_upstream_crd(variant, crd_schemas, i):
    objects = custom(variant(i).objects())
    assert any(o["kind"] == "InferenceService" for o in objects)
    failures = {describe(o): errors for o in objects if (errors := crd_schemas.errors(o))}
    assert not failures, failures


@pytest.mark.parametrize("i", INDEXES, ids=IDS)
def test_every_registered_kubernetes_resource_has_a_schema(variant, crd_schemas, i):
    """Nothing escapes: each type the program registers is a Kubernetes kind or has a CRD in shared/."""
    captured = variant(i)
    built = {(gvk(o), o["metadata"].get("name")) for o in captured.objects()}
    unknown = []
    for reg in captured.regs.values():
        if not reg.type.startswith("kubernetes:"):
            continue
        group_version, kind = reg.type.split(":")[1:]
        group, _, version = group_version.rpartition("/")
        if group in PULUMI_PSEUDO_GROUPS or group_version == "index":
            continue
        key = ("" if group == "core" else group, version, kind)
        if key not in builtin_kinds() and key not in crd_schemas:
            unknown.append(reg.type)
        if not reg.read:
            name = (reg.inputs.get("metadata") or {}).get("name")
            assert (key, name) in built, f"{reg.type} {reg.name} is registered but not among the objects checked"
    assert not unknown, f"registered with no schema to check them against: {unknown}"


def test_every_custom_kind_the_program_makes_is_covered(all_objects, crd_schemas):
    kinds = {gvk(o) for o in custom(all_objects)}
    assert kinds == {
        ("serving.kserve.io", "v1beta1", "InferenceService"),
        ("gateway.networking.k8s.io", "v1", "Gateway"),
        ("gateway.networking.k8s.io", "v1", "GatewayClass"),
        ("cert-manager.io", "v1", "Certificate"),
        ("cert-manager.io", "v1", "ClusterIssuer"),
        ("operator.knative.dev", "v1beta1", "KnativeServing"),
        ("security.istio.io", "v1", "RequestAuthentication"),
        ("security.istio.io", "v1", "AuthorizationPolicy"),
    }
    assert kinds <= set(crd_schemas.crds)


def test_a_custom_kind_without_an_upstream_crd_fails(first, crd_schemas):
    isvc = first("InferenceService")
    isvc["kind"] = "LLMInferenceService"
    assert any("no CRD" in e for e in crd_schemas.errors(isvc))
    isvc = first("InferenceService")
    isvc["apiVersion"] = "serving.kserve.io/v1"
    assert any("no CRD" in e for e in crd_schemas.errors(isvc))


def _predictor(o: dict) -> dict:
    return o["spec"]["predictor"]


@pytest.mark.parametrize(("kind", "change", "field"), [
    ("InferenceService", lambda o: _predictor(o)["model"].update(storageUrl=_predictor(o)["model"].pop("storageUri")),
     "storageUrl"),
    ("InferenceService", lambda o: _predictor(o).update(modelFormat=_predictor(o)["model"].pop("modelFormat")),
     "modelFormat"),
    ("InferenceService", lambda o: _predictor(o).update(minReplicas="one"), "minReplicas"),
    ("InferenceService", lambda o: _predictor(o)["model"]["resources"]["limits"].update(cpu=["1"]), "cpu"),
    ("InferenceService", lambda o: o["metadata"].update(annotation=o["metadata"].pop("annotations")), "annotation"),
    ("InferenceService", lambda o: o.update(predictor=o["spec"].pop("predictor")), "predictor"),
    ("Gateway", lambda o: o["spec"]["listeners"][0].update(protocl=o["spec"]["listeners"][0].pop("protocol")),
     "protocl"),
    ("Gateway", lambda o: o["spec"]["listeners"][0].update(port="eighty"), "port"),
    ("Gateway", lambda o: o["spec"]["listeners"].append(dict(o["spec"]["listeners"][0])), "listeners"),
    ("GatewayClass", lambda o: o["spec"].update(controller=o["spec"].pop("controllerName")), "controller"),
    ("Certificate", lambda o: o["spec"].update(dnsName=o["spec"].pop("dnsNames")), "dnsName"),
    ("Certificate", lambda o: o["spec"].update(issuerName=o["spec"]["issuerRef"].pop("name")), "issuerName"),
    ("Certificate", lambda o: o["spec"].pop("secretName"), "secretName"),
    ("ClusterIssuer", lambda o: o["spec"].update(selfSinged=o["spec"].pop("selfSigned")), "selfSinged"),
    ("KnativeServing", lambda o: o["spec"].update(ingres=o["spec"].pop("ingress")), "ingres"),
    ("KnativeServing", lambda o: o["spec"]["ingress"]["istio"].update(enabled="yes"), "enabled"),
    ("RequestAuthentication", lambda o: o["spec"].update(jwt_rules=o["spec"].pop("jwtRules")), "jwt_rules"),
    ("RequestAuthentication", lambda o: o["spec"]["jwtRules"][0].update(forwardOriginalToken="yes"),
     "forwardOriginalToken"),
    ("AuthorizationPolicy", lambda o: o["spec"]["rules"][0]["from"][0].update(
        principal=o["spec"]["rules"][0]["from"][0].pop("source")), "principal"),
    ("AuthorizationPolicy", lambda o: o["spec"]["rules"][0]["to"][0]["operation"].update(hosts="a.example.com"),
     "hosts"),
    ("AuthorizationPolicy", lambda o: o["spec"].update(action="PERMIT"), "action"),
])
def test_a_misspelled_misplaced_or_mistyped_field_is_rejected(first, crd_schemas, kind, change, field):
    obj = first(kind)
    assert crd_schemas.errors(obj) == []
    change(obj)
    errors = crd_schemas.errors(obj)
    assert errors and field in "\n".join(errors), errors


def test_int_or_string_quantities_accept_both(first, crd_schemas):
    isvc = first("InferenceService")
    _predictor(isvc)["model"]["resources"]["limits"]["cpu"] = 1
    assert crd_schemas.errors(isvc) == []
