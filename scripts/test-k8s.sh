#!/usr/bin/env bash
# The Kubernetes suite (`npm run test:k8s`): test/k8s/*.test.ts against a real single-node
# cluster on this machine, one file at a time. On a fresh Debian machine, as root, it sets
# up what it needs: Debian packages, the Kubernetes binaries built from the Go module proxy
# (once per machine, ~1,500 CPU-seconds, cached in ~/.cache/git-sshd/k8s), the images
# (pause, the storage helper, git-sshd from the Dockerfile), then brings a cluster up,
# runs the tests and tears the cluster down, leaving nothing on the host, whether the tests
# pass, fail or are interrupted.
#
#   npm run test:k8s                       everything
#   npm run test:k8s -- test/k8s/x.test.ts  some files
#   GIT_SSHD_K8S_EXISTING=1 npm run test:k8s   on the cluster in the environment (KUBECONFIG,
#                                          GIT_SSHD_K8S_BIN, _STATE, _APISERVER, _CA: source the
#                                          cluster.env that up.sh wrote); it is left running
#
# Images other tests need are built by test/k8s/images/*.sh: each writes NAME.tar (and
# NAME.ref, the image's name) into $GIT_SSHD_K8S_IMAGES; all are imported.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
cluster=test/k8s/cluster
step() { echo "k8s suite: $* ($((SECONDS - started)) s)"; }

bash "$cluster/packages.sh"
[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund
export PATH="$PWD/node_modules/.bin:$PATH"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' || {
  echo "node_modules/.bin/node is not Node >= 24: run npm ci (see scripts/postinstall.mjs)" >&2
  exit 1
}

# The tests' own images (the Gitaly peer...) need no Kubernetes binary: built first, so that on
# a fresh machine they overlap a build of the binaries started earlier (CI starts it right
# after npm ci), which is then waited for.
for script in test/k8s/images/*.sh; do
  [ -f "$script" ] || continue
  step "building images: $script"
  bash "$script"
done
if ! bash "$cluster/tools.sh" --check; then
  step "waiting for the Kubernetes binaries (a build under way), or building them (once per machine: 15-45 min on 2 cores)"
  bash "$cluster/tools.sh"
fi
step "binaries ready"

GIT_SSHD_K8S_IMAGE="$(bash "$cluster/images.sh")"
export GIT_SSHD_K8S_IMAGE
step "images ready ($GIT_SSHD_K8S_IMAGE)"

# The run's temp dir and marker, as in scripts/test.sh: reap.mjs ends what is left.
GIT_SSHD_TEST_RUN="git-sshd-k8s-test-$$-$(date +%s)"
TMPDIR="$(mktemp -d "/tmp/$GIT_SSHD_TEST_RUN.XXXXXX")"
export GIT_SSHD_TEST_RUN TMPDIR
own_cluster=0
finish() {
  local status=$?
  trap '' INT TERM
  env -u GIT_SSHD_TEST_RUN -u TMPDIR node scripts/reap.mjs "$GIT_SSHD_TEST_RUN" "$TMPDIR" || true
  if [ "$own_cluster" = 1 ]; then
    if [ "$status" != 0 ] && [ -d "$GIT_SSHD_K8S_STATE/logs" ]; then
      keep="${XDG_CACHE_HOME:-$HOME/.cache}/git-sshd/k8s/last-failed-run"
      rm -rf "$keep" && mkdir -p "$keep" && cp -r "$GIT_SSHD_K8S_STATE/logs" "$keep/" 2>/dev/null
      echo "k8s suite: the cluster's logs are kept in $keep/logs"
    fi
    down_started=$SECONDS
    env -u GIT_SSHD_TEST_RUN -u TMPDIR bash "$cluster/down.sh" --purge || status=1
    echo "k8s suite: cluster torn down in $((SECONDS - down_started)) s"
  fi
  echo "k8s suite: finished after $((SECONDS - started)) s in all (exit $status)"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${GIT_SSHD_K8S_EXISTING:-0}" = 1 ]; then
  : "${KUBECONFIG:?GIT_SSHD_K8S_EXISTING=1 needs the environment of the cluster: source its cluster.env}"
  bash "$cluster/import.sh"
  step "using the cluster in KUBECONFIG=$KUBECONFIG; images imported"
else
  own_cluster=1
  up_started=$SECONDS
  # Without the run's marker: the reaper ends the tests' processes, and down.sh the cluster's, in order.
  env -u GIT_SSHD_TEST_RUN -u TMPDIR bash "$cluster/up.sh"
  # shellcheck source=/dev/null
  . "${GIT_SSHD_K8S_STATE:-/var/tmp/git-sshd-k8s}/cluster.env"
  step "cluster up in $((SECONDS - up_started)) s"
fi

files=("$@")
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find test/k8s -maxdepth 1 -name '*.test.ts' | sort)
step "running ${#files[@]} test files, one at a time"
# Files bound their own waits; the runner's timeout is only a backstop for a file that hangs.
node --import tsx --test --test-concurrency=1 --test-timeout=2700000 "${files[@]}"
