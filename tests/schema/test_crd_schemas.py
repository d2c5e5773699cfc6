"""The strict CRD validator itself: the API server's rules it must reproduce, on a small
CRD written like the upstream ones, and the index over the real files."""

from __future__ import annotations

import pytest
import yaml

from tests.schema.crd_schemas import CrdSchemas, builtin_kinds

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.dev}
spec:
  group: example.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [port]
            properties:
              port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
              size: {type: integer, nullable: true}
              tags: {type: array, x-kubernetes-list-type: set, items: {type: string}}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items: {type: object, required: [name], properties: {name: {type: string}, number: {type: integer}}}
              env: {type: object, additionalProperties: {type: object, properties: {value: {type: string}}}}
              config: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {mode: {type: string}}}
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"""


@pytest.fixture(scope="module")
def widgets(tmp_path_factory) -> CrdSchemas:
    root = tmp_path_factory.mktemp("crds")
    (root / "widgets.yaml").write_text(WIDGET_CRD)
    return CrdSchemas(root)


def widget(**spec) -> dict:
    return {"apiVersion": "example.dev/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default", "labels": {"app.kubernetes.io/name": "w"}},
            "spec": {"port": 80, **spec}}


@pytest.mark.parametrize("spec", [
    {}, {"port": "http"}, {"size": None}, {"tags": ["a", "b"]},
    {"ports": [{"name": "a", "number": 1}, {"name": "b", "number": 1}]},
    {"env": {"A": {"value": "1"}}}, {"config": {"mode": "x", "anything": {"goes": [1]}}},
])
def test_a_valid_widget_passes(widgets, spec):
    assert widgets.errors(widget(**spec)) == []


@pytest.mark.parametrize(("change", "field"), [
    (lambda o: o["spec"].update(prot=1), "prot"),
    (lambda o: o.update(sepc={}), "sepc"),
    (lambda o: o["spec"].update(env={"A": {"valeu": "1"}}), "valeu"),
    (lambda o: o["spec"].update(port=True), "port"),
    (lambda o: o["spec"].update(port=None), "port"),
    (lambda o: o["spec"].pop("port"), "port"),
    (lambda o: o["spec"].update(tags=["a", "a"]), "tags"),
    (lambda o: o["spec"].update(ports=[{"name": "a"}, {"name": "a"}]), "ports"),
    (lambda o: o["metadata"].update(lables={}), "lables"),
    (lambda o: o["metadata"].update(name="Not_A_Name"), "name"),
    (lambda o: o["metadata"].update(namespace=3), "namespace"),
    (lambda o: o["metadata"].update(labels={"app": 1}), "labels"),
    (lambda o: o["metadata"].update(labels={"app": "has space"}), "labels"),
    (lambda o: o["metadata"].update(annotations={"bad key!": "x"}), "annotations"),
    (lambda o: o["metadata"].pop("name"), "metadata"),
    (lambda o: o.update(kind="Gadget"), "no CRD"),
    (lambda o: o.update(apiVersion="example.dev/v0"), "not served"),
])
def test_an_invalid_widget_fails_naming_the_field(widgets, change, field):
    obj = widget()
    change(obj)
    errors = widgets.errors(obj)
    assert errors and field in "\n".join(errors), errors


def test_the_kind_and_api_version_must_match_the_crd(widgets):
    schema = widgets.schema(("example.dev", "v1", "Widget"))
    assert schema["properties"]["apiVersion"] == {"const": "example.dev/v1"}
    assert schema["properties"]["kind"] == {"const": "Widget"}


def test_the_upstream_files_are_indexed_by_group_version_kind(crd_schemas):
    assert ("serving.kserve.io", "v1beta1", "InferenceService") in crd_schemas
    assert ("gateway.networking.k8s.io", "v1", "Gateway") in crd_schemas
    assert ("networking.istio.io", "v1", "Gateway") in crd_schemas
    assert ("operator.knative.dev", "v1beta1", "KnativeServing") in crd_schemas
    crds = [d for p in crd_schemas.root.rglob("*.yaml") for d in yaml.load_all(p.read_text(), Loader=LOADER)
            if d and d.get("kind") == "CustomResourceDefinition"]
    assert len(crd_schemas.crds) == sum(len(c["spec"]["versions"]) for c in crds)


def test_no_upstream_crd_shadows_a_builtin_kind(crd_schemas):
    assert not set(crd_schemas.crds) & builtin_kinds()
    assert ("", "v1", "ConfigMap") in builtin_kinds()
    assert ("gateway.networking.k8s.io", "v1", "Gateway") not in builtin_kinds()
