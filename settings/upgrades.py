"""Which changes a deployed stack can take in place: the previous `up`'s outputs against the
new config, checked before a single resource is registered.

Users upgrade by changing `versions`. Some paths cannot be done in place without losing what
they depend on, because an upstream controller refuses them after the stack has moved on; those
are refused here, naming the key, the deployed and the wanted value, and the way that works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from settings import versions as v

LEGACY_MODE_STATUS_FIXED = 19
"""The first KServe minor whose validating webhook compares an update's deploymentMode with the
stored status after translating the legacy strings (kserve#5427, inference_service_validation.go
`validateDeploymentMode`). Before it, an InferenceService created by v0.15 (status
`RawDeployment`/`Serverless`) is refused on every update once the new release writes `Standard`
or `Knative` (kserve#4798, #5885), and v0.16 has no other spelling: upgrade it in place from
v0.15 only to v0.19 or later."""

CANONICAL_MODES = 16
"""The first KServe minor that writes `Standard`/`Knative` (settings/versions, `kserve_release`)."""

KNATIVE_MINOR_STEP = 1
"""The Knative Operator moves a KnativeServing at most one minor per change, up or down
(knative/operator pkg/reconciler/common/releases.go, `IsVersionValidMigrationEligible`)."""

CHART_SPLIT = 17
"""The first KServe minor with `kserve-resources` + `kserve-runtime-configs`, whose `kserve-crd`
no longer ships the LocalModel CRDs (they moved to `kserve-localmodel-crd`)."""

LOCAL_MODEL_CRDS = (
    "localmodelcaches.serving.kserve.io",
    "localmodelnodegroups.serving.kserve.io",
    "localmodelnodes.serving.kserve.io",
)
"""In `kserve-crd` up to v0.16. An upgrade past the split keeps them as they are, managed by the
stack (deleting a CRD deletes every object of its kind)."""


ALL_LAYERS = {"standard": ("certManager", "gatewayApi", "istio"), "serverless": ("certManager", "istio", "knative")}


@dataclass(frozen=True)
class Deployed:
    """What the previous `up` of this stack installed, read from its outputs (empty on a new stack)."""

    mode: str | None = None
    kserve: str | None = None
    knative_serving: str | None = None
    kept_crds: tuple[str, ...] = ()
    installed_layers: tuple[str, ...] = ()
    """The shared layers the stack installed, by their `install` key."""
    bare_models: tuple[tuple[str, str], ...] = ()
    """(name, namespace) of each model deployed under its bare name (settings.config.models)."""

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any] | None) -> Deployed:
        outputs = outputs or {}
        versions = outputs.get("versions") if isinstance(outputs.get("versions"), Mapping) else {}
        kept = outputs.get("kept_crds")
        layers = outputs.get("installed_layers")
        if not isinstance(layers, list | tuple):  # deployed before `install`: it installed every layer
            layers = ALL_LAYERS.get(outputs.get("mode"), ())
        return cls(
            mode=outputs.get("mode"),
            kserve=outputs.get("kserve_version"),
            knative_serving=versions.get("knativeServing"),
            kept_crds=tuple(kept) if isinstance(kept, list | tuple) else (),
            installed_layers=tuple(layers),
            bare_models=_bare_models(outputs),
        )


NEW_STACK = Deployed()


def _bare_models(outputs: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A `models` key without a namespace is a model under its bare name; a stack deployed before
    `models` had one model, under its bare name, in the namespace of its internal URL
    (`http://<name>-predictor.<namespace>.svc…`)."""
    models = outputs.get("models")
    if isinstance(models, Mapping):
        return tuple((key, entry["namespace"]) for key, entry in models.items()
                     if "/" not in key and isinstance(entry, Mapping) and isinstance(entry.get("namespace"), str))
    url = outputs.get("internal_predict_url")
    if isinstance(url, str) and "-predictor." in url:
        host = url.split("://", 1)[-1].split("/", 1)[0]
        service, _, rest = host.partition(".")
        return ((service.removesuffix("-predictor"), rest.split(".", 1)[0]),)
    return ()


def kept_crds(deployed: Deployed, kserve: str) -> tuple[str, ...]:
    """CRDs an earlier release installed that the wanted one no longer ships, kept as they are."""
    if v.minor_of(kserve)[1] < CHART_SPLIT:
        return ()
    kept = set(deployed.kept_crds)
    parsed = v.parse_version(deployed.kserve or "")
    if parsed and parsed[1] < CHART_SPLIT:
        kept |= set(LOCAL_MODEL_CRDS)
    return tuple(sorted(kept))


def problems(deployed: Deployed, mode: str, kserve: str, knative_serving: str,
             not_installed: tuple[str, ...] = ()) -> list[tuple[str, Any, str]]:
    """(key, wanted value, why not and what is allowed) for each change the deployed stack cannot
    take in place. `not_installed`: the layers config says the cluster runs (`install: false`)."""
    out: list[tuple[str, Any, str]] = []
    for layer in sorted(set(not_installed) & set(deployed.installed_layers)):
        out.append((f"install.{layer}", False, f"this stack installed {layer}, and an `up` without it deletes it and "
                    "all that uses it; to hand it over to the cluster, first remove its resources from the stack's "
                    "state (`pulumi state delete <urn>` for each; the cluster keeps them), or keep true"))
    if deployed.mode and deployed.mode != mode:
        out.append(("mode", mode, f"this stack is deployed as {deployed.mode!r} and KServe refuses to change an "
                    "InferenceService's deployment mode; deploy the other mode as a stack of its own"))
    old, new = v.parse_version(deployed.kserve or ""), v.parse_version(kserve)
    if old and new:
        if new[:2] < old[:2]:
            out.append(("versions.kserve", kserve, f"the stack runs {deployed.kserve} and downgrades are refused "
                        "(the newer CRDs and controller have rewritten what the cluster stores); allowed: "
                        f"v{old[0]}.{old[1]}.0 or later"))
        elif old[1] < CANONICAL_MODES <= new[1] < LEGACY_MODE_STATUS_FIXED:
            out.append(("versions.kserve", kserve, f"the stack runs {deployed.kserve}, and KServe before "
                        f"v0.{LEGACY_MODE_STATUS_FIXED} refuses every update of an InferenceService that v0.15 "
                        "created (its status keeps RawDeployment/Serverless: kserve#4798, #5885); allowed: "
                        f"v0.{LEGACY_MODE_STATUS_FIXED}.0 or later"))
    if mode == "serverless" and deployed.knative_serving:
        old_minor, new_minor = _minor(deployed.knative_serving), _minor(knative_serving)
        if old_minor and new_minor and abs(new_minor[1] - old_minor[1]) > KNATIVE_MINOR_STEP:
            out.append(("versions.knativeServing", knative_serving,
                        f"the stack runs Serving {deployed.knative_serving} and the Knative Operator moves it one "
                        f"minor per change; allowed: {old_minor[0]}.{old_minor[1] - 1} to "
                        f"{old_minor[0]}.{old_minor[1] + 1} (one `up` per minor, with a `versions.knative` "
                        "that bundles it)"))
    return out


def _minor(text: str) -> tuple[int, int] | None:
    parsed = v.parse_version(text) or v.parse_version(f"{text}.0")
    return parsed[:2] if parsed else None
