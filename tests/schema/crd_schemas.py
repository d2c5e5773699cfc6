"""Offline validators for Kubernetes objects: custom resources against the upstream CRD
`openAPIV3Schema`s in shared/upstream-crds, made as strict as the API server is with
`fieldValidation=Strict`, and the set of built-in kinds of the oldest supported Kubernetes.

Not checked here (the API server test in tests/integration covers them): CEL rules
(`x-kubernetes-validations`), string `format`s, and name rules beyond DNS syntax.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

KUBERNETES = "1.32"
"""The oldest Kubernetes minor the stack supports."""

GVK = tuple[str, str, str]

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"(?=.{{1,253}}$){_DNS_LABEL}(\.{_DNS_LABEL})*"
_QUALIFIED_NAME = (r"^((?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                   r"(?=[^/]{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = r"^((?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"


def _kubernetes_definitions() -> dict[str, Any]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES}.0-local-strict"
    return json.loads((root / "_definitions.json").read_text())


@cache
def builtin_kinds() -> frozenset[GVK]:
    """Every (group, version, kind) the Kubernetes API server itself serves, from its OpenAPI document."""
    kinds = set()
    for definition in _kubernetes_definitions()["$defs"].values():
        for g in definition.get("x-kubernetes-group-version-kind", []):
            kinds.add((g["group"], g["version"], g["kind"]))
    return frozenset(kinds)


def gvk(obj: dict[str, Any]) -> GVK:
    group, _, version = obj["apiVersion"].rpartition("/")
    return group, version, obj["kind"]


def object_meta(definitions_id: str) -> dict[str, Any]:
    """ObjectMeta as Kubernetes defines it (strict), plus the name, namespace, label and
    annotation syntax the API server enforces on every object."""
    return {"allOf": [
        {"$ref": f"{definitions_id}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        {
            "type": "object",
            "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
            "properties": {
                "name": {"type": "string", "pattern": f"^{_DNS_SUBDOMAIN}$"},
                "namespace": {"type": "string", "pattern": f"^(?=.{{1,63}}$){_DNS_LABEL}$"},
                "labels": {"type": "object", "propertyNames": {"pattern": _QUALIFIED_NAME},
                           "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE}},
                "annotations": {"type": "object", "propertyNames": {"pattern": _QUALIFIED_NAME},
                                "additionalProperties": {"type": "string"}},
            },
        },
    ]}


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A structural schema as the API server applies it with strict field validation:
    unknown fields are errors except under `x-kubernetes-preserve-unknown-fields`."""
    out = dict(schema)
    if out.get("x-kubernetes-embedded-resource"):
        out["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             "metadata": {"type": "object"}, **out.get("properties", {})}
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _list_type(validator, list_type, instance, schema) -> Iterator[jsonschema.ValidationError]:
    """`x-kubernetes-list-type`: a set has unique items; a map list has unique key tuples."""
    if not isinstance(instance, list):
        return
    if list_type == "set":
        seen = [json.dumps(i, sort_keys=True) for i in instance]
        if len(seen) != len(set(seen)):
            yield jsonschema.ValidationError(f"duplicate entries in a list-type=set: {instance!r}")
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = [tuple(i.get(k) for k in keys) for i in instance if isinstance(i, dict)]
        if len(seen) != len(set(seen)):
            yield jsonschema.ValidationError(f"duplicate {keys} in a list-type=map: {instance!r}")


KubernetesValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-kubernetes-list-type": _list_type})


class CrdSchemas:
    """The CRDs under a directory, by (group, version, kind), each version's schema a strict validator."""

    def __init__(self, root: Path):
        self.root = root
        self.crds: dict[GVK, tuple[Path, dict[str, Any], dict[str, Any]]] = {}
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for path in sorted(root.rglob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=loader):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    assert key not in self.crds, f"{key} is defined twice ({self.crds[key][0]} and {path})"
                    self.crds[key] = (path, doc, version)
        definitions = _kubernetes_definitions()
        self._definitions_id = definitions["$id"]
        self._registry = Registry().with_resource(self._definitions_id, Resource.from_contents(definitions))
        self._validators: dict[GVK, jsonschema.protocols.Validator] = {}

    def __contains__(self, key: GVK) -> bool:
        return key in self.crds

    def groups(self) -> set[str]:
        return {g for g, _, _ in self.crds}

    def schema(self, key: GVK) -> dict[str, Any]:
        path, crd, version = self.crds[key]
        group, name, kind = key
        root = strict(version["schema"]["openAPIV3Schema"])
        own_meta = root.get("properties", {}).get("metadata", {})
        root["properties"] = {
            **root.get("properties", {}),
            "apiVersion": {"const": f"{group}/{name}"},
            "kind": {"const": kind},
            "metadata": {"allOf": [object_meta(self._definitions_id), own_meta]},
        }
        root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
        if crd["spec"].get("preserveUnknownFields"):
            root.pop("additionalProperties", None)
        return root

    def validator(self, key: GVK) -> jsonschema.protocols.Validator:
        if key not in self._validators:
            self._validators[key] = KubernetesValidator(self.schema(key), registry=self._registry)
        return self._validators[key]

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Why the API server would refuse `obj` (empty when it validates)."""
        key = gvk(obj)
        if key not in self.crds:
            return [f"no CRD in {self.root} defines {key}"]
        _, crd, version = self.crds[key]
        if not version.get("served", False):
            return [f"{key} is not served by {crd['metadata']['name']}"]
        found = sorted(self.validator(key).iter_errors(obj), key=lambda e: list(e.absolute_path))
        return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]
