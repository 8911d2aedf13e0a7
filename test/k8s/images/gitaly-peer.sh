#!/usr/bin/env bash
# The Gitaly test peer's image for the Kubernetes suite, built with no registry: a Debian
# bookworm minbase root (debootstrap) with git and tini, plus the peer binary that
# scripts/gitaly-peer.sh builds and caches (test/gitaly-peer: Gitaly's own Go module; never
# committed). buildah assembles it; podman saves it as $K8S_IMAGES/gitaly-peer.tar, its
# name in gitaly-peer.ref, where scripts/test-k8s.sh imports every image from. --import
# also imports it into the running cluster now. Pods run it with imagePullPolicy Never.
#
# The image's tag is a hash of the peer binary and of this script: the archive is rebuilt
# only when either changes. The last line of stdout is the image's name.
#
# usage: test/k8s/images/gitaly-peer.sh [--import]
set -euo pipefail
script="$(readlink -f "$0")"
here="$(dirname "$script")"
cd "$here/../../.."
# shellcheck source=../cluster/env.sh
. "$here/../cluster/env.sh"
import=0
case "${1:-}" in
  --import) import=1 ;;
  '') ;;
  *) echo "usage: $0 [--import]" >&2; exit 2 ;;
esac

images="$K8S_IMAGES"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
storage=(--storage-driver vfs)
peer="$(bash scripts/gitaly-peer.sh | tail -n 1)"
tag="$(cat "$peer" "$script" | sha256sum | cut -c1-16)"
image="localhost/git-sshd-gitaly-peer:$tag"
archive="$images/gitaly-peer.tar"
mkdir -p "$images"

exec 9>"$images/gitaly-peer.lock"
flock 9
if [ ! -s "$archive" ] || [ "$(cat "$images/gitaly-peer.ref" 2>/dev/null)" != "$image" ]; then
  missing=()
  for tool in buildah podman debootstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  started=$SECONDS
  work="$(mktemp -d "${TMPDIR:-/tmp}/git-sshd-gitaly-image-XXXXXX")"
  container=""
  cleanup() {
    [ -z "$container" ] || buildah "${storage[@]}" rm "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  root="$work/root"
  echo "gitaly image: debootstrap bookworm (minbase, git, tini) for $image (once per peer build, a few minutes)" >&2
  debootstrap --variant=minbase --include=git,tini bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    echo "gitaly image: debootstrap failed:" >&2
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  chmod 0755 "$root"
  # Gitaly runs as GitLab's git user (uid 1000 in GitLab's images), who owns the repositories.
  chroot "$root" groupadd --gid 1000 git
  chroot "$root" useradd --uid 1000 --gid 1000 --home-dir /home/git --create-home --shell /usr/sbin/nologin git
  install -m 0755 "$peer" "$root/usr/local/bin/gitaly-peer"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

  container="$(buildah "${storage[@]}" from scratch)"
  buildah "${storage[@]}" copy --quiet "$container" "$root" / >/dev/null
  # tini reaps the git processes upload-pack and receive-pack leave to PID 1.
  buildah "${storage[@]}" config \
    --entrypoint '["/usr/bin/tini", "--", "/usr/local/bin/gitaly-peer"]' \
    --cmd '' \
    --user 1000:1000 \
    --workingdir /home/git \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env HOME=/home/git \
    --port 8075 \
    --label org.opencontainers.image.description="git-sshd's Gitaly test peer (test/gitaly-peer)" \
    "$container"
  buildah "${storage[@]}" commit --quiet --rm "$container" "$image" >/dev/null
  container=""
  podman "${storage[@]}" save --quiet --format oci-archive -o "$archive.tmp" "$image"
  podman "${storage[@]}" rmi "$image" >/dev/null 2>&1 || true
  mv -f "$archive.tmp" "$archive"
  echo "$image" > "$images/gitaly-peer.ref"
  echo "gitaly image: $image built in $((SECONDS - started)) s ($(du -h "$archive" | cut -f1) archive)" >&2
fi

if [ "$import" = 1 ]; then
  bash "$here/../cluster/import.sh" "$archive"
fi
echo "$image"
