"""Pinned manifests: checksum-verified downloads (over real HTTP on loopback), cached by checksum."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from settings import manifests
from settings.versions import GATEWAY_API_FILES, ManifestSource, gateway_api_manifest
from tests.conftest import UPSTREAM_CRDS


@pytest.fixture
def file_server(tmp_path: Path):
    """Serves tmp_path/www on a random loopback port and counts requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_gateway_api_urls_are_versioned():
    source = gateway_api_manifest("v1.5.1")
    assert all("/v1.5.1/config/crd/standard/" in url for url, _ in source.files)
    assert gateway_api_manifest("v9.9.9") is None


def test_download_verify_and_cache(file_server, tmp_path):
    root, base, hits = file_server
    real = UPSTREAM_CRDS / "gateway-api" / "gateway.networking.k8s.io_gatewayclasses.yaml"
    (root / real.name).write_bytes(real.read_bytes())
    sha = GATEWAY_API_FILES["v1.5.1"][real.name]
    source = ManifestSource(files=((f"{base}/{real.name}", sha),))
    cache = tmp_path / "cache"
    objs = manifests.load(source, cache)
    assert [o["metadata"]["name"] for o in objs] == ["gatewayclasses.gateway.networking.k8s.io"]
    assert (cache / f"{sha}.yaml").read_bytes() == real.read_bytes()
    assert len(hits) == 1
    manifests.load(source, cache)
    assert len(hits) == 1, "a cached file is not downloaded again"


def test_checksum_mismatch_is_refused_and_not_cached(file_server, tmp_path):
    root, base, _ = file_server
    (root / "crds.yaml").write_text("kind: CustomResourceDefinition\nmetadata: {name: tampered}\n")
    sha = "0" * 64
    with pytest.raises(manifests.ManifestError, match="does not match the pinned"):
        manifests.load(ManifestSource(files=((f"{base}/crds.yaml", sha),)), tmp_path / "cache")
    assert not (tmp_path / "cache" / f"{sha}.yaml").exists()


def test_tampered_cache_is_fetched_again(file_server, tmp_path):
    root, base, hits = file_server
    body = b"kind: ConfigMap\nmetadata: {name: a}\n"
    (root / "a.yaml").write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{sha}.yaml").write_text("kind: ConfigMap\nmetadata: {name: evil}\n")
    assert manifests.load(ManifestSource(files=((f"{base}/a.yaml", sha),)), cache)[0]["metadata"]["name"] == "a"
    assert len(hits) == 1


def test_unreachable_url_is_a_clear_error(tmp_path):
    with pytest.raises(manifests.ManifestError, match="download failed"):
        manifests.fetch_file("http://127.0.0.1:9/none.yaml", "0" * 64, tmp_path, timeout=2)


def test_local_directory_source(tmp_path):
    (tmp_path / "b.yaml").write_text("kind: B\n---\n")
    (tmp_path / "a.yaml").write_text("kind: A\n")
    assert [o["kind"] for o in manifests.load(ManifestSource(path=str(tmp_path)))] == ["A", "B"]
