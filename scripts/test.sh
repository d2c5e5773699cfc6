#!/usr/bin/env bash
# The test command. On a fresh machine it installs everything the tests need: the project
# virtualenv, the model server's virtualenv, and etcd + kube-apiserver built from Go modules
# (both cached outside the repo, keyed by version); then ruff and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/model_env.sh >/dev/null
eval "$(bash scripts/toolchain.sh)"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
