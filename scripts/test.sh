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
# The Node the project runs on (24, from the npm registry's node-linux-<arch>), also when
# this script is run directly rather than by `npm test`.
export PATH="$PWD/node_modules/.bin:$PATH"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' || {
  echo "node_modules/.bin/node is not Node >= 24: run npm ci (see scripts/postinstall.mjs)" >&2
  exit 1
}

# Today's clients as test peers, built once and cached under ~/.cache/git-sshd: a Debian sid
# root with OpenSSH 10 and git 2.5x (a few minutes the first time), Go's x/crypto/ssh, Paramiko.
bash scripts/sid-root.sh >/dev/null
bash scripts/go-peer.sh >/dev/null
bash scripts/paramiko-peer.sh >/dev/null

# helm and helm-unittest for the chart tests, built from the Go module proxy once.
export GIT_SSHD_TOOLS="${GIT_SSHD_TOOLS:-/opt/git-sshd-tools}"
bash scripts/tools.sh
export PATH="$GIT_SSHD_TOOLS:$PATH" HELM="$GIT_SSHD_TOOLS/helm" HELM_UNITTEST="$GIT_SSHD_TOOLS/untt"

# PuTTY, Dropbear, Paramiko, AsyncSSH, Go's x/crypto/ssh and libssh clients for test/interop.test.ts.
export GIT_SSHD_INTEROP="${GIT_SSHD_INTEROP:-$HOME/.cache/git-sshd/interop}"
bash scripts/interop-tools.sh

npm run --silent build
npm run --silent typecheck

# test/image/ builds and runs the container: `npm run test:image`, apart from this.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' -not -path 'test/image/*' | sort)
# A hung test fails by name after two minutes instead of stalling CI.
exec node --import tsx --test --test-concurrency=2 --test-timeout=120000 "${files[@]}"
