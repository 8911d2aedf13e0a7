#!/usr/bin/env bash
# Builds the Kubernetes test cluster's binaries from the Go module proxy, once per machine:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
# (k8s.io/kubernetes), helm, and rancher's local-path-provisioner (the test cluster's
# default StorageClass). Cached in $K8S_BIN (see env.sh); a rerun with all of them there
# does nothing. Two runs at once: the second waits for the first (flock).
#
# The k8s.io/kubernetes module as the proxy serves it has no staging/ and no vendor/: its
# `k8s.io/X => ./staging/src/k8s.io/X` replaces are pointed at the published k8s.io/X
# modules of the same release (v0.37.2 for v1.37.2), then `go build ./cmd/...`.
# Cold: about 1,500 CPU-seconds, 2.7 GB peak RSS, 4.5 GB of Go build cache.
#
#   bash test/k8s/cluster/tools.sh           build what is missing
#   bash test/k8s/cluster/tools.sh --check   exit 0 when everything is built
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
KUBE_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
complete() {
  local c
  for c in $KUBE_COMMANDS helm local-path-provisioner; do [ -x "$K8S_BIN/$c" ] || return 1; done
}
if [ "${1:-}" = --check ]; then complete; exit; fi
complete && exit 0

mkdir -p "$K8S_BIN"
exec 9>"$K8S_BIN/.lock"
if ! flock -n 9; then
  echo "k8s tools: another build into $K8S_BIN is running; waiting for it"
  flock 9
fi
complete && exit 0
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
started=$SECONDS
src="$K8S_BIN/src/kubernetes"
if [ ! -f "$src/.rewritten" ]; then
  dir="$(cd /tmp && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  rm -f "$src/go.work" "$src/go.work.sum"
  staging="v0${K8S_VERSION#v1}"
  sed -i -E "s#^(\s*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+#\1\2 => \2 $staging#" "$src/go.mod"
  if grep -q '=> ./staging' "$src/go.mod"; then echo "k8s tools: go.mod still points at ./staging" >&2; exit 1; fi
  touch "$src/.rewritten"
fi
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
# Built aside and moved in whole: an interrupted build never leaves a binary that looks done.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
packages=()
for c in $KUBE_COMMANDS; do [ -x "$K8S_BIN/$c" ] || packages+=("./cmd/$c"); done
if [ ${#packages[@]} -gt 0 ]; then
  echo "k8s tools: building ${packages[*]} $K8S_VERSION into $K8S_BIN (once per machine: ~1,500 CPU-seconds)"
  (cd "$src" && CGO_ENABLED=0 nice go build -trimpath -ldflags "$ldflags" -o "$work/" "${packages[@]}")
  for c in $KUBE_COMMANDS; do [ -x "$work/$c" ] && mv -f "$work/$c" "$K8S_BIN/$c"; done
fi
if [ ! -x "$K8S_BIN/helm" ]; then
  # The chart tests' helm (scripts/tools.sh), when it is there and the same version.
  chart_helm="${GIT_SSHD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/git-sshd/tools}/helm"
  if [ -x "$chart_helm" ] && go version -m "$chart_helm" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION[[:space:]]"; then
    cp "$chart_helm" "$work/helm"
  else
    echo "k8s tools: building helm $HELM_VERSION"
    GOBIN="$work" nice go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  mv -f "$work/helm" "$K8S_BIN/helm"
fi
if [ ! -x "$K8S_BIN/local-path-provisioner" ]; then
  echo "k8s tools: building local-path-provisioner $LOCAL_PATH_VERSION"
  GOBIN="$work" CGO_ENABLED=0 nice go install "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
  mv -f "$work/local-path-provisioner" "$K8S_BIN/local-path-provisioner"
fi
complete
echo "k8s tools: built in $((SECONDS - started)) s"
ls -la "$K8S_BIN"
