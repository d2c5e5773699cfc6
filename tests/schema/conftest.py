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


@pytest.fixture(scope="session")
def _captures() -> dict[int, Any]:
    return {}


@pytest.fixture
def variant(run_stack, _captures) -> Callable[[int], Any]:
    """The captured run of SCHEMA_VARIANTS[i], made once per session (the program is deterministic)."""

    def get(i: int):
        if i not in _captures:
            stack, overrides = SCHEMA_VARIANTS[i]
            _captures[i] = run_stack(stack, **overrides)
        return _captures[i]

    return get


@pytest.fixture
def all_objects(variant) -> list[dict[str, Any]]:
    """Every object of every schema variant."""
    return [o for i in range(len(SCHEMA_VARIANTS)) for o in variant(i).objects()]


@pytest.fixture
def first(all_objects) -> Callable[[str], dict[str, Any]]:
    """A fresh copy of the first built object of a kind, to break in a negative case."""

    def pick(kind: str) -> dict[str, Any]:
        found = [o for o in all_objects if o["kind"] == kind]
        assert found, f"no variant builds a {kind}"
        return copy.deepcopy(found[0])

    return pick
