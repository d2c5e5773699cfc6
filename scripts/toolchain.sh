#!/usr/bin/env bash
# Builds, from Go modules only, the tools the tests need that no package registry ships as a
# binary: the real Kubernetes control plane the integration tests run on loopback (etcd,
# kube-apiserver, kube-controller-manager) and actionlint for the workflow files. Output goes
# to a cache outside the repo, one directory per tool and version, reused when present.
#
#   bash scripts/toolchain.sh         build what is missing, then print `export` lines
#   bash scripts/toolchain.sh --env   print the `export` lines only if everything is built (else exit 1)
#
# Use: eval "$(bash scripts/toolchain.sh)"  → KSERVE_STACK_K8S_BIN=<dir with the three binaries>,
# and actionlint on PATH.
# Set KSERVE_STACK_K8S_BIN yourself to use binaries you already have.
set -euo pipefail

KUBERNETES_VERSION=v1.34.4   # KServe v0.20 CI runs Kubernetes 1.34
ETCD_VERSION=v3.6.16
ACTIONLINT_VERSION=v1.7.12

cache="${KSERVE_STACK_CACHE:-$HOME/.cache/kserve-stack}/toolchain"
bin="$cache/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION/bin"
lint_bin="$cache/actionlint-$ACTIONLINT_VERSION/bin"

say() { echo "toolchain: $*" >&2; }
complete() {
  [[ -x "$bin/etcd" && -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$lint_bin/actionlint" ]]
}
print_env() {
  echo "export KSERVE_STACK_K8S_BIN='$bin'"
  echo "export PATH='$lint_bin':\"\$PATH\""
}

if [[ "${1:-}" == "--env" ]]; then
  complete || { say "not built; run: bash scripts/toolchain.sh"; exit 1; }
  print_env
  exit 0
fi

build_etcd() {
  local work="$cache/src/etcd-$ETCD_VERSION"
  mkdir -p "$work" "$bin"
  cd "$work"
  [[ -f go.mod ]] || go mod init local/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go build -trimpath -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kubernetes() {
  local work="$cache/src/kubernetes-$KUBERNETES_VERSION"
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$work" "$bin"
  cd "$work"
  if [[ ! -f go.mod ]]; then
    go mod init local/kubernetes >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # paths; point each at its published release instead.
    go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null
    local mod
    mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
    grep -oE '^\s+k8s\.io/[a-z0-9-]+ => \./staging' "$mod" | awk '{print $1}' | sort -u | while read -r m; do
      go mod edit -replace="$m=$m@$staging"
    done
    printf 'package main\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n)\n\nfunc main() {}\n' > deps.go
    go mod tidy >&2
    rm deps.go
  fi
  for cmd in kube-apiserver kube-controller-manager; do
    go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
      -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" && mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_actionlint() {
  mkdir -p "$lint_bin"
  GOBIN="$lint_bin" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

if ! complete; then
  command -v go >/dev/null || { say "Go is needed to build the toolchain"; exit 1; }
  start=$SECONDS
  [[ -x "$bin/etcd" ]] || { say "building etcd $ETCD_VERSION"; (build_etcd); say "etcd: $((SECONDS - start)) s"; }
  start=$SECONDS
  if [[ ! -x "$bin/kube-apiserver" || ! -x "$bin/kube-controller-manager" ]]; then
    say "building kube-apiserver, kube-controller-manager $KUBERNETES_VERSION"
    (build_kubernetes)
    say "kubernetes: $((SECONDS - start)) s"
  fi
  start=$SECONDS
  [[ -x "$lint_bin/actionlint" ]] || { say "building actionlint $ACTIONLINT_VERSION"; (build_actionlint)
                                       say "actionlint: $((SECONDS - start)) s"; }
fi
print_env
