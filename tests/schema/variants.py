"""The config variants the schema tests build: the suite's shared ones plus a few that put
the remaining kinds and options in the other mode."""

from __future__ import annotations

from typing import Any

from tests.conftest import VARIANTS

SCHEMA_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    *VARIANTS,
    ("serverless", {"versions": {"kserve": "v0.15.2"}}),
    ("standard", {"model": {"name": "iris", "storageUri": "gs://models/iris", "protocol": "v2"}}),
    ("serverless", {"model": {"name": "iris", "namespace": "ml", "image": "registry.local/iris:1.0",
                              "imagePath": "/models/iris",
                              "storage": {"hostPath": "/srv/models", "node": "worker-1", "size": "1Gi"}},
                    "gateway": {"tlsIssuer": {"kind": "Issuer", "name": "my-issuer"}}, "readiness": "skip"}),
]
INDEXES = range(len(SCHEMA_VARIANTS))
IDS = [f"{stack}-{i}" for i, (stack, _) in enumerate(SCHEMA_VARIANTS)]
