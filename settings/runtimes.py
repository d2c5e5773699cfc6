"""The ClusterServingRuntimes each supported KServe minor ships, and KServe's choice among them.

The config parser uses this to refuse a model format or protocol no enabled runtime serves, to
refuse a named runtime that cannot serve the model, and to name in the InferenceService the
runtime KServe would pick itself, so what runs is known before `pulumi up`.

Read from the runtimes KServe's charts install, at each release tag of kserve/kserve:
v0.15.2 and v0.16.0 `charts/kserve-resources/templates/clusterservingruntimes.yaml` (released as
the `kserve` chart, which always renders every runtime); v0.17.0, v0.17.1, v0.18.0, v0.18.1,
v0.19.0 and v0.20.0 `charts/kserve-runtime-configs/files/runtimes/resources.yaml`, merged with
`files/runtimes/clusterservingruntimes-patch.yaml` by `templates/runtimes/resources.yaml`. The
patch releases of a minor ship the same runtimes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from settings import versions as v

PROTOCOLS = ("v1", "v2", "grpc-v1", "grpc-v2")
"""In the order of KServe's `constants.ProtocolVersion` values (V1 < V2 < GRPCV1 < GRPCV2), which
orders runtimes before their priority is compared."""


@dataclass(frozen=True)
class ModelFormat:
    """One `spec.supportedModelFormats` entry of a runtime."""

    name: str
    version: str | None = None
    auto_select: bool = False
    priority: int | None = None


@dataclass(frozen=True)
class Runtime:
    """A ClusterServingRuntime as the stack's install of a KServe release leaves it."""

    name: str
    formats: tuple[ModelFormat, ...]
    protocols: tuple[str, ...]
    """`spec.protocolVersions` as the chart lists it; empty means any protocol (KServe
    `IsProtocolVersionSupported`)."""
    multi_node: bool = False
    """Has a `workerSpec`: KServe auto-selects it only for an InferenceService with
    `predictor.workerSpec`, which the stack never sets."""
    disabled: bool = False
    """`spec.disabled: true`: still installed, never used by KServe."""
    shm: bool = False
    """The chart mounts a memory-backed emptyDir at /dev/shm (it counts against the pod's memory)."""
    metadata_env: tuple[tuple[str, str], ...] = ()
    """Container env filled from the InferenceService's labels or annotations: (name, template)."""

    def supports_protocol(self, protocol: str) -> bool:
        return not self.protocols or protocol in self.protocols

    def priority(self, format_name: str) -> int | None:
        """KServe's `GetPriority`: the first entry with that name, whatever its version or autoSelect."""
        return next((f.priority for f in self.formats if f.name == format_name), None)


MLSERVER_MODEL_CLASSES = {
    "sklearn": "mlserver_sklearn.SKLearnModel",
    "xgboost": "mlserver_xgboost.XGBoostModel",
    "lightgbm": "mlserver_lightgbm.LightGBMModel",
    "mlflow": "mlserver_mlflow.MLflowRuntime",
}
"""Format → the `modelClass` label kserve-mlserver reads into MLSERVER_MODEL_IMPLEMENTATION (MLServer's
model `implementation`). KServe v0.15.2 to v0.20.0 pkg/constants/constants.go `MLServerModelClass*`;
`SetMlServerDefaults` (pkg/apis/serving/v1beta1/inference_service_defaults.go) sets the label itself,
overwriting any given, whenever kserve-mlserver serves the model, and falls back to the sklearn class
for other formats. The classes exist in MLServer 1.5.0 (the image every chart pins), exported by
runtimes/{sklearn,xgboost,lightgbm,mlflow}/mlserver_*/__init__.py of SeldonIO/MLServer."""

STACK_DISABLED = frozenset({"kserve-vllmserver"})
"""Runtimes the stack's install leaves disabled: components/kserve_release.py RUNTIMES_VALUES sets
`vllmserver.disabled`, which the chart renders as `spec.disabled: true` on an object it keeps."""


def _auto(name: str, priority: int, *versions: str) -> tuple[ModelFormat, ...]:
    return tuple(ModelFormat(name, version, True, priority) for version in versions)


_V1_V2 = ("v1", "v2")
_ALL = range(min(v.KSERVE_COMPAT), max(v.KSERVE_COMPAT) + 1)
_KSERVE_CHART = range(15, 17)
"""v0.15, v0.16: the runtimes are inside the `kserve` chart."""
_RUNTIMES_CHART = range(17, max(v.KSERVE_COMPAT) + 1)
"""v0.17 on: the `kserve-runtime-configs` chart, whose base file always mounts /dev/shm for the
Hugging Face and vLLM servers (the `devShm` values only add a size limit)."""

_MLSERVER = Runtime(
    "kserve-mlserver",
    _auto("sklearn", 2, "0", "1") + _auto("xgboost", 2, "1", "2") + _auto("lightgbm", 2, "3", "4")
    + _auto("mlflow", 1, "1", "2"),
    ("v2",),
    metadata_env=(("MLSERVER_MODEL_IMPLEMENTATION", "{{.Labels.modelClass}}"),),
)
_TRITON = Runtime(
    "kserve-tritonserver",
    _auto("tensorrt", 1, "8") + _auto("tensorflow", 1, "1", "2") + _auto("onnx", 1, "1")
    + (ModelFormat("pytorch", "1"),) + _auto("triton", 1, "2"),
    ("v2", "grpc-v2"),
)
_HUGGINGFACE = Runtime("kserve-huggingfaceserver", _auto("huggingface", 1, "1"), _V1_V2)
_HUGGINGFACE_MULTINODE = Runtime(
    "kserve-huggingfaceserver-multinode", _auto("huggingface", 2, "1"), _V1_V2, multi_node=True, shm=True,
)

_TABLE: tuple[tuple[range, Runtime], ...] = (
    (range(20, 21), Runtime("kserve-autogluonserver", _auto("autogluon", 1, "1"), _V1_V2)),
    (_KSERVE_CHART, _HUGGINGFACE),
    (_RUNTIMES_CHART, replace(_HUGGINGFACE, protocols=("v2", "v1"), shm=True)),
    (_KSERVE_CHART, _HUGGINGFACE_MULTINODE),
    (_RUNTIMES_CHART, replace(_HUGGINGFACE_MULTINODE, protocols=("v2", "v1"))),
    (_KSERVE_CHART, Runtime("kserve-lgbserver", _auto("lightgbm", 1, "3"), _V1_V2)),
    (_RUNTIMES_CHART, Runtime("kserve-lgbserver", _auto("lightgbm", 1, "4"), _V1_V2)),
    (_ALL, _MLSERVER),
    (_ALL, Runtime("kserve-paddleserver", _auto("paddle", 1, "2"), _V1_V2)),
    (_ALL, Runtime("kserve-pmmlserver", _auto("pmml", 1, "3", "4"), _V1_V2)),
    (_RUNTIMES_CHART, Runtime(
        "kserve-predictiveserver",
        (ModelFormat("sklearn", "1", False, 3), ModelFormat("xgboost", "2", False, 3),
         ModelFormat("lightgbm", "4", False, 3)),
        _V1_V2,
    )),
    (_ALL, Runtime("kserve-sklearnserver", _auto("sklearn", 1, "1"), _V1_V2)),
    (_ALL, Runtime("kserve-tensorflow-serving", _auto("tensorflow", 2, "1", "2"), ("v1", "grpc-v1"))),
    (_ALL, Runtime(
        "kserve-torchserve", _auto("pytorch", 2, "1"), ("v1", "v2", "grpc-v2"),
        metadata_env=(("TS_SERVICE_ENVELOPE", "{{.Labels.serviceEnvelope}}"),),
    )),
    (_ALL, _TRITON),
    (range(20, 21), Runtime("kserve-vllmserver", _auto("vLLM", 1, "1"), (), shm=True)),
    (_KSERVE_CHART, Runtime("kserve-xgbserver", _auto("xgboost", 1, "1"), _V1_V2)),
    (_RUNTIMES_CHART, Runtime("kserve-xgbserver", _auto("xgboost", 1, "2"), _V1_V2)),
)


def _minor(kserve_version: str) -> int:
    v.kserve_release(kserve_version)
    return v.minor_of(kserve_version)[1]


def runtimes(kserve_version: str) -> tuple[Runtime, ...]:
    """Every ClusterServingRuntime the stack's install of that release creates, by name; the ones it
    leaves disabled are marked. Raises ValueError for an unsupported release."""
    minor = _minor(kserve_version)
    return tuple(
        replace(rt, disabled=rt.name in STACK_DISABLED) for minors, rt in _TABLE if minor in minors
    )


def _usable(kserve_version: str) -> tuple[Runtime, ...]:
    """What an InferenceService without `workerSpec` can run on: enabled, single-node runtimes."""
    return tuple(rt for rt in runtimes(kserve_version) if not rt.disabled and not rt.multi_node)


def formats(kserve_version: str) -> tuple[str, ...]:
    """Formats at least one usable runtime serves, when named or auto-selected."""
    return tuple(sorted({f.name for rt in _usable(kserve_version) for f in rt.formats}))


def protocols(kserve_version: str, format: str) -> tuple[str, ...]:
    """Protocols at least one usable runtime serves `format` with, in KServe's protocol order."""
    return tuple(p for p in PROTOCOLS if any(serves(rt, format, p) for rt in _usable(kserve_version)))


def _format_matches(runtime: Runtime, format: str, version: str | None, explicit: bool) -> bool:
    """KServe `RuntimeSupportsModel`: the runtime's label set has `mt:<name>` and `mt:<name>:<version>`
    for each entry (only autoSelect entries unless the runtime is named); the model's label is
    `mt:<name>`, or `mt:<name>:<version>` when it gives a version, which must then match exactly."""
    return any(
        f.name == format and (version is None or f.version == version)
        for f in runtime.formats if explicit or f.auto_select
    )


def serves(runtime: Runtime, format: str, protocol: str, version: str | None = None) -> bool:
    """Whether KServe accepts `runtime` named in `predictor.model.runtime` for this model.

    KServe v0.20.0 pkg/controller/v1beta1/inferenceservice/components/predictor.go `reconcileModel`
    (the same checks since v0.15): a disabled runtime is refused (RuntimeDisabled), then the protocol
    (`IsProtocolVersionSupported`), then the format with every entry counted, autoSelect or not
    (`RuntimeSupportsModel`). It does not check `workerSpec`: a multi-node runtime named for an
    InferenceService without one is accepted and never becomes ready; refuse `multi_node` apart.
    """
    return not runtime.disabled and runtime.supports_protocol(protocol) and _format_matches(
        runtime, format, version, explicit=True)


def _protocol_rank(runtime: Runtime) -> int:
    """KServe `GetProtocolVersionPriority`: the runtime's lowest protocol; none listed ranks last."""
    return min((PROTOCOLS.index(p) for p in runtime.protocols if p in PROTOCOLS), default=len(PROTOCOLS))


def select_runtime(kserve_version: str, format: str, protocol: str, version: str | None = None) -> Runtime | None:
    """The runtime KServe picks for a model with no `runtime` named, or None when it finds none.

    KServe v0.20.0 pkg/apis/serving/v1beta1/predictor_model.go `GetSupportingRuntimes` (unchanged
    since v0.15.2), taking the first result as predictor.go `reconcileModel` does. It keeps runtimes
    that are not disabled, not multi-model, multi-node only if the InferenceService has a
    `workerSpec` (never here), support the protocol, and list the format with autoSelect
    (`RuntimeSupportsModel`). `sortClusterServingRuntimeList` orders them by lowest protocol, then
    newest first, then name; `sortSupportedRuntimeByPriority` then orders them by the priority of the
    first entry with the format's name, highest first, unset last, keeping the order of ties (a
    stable insertion sort for so few runtimes). Creation time is taken as equal, leaving the name; the
    tests check that priority alone decides every choice the shipped runtimes offer (KServe's runtime
    webhook refuses equal priorities for one format version on a shared protocol).

    `protocol` is the InferenceService's `protocolVersion`, which the stack always sets. Unset, KServe
    filters with v1 (`GetProtocol`), except that its webhook first sets v2 for the formats `triton`
    and `vLLM`; the runtime chosen may then set v2 (MLServer, Triton), too late to change the choice.
    Namespace ServingRuntimes, which KServe prefers to cluster ones, are not the stack's.
    """
    candidates = [
        rt for rt in _usable(kserve_version)
        if rt.supports_protocol(protocol) and _format_matches(rt, format, version, explicit=False)
    ]
    candidates.sort(key=lambda rt: (_protocol_rank(rt), rt.name))
    candidates.sort(key=lambda rt: (rt.priority(format) is None, -(rt.priority(format) or 0)))
    return candidates[0] if candidates else None
