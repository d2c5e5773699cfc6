#!/usr/bin/env bash
# Builds, from Go modules only, the tools the tests need that no package registry this
# project reaches ships as a binary:
#   - the Kubernetes control plane the integration tests run on loopback (etcd,
#     kube-apiserver, kube-controller-manager, kube-scheduler), and KWOK, the Kubernetes
#     SIG's kubelet stand-in, so its pods turn Ready and its Jobs complete;
#   - the real Pulumi engine: the CLI, the Python language host and the kubernetes resource
#     provider, which the engine tests drive exactly as a user's `pulumi up` would;
#   - actionlint for the workflow files.
# Each tool is built in a throwaway wrapper module (so one tool's requirements never move
# another's) into a cache outside the repo, one directory per tool and version, reused when
# present.
#
#   bash scripts/toolchain.sh         build what is missing, then print `export` lines
#   bash scripts/toolchain.sh --env   print the `export` lines only if everything is built (else exit 1)
#
# Use: eval "$(bash scripts/toolchain.sh)"  →
#   KSERVE_STACK_K8S_BIN        dir with etcd, kube-apiserver, kube-controller-manager,
#                               kube-scheduler
#   KSERVE_STACK_KWOK           dir with kwok and stages.yaml, its pod and node stages
#   KSERVE_STACK_PULUMI_BIN     dir with pulumi, pulumi-language-python(-exec)
#   KSERVE_STACK_K8S_PROVIDER   the pulumi-resource-kubernetes binary
#   KSERVE_STACK_K8S_PROVIDER_VERSION  the release that binary was built from
#   and actionlint on PATH.
set -euo pipefail

KUBERNETES_VERSION=v1.34.4   # KServe v0.20 CI runs Kubernetes 1.34
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
ACTIONLINT_VERSION=v1.7.12
PULUMI_VERSION=v3.274.1
# The language host left the sdk module after v3.79.0, and its own module is not served by
# the Go module proxy; v3.79.0's host speaks the protocol the v3.274 engine uses.
PULUMI_LANGUAGE_PYTHON_SDK=v3.79.0
# pulumi-kubernetes publishes no provider/v4 tags; this pseudo-version is the only provider
# commit the proxy serves (the 4.25.0-alpha.1768448096 build).
K8S_PROVIDER_MODULE=v4.0.0-20260115033456-f47bc2d6f199
K8S_PROVIDER_VERSION=4.25.0-alpha.1768448096
K8S_PROVIDER_SDK=v4.25.0

cache="${KSERVE_STACK_CACHE:-$HOME/.cache/kserve-stack}/toolchain"
bin="$cache/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION/bin"
lint_bin="$cache/actionlint-$ACTIONLINT_VERSION/bin"
kwok_bin="$cache/kwok-$KWOK_VERSION/bin"
pulumi_bin="$cache/pulumi-$PULUMI_VERSION-python-$PULUMI_LANGUAGE_PYTHON_SDK/bin"
provider_bin="$cache/pulumi-kubernetes-$K8S_PROVIDER_VERSION/bin"

say() { echo "toolchain: $*" >&2; }
K8S_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler)
have_k8s_commands() { local cmd; for cmd in "${K8S_COMMANDS[@]}"; do [[ -x "$bin/$cmd" ]] || return 1; done; }
have_k8s() { [[ -x "$bin/etcd" ]] && have_k8s_commands; }
have_kwok() { [[ -x "$kwok_bin/kwok" && -f "$kwok_bin/stages.yaml" ]]; }
have_pulumi() { [[ -x "$pulumi_bin/pulumi" && -x "$pulumi_bin/pulumi-language-python" && -x "$pulumi_bin/pulumi-language-python-exec" ]]; }
have_provider() { [[ -x "$provider_bin/pulumi-resource-kubernetes" ]]; }
have_lint() { [[ -x "$lint_bin/actionlint" ]]; }
complete() { have_k8s && have_kwok && have_pulumi && have_provider && have_lint; }
print_env() {
  echo "export KSERVE_STACK_K8S_BIN='$bin'"
  echo "export KSERVE_STACK_KWOK='$kwok_bin'"
  echo "export KSERVE_STACK_PULUMI_BIN='$pulumi_bin'"
  echo "export KSERVE_STACK_K8S_PROVIDER='$provider_bin/pulumi-resource-kubernetes'"
  echo "export KSERVE_STACK_K8S_PROVIDER_VERSION='$K8S_PROVIDER_VERSION'"
  echo "export PATH='$lint_bin':\"\$PATH\""
}

if [[ "${1:-}" == "--env" ]]; then
  complete || { say "not built; run: bash scripts/toolchain.sh"; exit 1; }
  print_env
  exit 0
fi

wrapper() {  # wrapper <name>: a fresh module directory for one tool, as the working directory
  local work="$cache/src/$1"
  rm -rf "$work"
  mkdir -p "$work"
  cd "$work"
  go mod init "local/$1" >/dev/null 2>&1
}

build_etcd() {
  wrapper "etcd-$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  mkdir -p "$bin"
  go build -trimpath -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kubernetes() {
  local staging="v0.${KUBERNETES_VERSION#v1.}" mod
  wrapper "kubernetes-$KUBERNETES_VERSION"
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
  # paths; point each at its published release instead.
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null
  mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
  grep -oE '^\s+k8s\.io/[a-z0-9-]+ => \./staging' "$mod" | awk '{print $1}' | sort -u | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
  { printf 'package main\n\nimport (\n'
    for cmd in "${K8S_COMMANDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s/app"\n' "$cmd"; done
    printf ')\n\nfunc main() {}\n'; } > deps.go
  go mod tidy >&2
  rm deps.go
  mkdir -p "$bin"
  for cmd in "${K8S_COMMANDS[@]}"; do
    [[ -x "$bin/$cmd" ]] && continue
    go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
      -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" && mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_pulumi() {
  wrapper "pulumi-$PULUMI_VERSION"
  # pkg/v3 replaces sdk/v3 with a sibling path and pins a fork of the clipboard module;
  # a wrapper requires the released sdk and repeats the fork.
  go mod edit -require="github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" \
    -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
    -replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
  printf 'package main\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > deps.go
  go mod tidy >&2
  rm deps.go
  mkdir -p "$pulumi_bin"
  go build -trimpath -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$pulumi_bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi && mv "$pulumi_bin/pulumi.tmp" "$pulumi_bin/pulumi"
}

build_language_python() {
  local dir
  wrapper "pulumi-language-python-$PULUMI_LANGUAGE_PYTHON_SDK"
  go mod edit -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_LANGUAGE_PYTHON_SDK" \
    -replace=golang.org/x/text=golang.org/x/text@v0.3.6
  printf 'package main\n\nimport _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"\n' > deps.go
  go mod tidy >&2
  rm deps.go
  mkdir -p "$pulumi_bin"
  go build -trimpath -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_LANGUAGE_PYTHON_SDK" \
    -o "$pulumi_bin/pulumi-language-python.tmp" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
  # The host starts programs through this script, which it expects beside its own binary.
  dir="$(go list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/sdk/v3")"
  install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$pulumi_bin/pulumi-language-python-exec"
  mv "$pulumi_bin/pulumi-language-python.tmp" "$pulumi_bin/pulumi-language-python"
}

build_k8s_provider() {
  local provider="github.com/pulumi/pulumi-kubernetes/provider/v4" dir
  wrapper "pulumi-kubernetes-$K8S_PROVIDER_VERSION"
  # The provider module replaces its sdk with a sibling path: require the released sdk.
  go mod edit -require="$provider@$K8S_PROVIDER_MODULE" \
    -replace="github.com/pulumi/pulumi-kubernetes/sdk/v4=github.com/pulumi/pulumi-kubernetes/sdk/v4@$K8S_PROVIDER_SDK"
  # Its main package embeds two files its build generates (schema with the version stamped
  # in, compacted terraform mapping); this wrapper's own main embeds them the same way.
  go mod download "$provider@$K8S_PROVIDER_MODULE"
  dir="$(go env GOMODCACHE)/$provider@$K8S_PROVIDER_MODULE/cmd/pulumi-resource-kubernetes"
  python3 - "$dir" "$K8S_PROVIDER_VERSION" <<'PY'
import json, sys
src, version = sys.argv[1], sys.argv[2]
schema = json.load(open(f"{src}/schema.json"))
schema["version"] = version
json.dump(schema, open("schema-embed.json", "w"), separators=(",", ":"))
json.dump(json.load(open(f"{src}/terraform-mapping.json")), open("terraform-mapping-embed.json", "w"),
          separators=(",", ":"))
PY
  cat > main.go <<'GO'
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() { provider.Serve("kubernetes", version.Version, schema, terraformMapping) }
GO
  go mod tidy >&2
  mkdir -p "$provider_bin"
  go build -trimpath -ldflags "-X $provider/pkg/version.Version=$K8S_PROVIDER_VERSION" \
    -o "$provider_bin/pulumi-resource-kubernetes.tmp" . \
    && mv "$provider_bin/pulumi-resource-kubernetes.tmp" "$provider_bin/pulumi-resource-kubernetes"
}

build_kwok() {
  # No replace directives in its module: it installs as it is. kwok plays the stages its config
  # names; the module's own fast stages (node initialise, pod ready, Job pod complete, pod
  # delete) go beside it as one config file.
  local src stage
  mkdir -p "$kwok_bin"
  GOBIN="$kwok_bin" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  for stage in node/fast/node-initialize pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$src/$stage.yaml"
  done > "$kwok_bin/stages.yaml.tmp"
  mv "$kwok_bin/stages.yaml.tmp" "$kwok_bin/stages.yaml"
}

build_actionlint() {
  mkdir -p "$lint_bin"
  GOBIN="$lint_bin" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

timed() {  # timed <label> <function>: runs the build in a subshell and reports its wall time
  local start=$SECONDS
  say "building $1"
  ("$2")
  say "$1: $((SECONDS - start)) s"
}

if ! complete; then
  command -v go >/dev/null || { say "Go is needed to build the toolchain"; exit 1; }
  [[ -x "$bin/etcd" ]] || timed "etcd $ETCD_VERSION" build_etcd
  have_k8s_commands || timed "${K8S_COMMANDS[*]} $KUBERNETES_VERSION" build_kubernetes
  have_kwok || timed "kwok $KWOK_VERSION" build_kwok
  have_lint || timed "actionlint $ACTIONLINT_VERSION" build_actionlint
  [[ -x "$pulumi_bin/pulumi-language-python" && -x "$pulumi_bin/pulumi-language-python-exec" ]] ||
    timed "pulumi-language-python (sdk $PULUMI_LANGUAGE_PYTHON_SDK)" build_language_python
  [[ -x "$pulumi_bin/pulumi" ]] || timed "pulumi $PULUMI_VERSION" build_pulumi
  have_provider || timed "pulumi-resource-kubernetes $K8S_PROVIDER_VERSION" build_k8s_provider
fi
print_env
