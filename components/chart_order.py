"""A Helm post-renderer that orders objects inside one chart.

helm.v4.Chart orders a chart's objects by the `config.kubernetes.io/depends-on` annotation,
which it reads off the rendered manifests, before any Pulumi transform runs; a chart that
does not template that annotation gets it here. The provider runs this file as
`python3 -c <source> KIND=DEPENDS_ON ...` with the rendered chart on stdin, so it uses the
standard library only and edits the YAML as text: Helm's output is block-style YAML with
two-space indents, and `metadata` is a top-level key of every object.
"""

from __future__ import annotations

import sys

ANNOTATION = "config.kubernetes.io/depends-on"


def add_depends_on(rendered: str, rules: dict[str, str]) -> str:
    """Every top-level object whose kind is a key of `rules` gets the annotation with that value."""
    docs = rendered.split("\n---")
    return "\n---".join(_annotate(doc, rules) for doc in docs)


def _annotate(doc: str, rules: dict[str, str]) -> str:
    lines = doc.split("\n")
    kind = next((line[5:].strip().strip("\"'") for line in lines if line.startswith("kind:")), None)
    if kind not in rules:
        return doc
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "metadata:"), None)
    if start is None:
        return doc
    entry = f"    {ANNOTATION}: \"{rules[kind]}\""
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    for i in range(start + 1, end):
        if lines[i].rstrip() == "  annotations:":
            return "\n".join([*lines[:i + 1], entry, *lines[i + 1:]])
        if lines[i].startswith("  annotations:"):  # a flow-style map, e.g. `annotations: {}`
            raise ValueError(f"cannot add {ANNOTATION} to {kind}: flow-style annotations: {lines[i].strip()}")
    return "\n".join([*lines[:start + 1], "  annotations:", entry, *lines[start + 1:]])


def main(argv: list[str]) -> int:
    rules = dict(arg.split("=", 1) for arg in argv)
    sys.stdout.write(add_depends_on(sys.stdin.read(), rules))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
