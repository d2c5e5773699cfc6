"""The Gateway API CRDs the program installs are the upstream release files in shared/:
the same file set, the same bytes (pinned sha256), installed unchanged."""

from __future__ import annotations

import hashlib
import re

import yaml

from settings.versions import GATEWAY_API_FILES
from tests.schema.variants import SCHEMA_VARIANTS

RELEASE = "v1.5.1"
NOT_A_CRD = "gateway.networking.k8s.io_vap_safeupgrades.yaml"
"""Installed by upstream's kustomization with the CRDs, but a ValidatingAdmissionPolicy."""


def shared_files(upstream_crds) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((upstream_crds / "gateway-api").glob("*.yaml"))}


def _index(stack: str) -> int:
    return next(i for i, (s, overrides) in enumerate(SCHEMA_VARIANTS) if s == stack and not overrides)


def test_the_standard_stack_loads_every_crd_file_of_the_release(variant, upstream_crds):
    captured = variant(_index("standard"))
    assert captured.cfg.versions.gateway_api == RELEASE
    assert len(captured.loaded_manifests) == 1
    files = {url.rsplit("/", 1)[1]: sha for url, sha in captured.loaded_manifests[0].files}
    assert all(f"/{RELEASE}/config/crd/standard/" in url for url, _ in captured.loaded_manifests[0].files)
    assert files == GATEWAY_API_FILES[RELEASE]
    assert set(files) - {NOT_A_CRD} == set(shared_files(upstream_crds))


def test_the_pinned_checksums_are_those_of_the_upstream_files(upstream_crds):
    shared = shared_files(upstream_crds)
    assert len(shared) == 8
    assert {name: GATEWAY_API_FILES[RELEASE].get(name) for name in shared} == shared


def test_the_one_other_file_is_the_policy_upstream_documents(upstream_crds):
    readme = (upstream_crds / "README.md").read_text()
    line = next(line for line in readme.splitlines() if NOT_A_CRD in line)
    assert "not a CRD" in line
    assert re.search(r"sha256 `([0-9a-f]{64})`", line).group(1) == GATEWAY_API_FILES[RELEASE][NOT_A_CRD]


def test_the_crds_are_installed_unchanged(variant, upstream_crds):
    captured = variant(_index("standard"))
    installed = [o for o in captured.objects() if o["kind"] == "CustomResourceDefinition"]
    upstream = [d for p in sorted((upstream_crds / "gateway-api").glob("*.yaml"))
                for d in yaml.load_all(p.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
    assert [o["metadata"]["name"] for o in installed] == [d["metadata"]["name"] for d in upstream]
    for got, want in zip(installed, upstream, strict=True):
        assert got["spec"] == want["spec"], got["metadata"]["name"]
        assert {k: v for k, v in got["metadata"].items() if k != "annotations"} == \
            {k: v for k, v in want["metadata"].items() if k != "annotations"}
        assert got["metadata"]["annotations"].items() >= want["metadata"]["annotations"].items()


def test_the_serverless_stack_installs_no_gateway_api(variant):
    captured = variant(_index("serverless"))
    assert captured.loaded_manifests == []
    assert not [o for o in captured.objects() if o["kind"] == "CustomResourceDefinition"]
