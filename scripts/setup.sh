#!/usr/bin/env bash
# The one set-up command: the project virtualenv (.venv, named in Pulumi.yaml) with the
# program's dependencies. `--dev` adds what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
if [[ "${1:-}" == "--dev" ]]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
fi
