"""The runtime table against the released charts in shared/, and KServe's runtime selection."""

from __future__ import annotations

import pytest

from components.kserve_release import RUNTIMES_VALUES
from settings import runtimes as rt
from settings import versions as v
from tests.runtime_charts import (
    SHARED_RELEASES,
    as_runtime,
    chart_objects,
    stack_values,
)


@pytest.mark.parametrize("version", SHARED_RELEASES)
def test_table_is_what_the_chart_installs(version: str) -> None:
    from_chart = sorted((as_runtime(o) for o in chart_objects(version, stack_values(version))), key=lambda r: r.name)
    assert from_chart
    assert list(rt.runtimes(version)) == from_chart


@pytest.mark.parametrize("version", SHARED_RELEASES)
def test_disabled_flags_come_from_the_stack_values(version: str) -> None:
    with_chart_defaults = {r.name for r in map(as_runtime, chart_objects(version, {})) if r.disabled}
    assert with_chart_defaults == set()
    assert {r.name for r in rt.runtimes(version) if r.disabled} == rt.STACK_DISABLED & {
        r.name for r in rt.runtimes(version)}


def test_vllm_is_rendered_disabled_not_dropped() -> None:
    vllm = [o for o in chart_objects("v0.20.0", RUNTIMES_VALUES) if o["metadata"]["name"] == "kserve-vllmserver"]
    assert len(vllm) == 1 and vllm[0]["spec"]["disabled"] is True
    assert RUNTIMES_VALUES["kserve"]["servingruntime"]["vllmserver"] == {"disabled": True}


def test_every_supported_minor_has_a_table() -> None:
    for minor in v.KSERVE_COMPAT:
        names = {r.name for r in rt.runtimes(f"v0.{minor}.0")}
        assert {"kserve-sklearnserver", "kserve-mlserver", "kserve-tritonserver"} <= names
        assert len(names) == len(rt.runtimes(f"v0.{minor}.0"))
    with pytest.raises(ValueError, match="unsupported KServe version"):
        rt.runtimes("v0.14.0")


def test_release_differences() -> None:
    def versions(kserve: str, runtime: str, fmt: str) -> list[str | None]:
        found = next(r for r in rt.runtimes(kserve) if r.name == runtime)
        return [f.version for f in found.formats if f.name == fmt]

    assert versions("v0.16.0", "kserve-xgbserver", "xgboost") == ["1"]
    assert versions("v0.17.1", "kserve-xgbserver", "xgboost") == ["2"]
    assert versions("v0.16.0", "kserve-lgbserver", "lightgbm") == ["3"]
    assert versions("v0.18.0", "kserve-lgbserver", "lightgbm") == ["4"]
    names = {m: {r.name for r in rt.runtimes(f"v0.{m}.0")} for m in v.KSERVE_COMPAT}
    assert names[17] - names[16] == {"kserve-predictiveserver"}
    assert names[19] == names[17]
    assert names[20] - names[19] == {"kserve-autogluonserver", "kserve-vllmserver"}


@pytest.mark.parametrize(("version", "fmt", "protocol", "expected"), [
    ("v0.20.0", "sklearn", "v1", "kserve-sklearnserver"),
    ("v0.20.0", "sklearn", "v2", "kserve-mlserver"),
    ("v0.15.2", "sklearn", "v2", "kserve-mlserver"),
    ("v0.20.0", "xgboost", "v1", "kserve-xgbserver"),
    ("v0.20.0", "xgboost", "v2", "kserve-mlserver"),
    ("v0.20.0", "lightgbm", "v2", "kserve-mlserver"),
    ("v0.20.0", "mlflow", "v2", "kserve-mlserver"),
    ("v0.20.0", "tensorflow", "v1", "kserve-tensorflow-serving"),
    ("v0.20.0", "tensorflow", "grpc-v1", "kserve-tensorflow-serving"),
    ("v0.20.0", "tensorflow", "v2", "kserve-tritonserver"),
    ("v0.20.0", "pytorch", "v1", "kserve-torchserve"),
    ("v0.20.0", "pytorch", "v2", "kserve-torchserve"),
    ("v0.20.0", "onnx", "v2", "kserve-tritonserver"),
    ("v0.20.0", "huggingface", "v1", "kserve-huggingfaceserver"),
    ("v0.20.0", "huggingface", "v2", "kserve-huggingfaceserver"),
    ("v0.15.2", "huggingface", "v2", "kserve-huggingfaceserver"),
    ("v0.20.0", "autogluon", "v1", "kserve-autogluonserver"),
])
def test_select_runtime(version: str, fmt: str, protocol: str, expected: str) -> None:
    selected = rt.select_runtime(version, fmt, protocol)
    assert selected is not None and selected.name == expected


@pytest.mark.parametrize(("version", "fmt", "protocol"), [
    ("v0.20.0", "caffe", "v1"),
    ("v0.20.0", "onnx", "v1"),
    ("v0.20.0", "mlflow", "v1"),
    ("v0.20.0", "vLLM", "v2"),
    ("v0.19.0", "autogluon", "v1"),
    ("v0.20.0", "SKLearn", "v1"),
])
def test_select_runtime_finds_none(version: str, fmt: str, protocol: str) -> None:
    assert rt.select_runtime(version, fmt, protocol) is None


def test_select_runtime_matches_a_given_format_version_exactly() -> None:
    assert rt.select_runtime("v0.20.0", "xgboost", "v1", version="1") is None
    assert rt.select_runtime("v0.16.0", "xgboost", "v1", version="1").name == "kserve-xgbserver"
    assert rt.select_runtime("v0.20.0", "sklearn", "v2", version="0").name == "kserve-mlserver"
    assert rt.select_runtime("v0.20.0", "sklearn", "v1", version="1.5") is None


def test_not_auto_selected_entries_are_skipped() -> None:
    triton = next(r for r in rt.runtimes("v0.20.0") if r.name == "kserve-tritonserver")
    assert triton.supports_protocol("v2") and not next(f for f in triton.formats if f.name == "pytorch").auto_select
    assert rt.select_runtime("v0.20.0", "pytorch", "v2").name == "kserve-torchserve"
    assert rt.serves(triton, "pytorch", "v2")


def test_multi_node_runtime_is_never_auto_selected() -> None:
    multinode = next(r for r in rt.runtimes("v0.20.0") if r.name == "kserve-huggingfaceserver-multinode")
    assert multinode.multi_node and multinode.shm and not multinode.disabled
    assert multinode.priority("huggingface") == 2
    assert "huggingface" in rt.formats("v0.20.0")


@pytest.mark.parametrize("minor", sorted(v.KSERVE_COMPAT))
def test_priority_decides_every_choice(minor: int) -> None:
    """Where priority ties, KServe's order falls to creation time, which the stack does not control:
    no shipped format/protocol may need it, and every listed pair must have a runtime KServe picks."""
    version = f"v0.{minor}.0"
    for fmt in rt.formats(version):
        for protocol in rt.protocols(version, fmt):
            auto = [r for r in rt.runtimes(version) if not r.disabled and not r.multi_node
                    and r.supports_protocol(protocol) and any(f.name == fmt and f.auto_select for f in r.formats)]
            priorities = [r.priority(fmt) for r in auto]
            assert auto and len(set(priorities)) == len(priorities), (fmt, protocol, [r.name for r in auto])
            assert rt.select_runtime(version, fmt, protocol) is not None


def test_formats_and_protocols() -> None:
    assert rt.formats("v0.20.0") == ("autogluon", "huggingface", "lightgbm", "mlflow", "onnx", "paddle", "pmml",
                                     "pytorch", "sklearn", "tensorflow", "tensorrt", "triton", "xgboost")
    assert "autogluon" not in rt.formats("v0.19.0")
    assert rt.protocols("v0.20.0", "sklearn") == ("v1", "v2")
    assert rt.protocols("v0.20.0", "mlflow") == ("v2",)
    assert rt.protocols("v0.20.0", "tensorflow") == ("v1", "v2", "grpc-v1", "grpc-v2")
    assert rt.protocols("v0.20.0", "pytorch") == ("v1", "v2", "grpc-v2")
    assert rt.protocols("v0.20.0", "vLLM") == ()
    assert rt.protocols("v0.20.0", "caffe") == ()


def test_serves_an_explicit_runtime() -> None:
    by_name = {r.name: r for r in rt.runtimes("v0.20.0")}
    assert rt.serves(by_name["kserve-sklearnserver"], "sklearn", "v2")
    assert not rt.serves(by_name["kserve-sklearnserver"], "xgboost", "v1")
    assert not rt.serves(by_name["kserve-mlserver"], "sklearn", "v1")
    assert rt.serves(by_name["kserve-predictiveserver"], "lightgbm", "v1")
    assert not rt.serves(by_name["kserve-predictiveserver"], "lightgbm", "v1", version="3")
    assert not rt.serves(by_name["kserve-tensorflow-serving"], "tensorflow", "v2")
    assert not rt.serves(by_name["kserve-vllmserver"], "vLLM", "v2")
    assert rt.serves(rt.Runtime("enabled-vllm", by_name["kserve-vllmserver"].formats, ()), "vLLM", "grpc-v1")


def test_mlserver_model_classes_cover_what_mlserver_auto_selects() -> None:
    mlserver = next(r for r in rt.runtimes("v0.20.0") if r.name == "kserve-mlserver")
    assert {f.name for f in mlserver.formats} == set(rt.MLSERVER_MODEL_CLASSES)
    assert mlserver.metadata_env == (("MLSERVER_MODEL_IMPLEMENTATION", "{{.Labels.modelClass}}"),)
    assert all(cls.startswith(f"mlserver_{fmt}.") for fmt, cls in rt.MLSERVER_MODEL_CLASSES.items())


def test_shared_memory() -> None:
    def shm(version: str) -> set[str]:
        return {r.name for r in rt.runtimes(version) if r.shm}

    assert shm("v0.16.0") == {"kserve-huggingfaceserver-multinode"}
    assert shm("v0.17.0") == {"kserve-huggingfaceserver", "kserve-huggingfaceserver-multinode"}
    assert shm("v0.20.0") == {"kserve-huggingfaceserver", "kserve-huggingfaceserver-multinode", "kserve-vllmserver"}

