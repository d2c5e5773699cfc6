"""Deterministic readiness gates, expressed as pulumi-kubernetes await annotations.

pulumi-kubernetes waits for Deployments, Jobs and Services on its own, but not for CRDs,
webhook CA bundles or custom resources. These annotations close that gap, so a layer only
counts as done when what the next layer needs is really there. With readiness `skip`
(render-and-apply environments with no pods) every await is switched off instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pulumi

WAIT_FOR = "pulumi.com/waitFor"
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT = "pulumi.com/timeoutSeconds"
REPLACE_UNREADY = "pulumi.com/replaceUnready"
CA_BUNDLE = "jsonpath={.webhooks[*].clientConfig.caBundle}"
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def await_annotations(waits: bool, wait_for: str | None = None, timeout: int | None = None) -> dict[str, str]:
    """Annotations for an object the stack creates itself."""
    if not waits:
        return {SKIP_AWAIT: "true"}
    out: dict[str, str] = {}
    if wait_for:
        out[WAIT_FOR] = wait_for
    if timeout:
        out[TIMEOUT] = str(timeout)
    return out


def job_annotations(waits: bool, timeout: int) -> dict[str, str]:
    """A Job's: besides its wait, a Job that failed once (a slow image pull, a gateway still
    starting) is replaced on the next `up` instead of re-awaited forever: without
    `replaceUnready` the provider's Diff sees no change and the engine waits on the same dead Job
    (pulumi-kubernetes provider/pkg/provider/provider.go, Diff)."""
    out = await_annotations(waits, timeout=timeout)
    return {**out, REPLACE_UNREADY: "true"} if waits else out


def gate_for(kind: str, name: str, webhooks: Iterable[str]) -> str | None:
    """The condition a rendered object must reach before dependents may start."""
    if kind == "CustomResourceDefinition":
        return "condition=Established"
    if kind in WEBHOOK_KINDS and name in set(webhooks):
        return CA_BUNDLE
    return None


def annotate_object(obj: Mapping[str, Any], waits: bool, webhooks: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of a manifest object with the readiness annotation it needs."""
    out = dict(obj)
    metadata = dict(out.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    if not waits:
        annotations[SKIP_AWAIT] = "true"
    else:
        gate = gate_for(str(out.get("kind")), str(metadata.get("name")), webhooks)
        if gate:
            annotations[WAIT_FOR] = gate
    metadata["annotations"] = annotations
    out["metadata"] = metadata
    return out


def chart_transform(waits: bool, webhooks: Iterable[str] = ()) -> pulumi.ResourceTransform:
    """A transform for a chart's rendered children: CRDs wait for Established, the named
    webhook configurations for their CA bundle (a webhook without one rejects every call)."""
    names = frozenset(webhooks)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not args.type_.startswith("kubernetes:"):
            return None
        props = dict(args.props)
        kind = args.type_.rsplit(":", 1)[-1]
        metadata = props.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            return None
        if not waits:
            annotation = {SKIP_AWAIT: "true"}
        else:
            gate = gate_for(kind, str(metadata.get("name")), names)
            if gate is None:
                return None
            annotation = {WAIT_FOR: gate}
        props["metadata"] = {**metadata, "annotations": {**(metadata.get("annotations") or {}), **annotation}}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform
