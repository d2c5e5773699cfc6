#!/usr/bin/env bash
# The one set-up command: the project virtualenv (.venv, named in Pulumi.yaml) with the
# program's dependencies and, when the Pulumi CLI is installed, the local state backend
# and both stacks. `--dev` adds what the tests need and skips the stacks.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
if [[ "${1:-}" == "--dev" ]]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  exit 0
fi
if ! command -v pulumi >/dev/null; then
  echo "setup: install the Pulumi CLI, then run this again to create the stacks" >&2
  exit 0
fi
if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
  mkdir -p "$HOME/.pulumi-kserve-stack"  # the file backend named in Pulumi.yaml
fi
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  echo "setup: export PULUMI_CONFIG_PASSPHRASE (stack secrets use the passphrase provider)" >&2
  exit 1
fi
for stack in serverless standard; do
  pulumi stack select --create --secrets-provider passphrase --non-interactive "$stack"
done
