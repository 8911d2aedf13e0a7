#!/usr/bin/env bash
# The SSH clients the interop tests (test/interop.test.ts) drive, installed once on a fresh
# Debian machine: PuTTY's plink and Dropbear's dbclient from apt, Paramiko and AsyncSSH in a
# venv, a tiny client on Go's golang.org/x/crypto/ssh, and one on Debian's libssh. Built
# things live under ~/.cache/git-sshd/interop and are rebuilt only when their source changes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${GIT_SSHD_INTEROP:-$HOME/.cache/git-sshd/interop}"
SRC=test/interop
mkdir -p "$CACHE/bin"

missing=()
command -v plink >/dev/null 2>&1 && command -v puttygen >/dev/null 2>&1 || missing+=(putty-tools)
command -v dbclient >/dev/null 2>&1 && command -v dropbearconvert >/dev/null 2>&1 || missing+=(dropbear-bin)
[ -e /usr/include/libssh/libssh.h ] || missing+=(libssh-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "interop: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "interop: missing ${missing[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi

# Rebuilds $2 when the hash of the files $3... differs from the one recorded beside it.
stale() {
  local target="$1"; shift
  local hash; hash="$(cat "$@" | sha256sum | cut -c1-16)"
  [ -e "$target" ] && [ "$(cat "$target.hash" 2>/dev/null)" = "$hash" ] && return 1
  echo "$hash" > "$target.hash.new"
  return 0
}
done_building() { mv "$1.hash.new" "$1.hash"; }

if stale "$CACHE/venv.ready" "$SRC/requirements.txt"; then
  echo "interop: Paramiko and AsyncSSH into $CACHE/venv (once)"
  rm -rf "$CACHE/venv" && python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check -r "$SRC/requirements.txt"
  touch "$CACHE/venv.ready"
  done_building "$CACHE/venv.ready"
fi

if stale "$CACHE/bin/goclient" "$SRC/goclient/main.go" "$SRC/goclient/go.mod" "$SRC/goclient/go.sum"; then
  echo "interop: building the golang.org/x/crypto/ssh client (once)"
  (cd "$SRC/goclient" && GOTOOLCHAIN=local GOFLAGS=-mod=mod nice go build -o "$CACHE/bin/goclient" .)
  done_building "$CACHE/bin/goclient"
fi

if stale "$CACHE/bin/libsshclient" "$SRC/libsshclient.c"; then
  echo "interop: building the libssh client (once)"
  cc -O2 -Wall -o "$CACHE/bin/libsshclient" "$SRC/libsshclient.c" -lssh
  done_building "$CACHE/bin/libsshclient"
fi
