#!/usr/bin/env bash
# The test command: sets up everything the tests need on a fresh machine (cached outside
# the repo, keyed by version), then runs ruff and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/model_env.sh >/dev/null
if [[ -f scripts/toolchain.sh ]]; then
  eval "$(bash scripts/toolchain.sh)"
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
