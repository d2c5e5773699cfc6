"""Remote manifests: downloaded once per checksum into a cache outside the project, verified, reused.

`yaml.v2.ConfigFile(file=<url>)` would download on every preview and trust whatever came
back; here a pinned sha256 decides, and later previews read the cached copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from settings.versions import ManifestSource


class ManifestError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("KSERVE_STACK_CACHE", Path.home() / ".cache" / "kserve-stack")) / "manifests"


def fetch_file(url: str, sha256: str, cache: Path | None = None, timeout: float = 60) -> bytes:
    """One pinned file: from the cache when its checksum still matches, else downloaded and checked."""
    cache = cache or cache_dir()
    cached = cache / f"{sha256}.yaml"
    if cached.exists() and hashlib.sha256(cached.read_bytes()).hexdigest() == sha256:
        return cached.read_bytes()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except OSError as err:
        raise ManifestError(f"{url}: download failed: {err}") from err
    digest = hashlib.sha256(body).hexdigest()
    if digest != sha256:
        raise ManifestError(f"{url}: sha256 {digest} does not match the pinned {sha256}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
        tmp.write(body)
    os.replace(tmp.name, cached)
    return body


def load(source: ManifestSource, cache: Path | None = None) -> list[dict[str, Any]]:
    """The manifest's objects in file order, without empty documents."""
    if source.path:
        path = Path(source.path)
        bodies = [p.read_bytes() for p in sorted(path.glob("*.yaml"))] if path.is_dir() else [path.read_bytes()]
    else:
        bodies = [fetch_file(url, sha256, cache) for url, sha256 in source.files]
    return [doc for body in bodies for doc in yaml.load_all(body, Loader=SAFE_LOADER) if doc]


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's libyaml-backed safe loader where the wheel has it: the Gateway API CRDs (1 MB) take
0.6 s to parse in pure Python on every preview, 0.04 s with libyaml."""
