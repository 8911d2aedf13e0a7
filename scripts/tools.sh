#!/usr/bin/env bash
# Builds the chart tools the tests use when they are missing: helm (the real one, from the
# Go module proxy) and helm-unittest's `untt`. Both are pinned. They are built once per
# user into a cache, ${XDG_CACHE_HOME:-~/.cache}/git-sshd/tools (or $GIT_SSHD_TOOLS), and
# reused; Go's own build and module caches stay where Go keeps them (per user too).
#
#   bash scripts/tools.sh          # build what is missing
#   bash scripts/tools.sh --dir    # print the tools directory
set -euo pipefail
TOOLS="${GIT_SSHD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/git-sshd/tools}"
if [ "${1:-}" = "--dir" ]; then
  echo "$TOOLS"
  exit 0
fi
HELM_VERSION=v3.19.0
UNITTEST_VERSION=v1.0.3
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

# A helm built by `go install` knows its module version (its own `version` says only v3.19).
helm_ok() { [ -x "$TOOLS/helm" ] && go version -m "$TOOLS/helm" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION[[:space:]]"; }
untt_ok() { [ -x "$TOOLS/untt" ]; }
helm_ok && untt_ok && exit 0

mkdir -p "$TOOLS"
# One build at a time per cache: a second test run waits for the first one's build.
exec 9>"$TOOLS/.lock"
if ! flock -n 9; then
  echo "tools: another build into $TOOLS is running; waiting for it..."
  flock 9
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Runs a long build in the background and says every 30 s that it still runs.
with_progress() {
  local what="$1"
  shift
  local started=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    local elapsed=$((SECONDS - started))
    if kill -0 "$pid" 2>/dev/null && [ $((elapsed % 30)) -lt 5 ] && [ "$elapsed" -ge 30 ]; then
      echo "tools:   still building $what ($((elapsed / 60)) min $((elapsed % 60)) s so far)"
    fi
  done
  wait "$pid"
  echo "tools: built $what in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
}

build_helm() {
  # Built aside and moved in whole: an interrupted build never leaves a broken binary.
  GOBIN="$work/bin" nice go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv -f "$work/bin/helm" "$TOOLS/helm"
}

build_untt() {
  # `go install` refuses helm-unittest (its go.mod has replace directives): build it
  # from the module's source as the main module instead.
  (cd "$work" && go mod init tools >/dev/null 2>&1 && go mod download -json "github.com/helm-unittest/helm-unittest@$UNITTEST_VERSION" > mod.json)
  local dir
  dir="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/mod.json','utf8')).Dir)")"
  cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
  (cd "$work/src" && nice go build -o "$work/untt" ./cmd/helm-unittest)
  mv -f "$work/untt" "$TOOLS/untt"
}

if ! helm_ok; then
  echo "tools: building helm $HELM_VERSION from the Go module proxy into $TOOLS"
  echo "tools:   (once per user: about 8 min on 2 cores, measured on a busy machine, module downloads included)"
  with_progress "helm $HELM_VERSION" build_helm
fi
if ! untt_ok; then
  echo "tools: building helm-unittest $UNITTEST_VERSION from the Go module proxy into $TOOLS"
  echo "tools:   (once per user: about 8 min on 2 cores, measured on a busy machine)"
  with_progress "helm-unittest $UNITTEST_VERSION" build_untt
fi
