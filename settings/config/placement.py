"""Where a model's pods may run: `nodeSelector` and `tolerations`, as a PodSpec takes them. A GPU
request alone finds a node with a free GPU, but not a pool tainted for GPUs, nor one GPU kind
among several."""

from __future__ import annotations

import re
from typing import Any

from settings.config.reader import Reader

LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
DNS_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
OPERATORS = ("Equal", "Exists")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def label_key(text: str) -> bool:
    """A qualified name, `[prefix/]name` (k8s.io/apimachinery validation.IsQualifiedName)."""
    prefix, _, name = text.rpartition("/")
    if "/" in text and (not prefix or len(prefix) > 253 or not DNS_PREFIX.match(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(LABEL_NAME.match(name))


def read_node_selector(r: Reader, key: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.fail(f"{key}.nodeSelector", raw, "expected an object of node label: value, e.g. "
               "{cloud.google.com/gke-accelerator: nvidia-l4}")
        return {}
    out = {}
    for label, value in raw.items():
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if not label_key(str(label)):
            r.fail(f"{key}.nodeSelector", label, "expected a label key, [prefix/]name")
        elif text is None or len(text) > 63 or not LABEL_NAME.match(text):
            r.fail(f"{key}.nodeSelector.{label}", value, "expected a label value (at most 63 letters, digits, "
                   "'-', '_', '.', starting and ending with a letter or digit)")
        else:
            out[str(label)] = text
    return out


def read_tolerations(r: Reader, key: str, raw: Any) -> tuple[dict[str, Any], ...]:
    """As the API server's validation would refuse them (pkg/apis/core/validation ValidateTolerations)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.fail(f"{key}.tolerations", raw, "expected a list of {key, operator, value, effect}")
        return ()
    out = []
    for i, item in enumerate(raw):
        at = f"{key}.tolerations[{i}]"
        data = r.obj(item, at, TOLERATION_KEYS)
        if not isinstance(item, dict):
            continue
        operator = r.choice(data.get("operator"), f"{at}.operator", OPERATORS, "Equal")
        effect = r.choice(data.get("effect"), f"{at}.effect", EFFECTS) if "effect" in data else None
        label = data.get("key")
        if label is not None and not label_key(str(label)):
            r.fail(f"{at}.key", label, "expected a taint key, [prefix/]name")
        if label is None and operator != "Exists":
            r.fail(f"{at}.operator", operator, "a toleration without key matches every taint only with Exists")
        if operator == "Exists" and data.get("value") not in (None, ""):
            r.fail(f"{at}.value", data["value"], "Exists matches any value: leave value out")
        toleration: dict[str, Any] = {k: str(data[k]) for k in ("key", "value") if data.get(k) is not None}
        toleration["operator"] = operator
        if effect:
            toleration["effect"] = effect
        if "tolerationSeconds" in data:
            toleration["tolerationSeconds"] = r.integer(data["tolerationSeconds"], f"{at}.tolerationSeconds", 0)
            if effect != "NoExecute":
                r.fail(f"{at}.tolerationSeconds", data["tolerationSeconds"], "only goes with effect NoExecute")
        out.append(toleration)
    return tuple(out)
