"""The ClusterServingRuntimes each released KServe chart in shared/ renders, read without Helm:
a minimal renderer for the templates' `if`/`with`, `toYaml` and value lookups, and the runtimes
chart's own merge of its base file and patch (charts/kserve-runtime-configs templates/_utils.tpl).
The one reader of the charts for tests: the runtime table's (tests/settings) and the
`kserve-mlserver` container the MLServer tests start (tests/model)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from components.kserve_release import RUNTIMES_VALUES
from settings import runtimes as rt
from settings import versions as v
from tests.conftest import SHARED_DIR

CHARTS = SHARED_DIR / "upstream-charts"

_DIRECTIVE = re.compile(r"^\s*\{\{-?\s*(.*?)\s*-?\}\}\s*$")
_ACTION = re.compile(r'\{\{-?\s*("[^"]*"|.*?)\s*-?\}\}')
_TO_YAML = re.compile(r"toYaml \. \| nindent (\d+)")


def _lookup(values: dict[str, Any], expr: str) -> Any:
    assert expr.startswith(".Values."), f"no rendering for {expr!r}"
    node: Any = values
    for key in expr.removeprefix(".Values.").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _text(value: Any) -> str:
    """As Helm prints a value: a missing one as nothing, a bool in lower case."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _scalar(values: dict[str, Any], dot: Any, expr: str) -> str:
    if expr.startswith('"') and expr.endswith('"'):
        return expr[1:-1]
    if expr == ".":
        return _text(dot)
    first, _, fallback = expr.partition("| default")
    value = _lookup(values, first.strip())
    if fallback.strip() and not value:
        value = _lookup(values, fallback.strip())
    return _text(value)


def render(template: str, values: dict[str, Any]) -> str:
    """Just enough of Helm for these runtime templates: `if`/`with` on a `.Values` path (`.` inside
    a `with` is its value), `toYaml . | nindent N`, `.Values` lookups (with `| default`), `.` and
    quoted literals. Any other action fails, so a chart that needs more is not misread."""
    lines: list[str] = []
    scopes: list[tuple[bool, Any]] = []  # each open `if`/`with`: whether its body renders, what `.` is in it
    for line in template.splitlines():
        shown = all(s for s, _ in scopes)
        dot = scopes[-1][1] if scopes else None
        if m := _DIRECTIVE.match(line):
            keyword, _, arg = m[1].partition(" ")
            if keyword in ("if", "with"):
                found = _lookup(values, arg.strip())
                scopes.append((bool(found), found if keyword == "with" else dot))
            elif keyword == "end":
                scopes.pop()
            elif n := _TO_YAML.fullmatch(m[1]):
                if shown:
                    lines += [" " * int(n[1]) + y for y in yaml.safe_dump(dot).splitlines()]
            elif not m[1].startswith("/*"):
                raise AssertionError(f"no rendering for {line.strip()!r}")
            continue
        if shown:
            lines.append(_ACTION.sub(lambda a, dot=dot: _scalar(values, dot, a[1]), line))
    assert not scopes, "an `if`/`with` is never closed"
    return "\n".join(lines)


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge_values(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def deep_merge(base: Any, patch: Any) -> Any:
    """kserve-runtime-configs templates/_utils.tpl `kserve-common.deepMerge`: maps recursively, lists
    of named maps by name (base order, new ones after), any other list replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: deep_merge(base[k], p) if k in base else p for k, p in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and patch and isinstance(patch[0], dict) \
            and "name" in patch[0]:
        by_name = {p["name"]: p for p in patch}
        merged = [deep_merge(b, by_name[b["name"]]) if b["name"] in by_name else b for b in base]
        return merged + [p for p in patch if p["name"] not in {b["name"] for b in base}]
    return patch


def chart_objects(kserve_version: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The ClusterServingRuntimes the chart of that release renders with the given values."""
    if v.kserve_release(kserve_version).runtimes_chart is None:
        chart = CHARTS / kserve_version / "kserve"
        values = merge_values(yaml.safe_load((chart / "values.yaml").read_text()), overrides)
        text = render((chart / "templates" / "clusterservingruntimes.yaml").read_text(), values)
        return [d for d in yaml.safe_load_all(text) if d]
    chart = CHARTS / kserve_version / "kserveRuntimes"
    values = merge_values(yaml.safe_load((chart / "values.yaml").read_text()), overrides)
    if not values["kserve"]["servingruntime"]["enabled"]:
        return []
    base = {d["metadata"]["name"]: d for d in yaml.safe_load_all((chart / "files/runtimes/resources.yaml").read_text())
            if d}
    patch = render((chart / "files/runtimes/clusterservingruntimes-patch.yaml").read_text(), values)
    for doc in yaml.safe_load_all(patch):
        if doc:
            name = doc["metadata"]["name"]
            base[name] = deep_merge(base[name], doc) if name in base else doc
    return list(base.values())


def as_runtime(obj: dict[str, Any]) -> rt.Runtime:
    assert obj["kind"] == "ClusterServingRuntime"
    spec = obj["spec"]
    assert not spec.get("multiModel")
    container = next(c for c in spec["containers"] if c["name"] == "kserve-container")
    return rt.Runtime(
        name=obj["metadata"]["name"],
        formats=tuple(rt.ModelFormat(f["name"], f.get("version"), bool(f.get("autoSelect")), f.get("priority"))
                      for f in spec["supportedModelFormats"]),
        protocols=tuple(spec.get("protocolVersions") or ()),
        multi_node="workerSpec" in spec,
        disabled=bool(spec.get("disabled")),
        shm=any(m["mountPath"] == "/dev/shm" for m in container.get("volumeMounts") or ()),
        metadata_env=tuple((e["name"], e["value"]) for e in container.get("env") or ()
                           if re.search(r"\{\{\s*\.(Labels|Annotations)\.", str(e.get("value")))),
    )


def stack_values(kserve_version: str) -> dict[str, Any]:
    """The runtime values the stack passes: RUNTIMES_VALUES to kserve-runtime-configs; none that touch
    runtimes to the v0.15/v0.16 `kserve` chart."""
    return RUNTIMES_VALUES if v.kserve_release(kserve_version).runtimes_chart else {}


SHARED_RELEASES = ("v0.15.2", "v0.16.0", "v0.20.0")
