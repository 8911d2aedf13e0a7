#!/usr/bin/env bash
# Builds the Gitaly test peer (test/gitaly-peer: Gitaly's own Go module from the Go module
# proxy, plus our no-op labkit) once, into ~/.cache/git-sshd, keyed by a hash of its
# sources. Prints the binary's path as the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/../test/gitaly-peer"
hash="$(find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
cache="${GIT_SSHD_CACHE:-$HOME/.cache/git-sshd}"
binary="$cache/gitaly-peer-$hash"
if [ ! -x "$binary" ]; then
  mkdir -p "$cache"
  echo "building the Gitaly test peer (once; about 10-30 min on 2 busy cores: Gitaly's module and its dependencies)" >&2
  # -mod=readonly: go.sum is committed; a build must not rewrite it.
  GOFLAGS=-mod=readonly GOTOOLCHAIN=local nice go build -trimpath -o "$binary.tmp" .
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
