"""The real API server fixture. In CI a missing toolchain fails; elsewhere it skips and says
how to build it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.apiserver import LocalApiServer


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    value = os.environ.get("KSERVE_STACK_K8S_BIN")
    missing = not value or not all((Path(value) / b).exists()
                                   for b in ("etcd", "kube-apiserver", "kube-controller-manager"))
    if missing:
        message = "etcd/kube-apiserver not built: run `eval \"$(bash scripts/toolchain.sh)\"` (or bash scripts/test.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(value)


@pytest.fixture(scope="session")
def apiserver(k8s_bin):
    with LocalApiServer(k8s_bin) as api:
        yield api
