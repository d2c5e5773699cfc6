"""The real API server and the real Pulumi engine, both built by scripts/toolchain.sh. In CI a
missing tool fails the run; elsewhere the tests that need it skip and say how to build it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import missing_tool
from tests.integration.apiserver import LocalApiServer
from tests.integration.engine import Engine, EngineMissing, Toolchain


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    value = os.environ.get("KSERVE_STACK_K8S_BIN")
    missing = not value or not all((Path(value) / b).exists()
                                   for b in ("etcd", "kube-apiserver", "kube-controller-manager"))
    if missing:
        missing_tool("etcd/kube-apiserver not built: run `eval \"$(bash scripts/toolchain.sh)\"`")
    return Path(value)


@pytest.fixture(scope="session")
def apiserver(k8s_bin):
    with LocalApiServer(k8s_bin) as api:
        yield api


@pytest.fixture(scope="session")
def pulumi_engine(tmp_path_factory) -> Engine:
    """One PULUMI_HOME with the kubernetes plugin installed, for every engine test."""
    try:
        toolchain = Toolchain.from_env()
    except EngineMissing as err:
        missing_tool(str(err))
    home = tmp_path_factory.mktemp("pulumi-home")
    return Engine(toolchain, home, kubeconfig=home / "no-cluster")
