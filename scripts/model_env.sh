#!/usr/bin/env bash
# The model server's own virtualenv: the real KServe Python server at the version the stack
# pins, with the scikit-learn its sklearn runtime pins. It lives apart from .venv so the
# runtime's pins never move with Pulumi's (grpcio, protobuf), in the cache outside the repo,
# keyed by versions.
# Prints the virtualenv's python on its last line.
set -euo pipefail
KSERVE_VERSION=0.20.0
SKLEARN_VERSION=1.5.2
cache="${KSERVE_STACK_CACHE:-$HOME/.cache/kserve-stack}"
venv="$cache/venvs/kserve-$KSERVE_VERSION-sklearn-$SKLEARN_VERSION-py$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if [[ ! -f "$venv/.complete" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kserve==$KSERVE_VERSION" "scikit-learn==$SKLEARN_VERSION" joblib
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
