"""Reading raw config values: every problem collected, every message naming its key; and
Kubernetes quantities, which several concerns read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

PROJECT = "kserve-stack"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"),
            "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
            "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}


class ConfigError(ValueError):
    """All config problems found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))



_SI_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_BY_POWER = {10 * i: s for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}


def canonical_quantity(text: Any) -> str | None:
    """The spelling Kubernetes itself gives a quantity when it re-marshals it (apimachinery
    `resource.Quantity`'s canonical form): `0.5` → `500m`, `2048Mi` → `2Gi`, `1000m` → `1`.
    KServe's defaulter re-marshals an InferenceService's resources that way, and the provider
    compares inputs with what the cluster holds, so a non-canonical input diffs on every preview.
    Binary suffixes stay binary for whole numbers of at least 1024; exponent notation stays
    exponent notation; anything else is decimal SI. A quantity keeps at most three decimal
    places: finer ones round up (`0.0001` → `1m`), as Kubernetes documents for Quantity."""
    m = _QUANTITY.match(str(text).strip())
    value = parse_quantity(text)
    if m is None or value is None:
        return None
    exponent, suffix = m.group(3), m.group(4)
    millis = (value * 1000).to_integral_value(rounding="ROUND_CEILING")
    if millis == 0:
        return "0"
    if suffix in _BINARY and millis % 1000 == 0 and abs(value) >= 1024:
        whole = int(value)
        power = max(p for p in _BINARY_BY_POWER if whole % (1 << p) == 0 and p <= 60)
        return f"{whole >> power if whole > 0 else -((-whole) >> power)}{_BINARY_BY_POWER[power]}"
    scale = max(e for e in _SI_SUFFIXES if millis % 10 ** (e + 3) == 0)
    mantissa = int(millis) // 10 ** (scale + 3)
    if exponent:
        return f"{mantissa}e{scale}" if scale else str(mantissa)
    return f"{mantissa}{_SI_SUFFIXES[scale]}"


def parse_quantity(text: Any) -> Decimal | None:
    """A Kubernetes resource quantity as a number, or None when it is not one."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        return None
    sign, number, exponent, suffix = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    if exponent:
        value *= Decimal(10) ** int(exponent[1:])
    elif suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix:
        value *= _DECIMAL[suffix]
    return -value if sign == "-" else value


class Reader:
    """Collects problems while reading raw config values; every message names its key."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{PROJECT}:{key}: {value!r} is not allowed; {allowed}")

    def obj(self, raw: Any, key: str, allowed_keys: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.fail(key, raw, "expected an object")
            return {}
        for unknown in sorted(set(raw) - allowed_keys):
            self.fail(f"{key}.{unknown}", raw[unknown], f"unknown key; known keys: {', '.join(sorted(allowed_keys))}")
        return dict(raw)

    def choice(self, raw: Any, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        if raw is None and default is not None:
            return default
        if raw not in choices:
            self.fail(key, raw, f"allowed: {', '.join(map(str, choices))}")
            return choices[0]
        return raw

    def text(self, raw: Any, key: str, default: str | None = None) -> str | None:
        if raw is None:
            return default
        if not isinstance(raw, str) or not raw.strip():
            self.fail(key, raw, "expected a non-empty string")
            return default
        return raw.strip()

    def integer(self, raw: Any, key: str, default: int, minimum: int = 0) -> int:
        if raw is None:
            return default
        try:
            value = int(str(raw), 10)
        except ValueError:
            self.fail(key, raw, f"expected a whole number >= {minimum}")
            return default
        if value < minimum:
            self.fail(key, raw, f"expected a whole number >= {minimum}")
        return value

    def dns_label(self, raw: Any, key: str, pattern: re.Pattern[str], limit: int, what: str) -> str:
        if not isinstance(raw, str) or len(raw) > limit or not pattern.match(raw):
            self.fail(key, raw, f"must be {what} of at most {limit} characters (lowercase letters, digits, '-')")
        return raw if isinstance(raw, str) else str(raw)




def dns_subdomain(value: Any) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        return False
    return all(DNS1123_LABEL.match(label) and len(label) <= 63 for label in value.split("."))



def boolean(value: Any) -> Any:
    """`pulumi config set --path` stores true/false as strings unless told otherwise."""
    return {"true": True, "false": False}.get(value.lower(), value) if isinstance(value, str) else value

