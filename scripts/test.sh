#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine (as root), builds,
# type-checks, then runs unit tests (src/**/*.test.ts) and integration tests (test/*.test.ts)
# with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# promtool lints /metrics; the Prometheus server scrapes it as an operator's would.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# Real load balancers send the PROXY headers: HAProxy (v1 and v2) and nginx's stream module (v1).
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  else
    echo "missing tools: ${missing[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi

[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund

# helm and helm-unittest for the chart tests, built from the Go module proxy once.
export GIT_SSHD_TOOLS="${GIT_SSHD_TOOLS:-/opt/git-sshd-tools}"
bash scripts/tools.sh
export PATH="$GIT_SSHD_TOOLS:$PATH" HELM="$GIT_SSHD_TOOLS/helm" HELM_UNITTEST="$GIT_SSHD_TOOLS/untt"

npm run --silent build
npm run --silent typecheck

# The Gitaly test peer (Go, from the module proxy): built once into ~/.cache/git-sshd, before
# the tests run so its first build does not count against a test's timeout.
GIT_SSHD_GITALY_PEER="$(bash scripts/gitaly-peer.sh)"
export GIT_SSHD_GITALY_PEER

# test/image/ builds and runs the container: `npm run test:image`, apart from this.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' -not -path 'test/image/*' -not -name 'gitalyLarge.test.ts' | sort)
# A hung test fails by name after two minutes instead of stalling CI.
node --import tsx --test --test-concurrency=2 --test-timeout=120000 "${files[@]}"
# 100 MB each way through Gitaly takes longer than two minutes on a loaded machine: its own bound.
exec node --import tsx --test --test-timeout=900000 test/gitalyLarge.test.ts
