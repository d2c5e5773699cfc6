#!/usr/bin/env bash
# MLServer's own virtualenv: the MLServer that KServe's `kserve-mlserver` runtime runs
# (image seldonio/mlserver:1.5.0), with its xgboost and lightgbm runtimes at the same version
# and the libraries that image was built with (MLServer 1.5.0's poetry.lock, which its
# Dockerfile installs as constraints). Apart from .venv and the KServe one, since MLServer 1.5
# needs pydantic 1; in the cache outside the repo, keyed by versions.
# Prints the virtualenv's python on its last line.
set -euo pipefail
MLSERVER_VERSION=1.5.0
XGBOOST_VERSION=2.0.3
LIGHTGBM_VERSION=4.3.0
# The rest of the image's lock that the runtimes' answers or MLServer's start depend on.
PINS=(
  scikit-learn==1.4.1.post1 numpy==1.26.4 pandas==2.2.1 scipy==1.12.0
  pydantic==1.10.14 fastapi==0.110.0 starlette==0.36.3 uvicorn==0.27.1
  grpcio==1.62.0 protobuf==3.20.3 orjson==3.9.15 uvloop==0.19.0
)
cache="${KSERVE_STACK_CACHE:-$HOME/.cache/kserve-stack}"
py="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
venv="$cache/venvs/mlserver-$MLSERVER_VERSION-xgboost-$XGBOOST_VERSION-lightgbm-$LIGHTGBM_VERSION-py$py"
if [[ ! -f "$venv/.complete" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "mlserver==$MLSERVER_VERSION" "mlserver-xgboost==$MLSERVER_VERSION" "mlserver-lightgbm==$MLSERVER_VERSION" \
    "xgboost==$XGBOOST_VERSION" "lightgbm==$LIGHTGBM_VERSION" "${PINS[@]}"
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
