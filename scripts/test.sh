#!/usr/bin/env bash
# The test command. On a fresh machine it installs everything the tests need: the project
# virtualenv, the model server's virtualenv, busybox (the smoke-test Job's shell and wget), and
# the Kubernetes control plane and the Pulumi engine built from Go modules (cached outside the
# repo, keyed by version); then ruff and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v busybox >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get install -y -qq busybox >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq busybox; }
  else
    echo "test: install busybox (the smoke-test script runs under it)" >&2
  fi
fi
bash scripts/setup.sh --dev
bash scripts/model_env.sh >/dev/null
bash scripts/mlserver_env.sh >/dev/null
eval "$(bash scripts/toolchain.sh)"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
