#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine (as root), builds,
# type-checks, then runs unit tests (src/**/*.test.ts) and integration tests (test/*.test.ts)
# with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

missing=()
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The sid root (OpenSSH 10, git 2.5x) is made with debootstrap, in the background below.
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
# The README test runs the quick start in a network namespace of its own (port 2222 always free).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
# promtool lints /metrics; the Prometheus server scrapes it as an operator's would.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# Real load balancers send the PROXY headers: HAProxy (v1 and v2) and nginx's stream module (v1).
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
# ssh-audit 3.x runs its DHEat connection-rate check against us (bookworm's 2.5 has none): a venv.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    packages="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    echo "test set-up: installing Debian packages machine-wide with apt: ${packages}(once; about a minute)"
    apt_started=$SECONDS
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
    echo "test set-up: installed them in $((SECONDS - apt_started)) s"
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
# The sid root is mostly downloads and unpacking: it is made in the background while the Go
# builds below use the CPU, and waited for before the tests.
bash scripts/sid-root.sh >/dev/null &
sid_root_job=$!
# The Gitaly test peer downloads ~730 MB of Go modules the first time: also in the background.
gitaly_peer_out="$(mktemp)"
bash scripts/gitaly-peer.sh >"$gitaly_peer_out" &
gitaly_peer_job=$!
bash scripts/go-peer.sh >/dev/null
bash scripts/paramiko-peer.sh >/dev/null

# helm and helm-unittest for the chart tests, built from the Go module proxy once per user.
GIT_SSHD_TOOLS="$(bash scripts/tools.sh --dir)"
export GIT_SSHD_TOOLS
bash scripts/tools.sh
export PATH="$GIT_SSHD_TOOLS:$PATH" HELM="$GIT_SSHD_TOOLS/helm" HELM_UNITTEST="$GIT_SSHD_TOOLS/untt"

# PuTTY, Dropbear, Paramiko, AsyncSSH, Go's x/crypto/ssh and libssh clients for test/interop.test.ts.
export GIT_SSHD_INTEROP="${GIT_SSHD_INTEROP:-$HOME/.cache/git-sshd/interop}"
bash scripts/interop-tools.sh

# ssh-audit 3.9 (bookworm's 2.5 has no DHEat rate check) for test/preauthFlood.test.ts.
SSH_AUDIT_VENV="${HOME}/.cache/git-sshd/ssh-audit"
if [ ! -x "$SSH_AUDIT_VENV/bin/ssh-audit" ]; then
  echo "installing ssh-audit 3.9.0 into $SSH_AUDIT_VENV (once; under a minute)"
  python3 -m venv "$SSH_AUDIT_VENV"
  "$SSH_AUDIT_VENV/bin/pip" install -q --disable-pip-version-check ssh-audit==3.9.0
fi
export SSH_AUDIT="$SSH_AUDIT_VENV/bin/ssh-audit"

wait "$sid_root_job" || { echo "test set-up: the Debian sid root could not be made (see above)" >&2; exit 1; }

echo "test set-up: compiling and type-checking (1-5 min, the more the busier the machine)"
npm run --silent build
npm run --silent typecheck

# The Gitaly test peer (Go, from the module proxy): built once into ~/.cache/git-sshd, before
# the tests run so its first build does not count against a test's timeout. Started in the
# background above; waited for here.
wait "$gitaly_peer_job" || { echo "test set-up: the Gitaly test peer could not be built (see above)" >&2; exit 1; }
GIT_SSHD_GITALY_PEER="$(tail -n 1 "$gitaly_peer_out")"
rm -f "$gitaly_peer_out"
export GIT_SSHD_GITALY_PEER

# The run's own temp dir and marker: every test's temp files land under it, every process
# it starts carries the marker (test/helpers/processes.ts passes it on), and at the end,
# however the run ends, scripts/reap.mjs kills what is left and removes the dir.
GIT_SSHD_TEST_RUN="git-sshd-test-$$-$(date +%s)"
TMPDIR="$(mktemp -d "/tmp/$GIT_SSHD_TEST_RUN.XXXXXX")"
export GIT_SSHD_TEST_RUN TMPDIR
reap() { env -u GIT_SSHD_TEST_RUN -u TMPDIR node scripts/reap.mjs "$GIT_SSHD_TEST_RUN" "$TMPDIR"; }
trap reap EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# test/image/ builds and runs the container (`npm run test:image`) and test/k8s/ needs a
# Kubernetes cluster (`npm run test:k8s`): both apart from this.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' -not -path 'test/image/*' -not -path 'test/k8s/*' | sort)
echo "test set-up: done after $((SECONDS - started)) s; running ${#files[@]} test files"
# Tests bound their own waits, and heavy ones have timeouts of their own. Node 20 applies
# --test-timeout to each whole file too: here it is only a backstop for a file that hangs.
status=0
node --import tsx --test --test-concurrency=2 --test-timeout=1800000 "${files[@]}" || status=$?
echo "tests: finished after $((SECONDS - started)) s in all (exit $status)"
exit "$status"
