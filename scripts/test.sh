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
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
# promtool lints /metrics; the Prometheus server scrapes it as an operator's would.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# Real load balancers send the PROXY headers: HAProxy (v1 and v2) and nginx's stream module (v1).
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
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

# helm and helm-unittest for the chart tests, built from the Go module proxy once per user.
GIT_SSHD_TOOLS="$(bash scripts/tools.sh --dir)"
export GIT_SSHD_TOOLS
bash scripts/tools.sh
export PATH="$GIT_SSHD_TOOLS:$PATH" HELM="$GIT_SSHD_TOOLS/helm" HELM_UNITTEST="$GIT_SSHD_TOOLS/untt"

echo "test set-up: compiling and type-checking (1-5 min, the more the busier the machine)"
npm run --silent build
npm run --silent typecheck

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

# test/image/ builds and runs the container: `npm run test:image`, apart from this.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' -not -path 'test/image/*' | sort)
echo "test set-up: done after $((SECONDS - started)) s; running ${#files[@]} test files"
# Tests bound their own waits, and heavy ones have timeouts of their own. Node 20 applies
# --test-timeout to each whole file too: here it is only a backstop for a file that hangs.
status=0
node --import tsx --test --test-concurrency=2 --test-timeout=1800000 "${files[@]}" || status=$?
echo "tests: finished after $((SECONDS - started)) s in all (exit $status)"
exit "$status"
