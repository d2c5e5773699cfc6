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
def kwok_dir(k8s_bin) -> Path:
    """KWOK and its stages, with kube-scheduler beside the control plane."""
    value = os.environ.get("KSERVE_STACK_KWOK")
    if not value or not (Path(value) / "kwok").exists() or not (k8s_bin / "kube-scheduler").exists():
        missing_tool("KWOK or kube-scheduler not built: run `eval \"$(bash scripts/toolchain.sh)\"`")
    return Path(value)


@pytest.fixture
def kwok_cluster(k8s_bin, kwok_dir):
    """A control plane whose pods turn Ready (KWOK), with its audit log, and no webhook calls:
    nothing serves them."""
    with LocalApiServer(k8s_bin, admission_webhooks=False, kwok=kwok_dir, audit=True) as api:
        yield api


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
