#!/usr/bin/env bash
# Builds, once per source version, the Go x/crypto/ssh test client (test/peers/go-ssh) from
# the Go module proxy into ~/.cache/git-sshd/peers/. Prints the binary's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/../test/peers/go-ssh"
hash="$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
out="${GIT_SSHD_PEERS:-$HOME/.cache/git-sshd/peers}/go-ssh-$hash"
if [ ! -x "$out" ]; then
  echo "go peer: building Go x/crypto/ssh client ($(grep 'golang.org/x/crypto ' go.mod | xargs)) once" >&2
  mkdir -p "$(dirname "$out")"
  GOFLAGS=-mod=mod GOTOOLCHAIN=local nice go build -o "$out.tmp" . && mv "$out.tmp" "$out"
  find "$(dirname "$out")" -name 'go-ssh-*' ! -name "$(basename "$out")" -delete
fi
echo "$out"
