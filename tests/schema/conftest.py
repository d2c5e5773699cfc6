"""Fixtures for the schema tests only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.schema.crd_schemas import CrdSchemas
from tests.schema.variants import SCHEMA_VARIANTS


@pytest.fixture(scope="session")
def crd_schemas(upstream_crds: Path) -> CrdSchemas:
    return CrdSchemas(upstream_crds)


@pytest.fixture
def all_objects(run_stack) -> list[dict[str, Any]]:
    """Every object of every schema variant."""
    return [o for stack, overrides in SCHEMA_VARIANTS for o in run_stack(stack, **overrides).objects()]


@pytest.fixture
def first(all_objects) -> Callable[[str], dict[str, Any]]:
    """A fresh copy of the first built object of a kind, to break in a negative case."""
    def pick(kind: str) -> dict[str, Any]:
        found = [o for o in all_objects if o["kind"] == kind]
        assert found, f"no variant builds a {kind}"
        return copy.deepcopy(found[0])

    return pick
