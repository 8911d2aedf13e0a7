#!/usr/bin/env bash
# Builds the chart tools the tests use when they are missing: helm (the real one, from the
# Go module proxy) and helm-unittest's `untt`. Both are pinned; the build takes a few
# minutes once, then the binaries in $GIT_SSHD_TOOLS are reused.
set -euo pipefail
TOOLS="${GIT_SSHD_TOOLS:-/opt/git-sshd-tools}"
HELM_VERSION=v3.19.0
UNITTEST_VERSION=v1.0.3
mkdir -p "$TOOLS"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

if [ ! -x "$TOOLS/helm" ]; then
  echo "building helm $HELM_VERSION (once)"
  GOBIN="$TOOLS" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

if [ ! -x "$TOOLS/untt" ]; then
  # `go install` refuses helm-unittest (its go.mod has replace directives): build it
  # from the module's source as the main module instead.
  echo "building helm-unittest $UNITTEST_VERSION (once)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && go mod init tools >/dev/null 2>&1 && go mod download -json "github.com/helm-unittest/helm-unittest@$UNITTEST_VERSION" > mod.json)
  dir="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/mod.json','utf8')).Dir)")"
  cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
  (cd "$work/src" && go build -o "$TOOLS/untt" ./cmd/helm-unittest)
fi
