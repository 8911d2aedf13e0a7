#!/usr/bin/env bash
# Builds the image from the Dockerfile with buildah (no Docker engine, no registry here) on
# the local Node 24 base (scripts/image-base.sh), named after what it is built from:
# localhost/git-sshd:build-<hash of the base image and the build context's files>. An image
# of that name already in podman's storage is reused, so the image test and the Kubernetes
# suite in one CI run build it once. Prints the image's name.
set -euo pipefail
cd "$(dirname "$0")/.."
podman=(podman --storage-driver vfs)
base="${BASE_IMAGE:-localhost/git-sshd-node-base:node24-bookworm}"
bash scripts/image-base.sh >&2
# What the Dockerfile COPYs; committed content plus uncommitted changes and new files.
context=(Dockerfile package.json package-lock.json patches scripts/postinstall.mjs scripts/build.mjs tsconfig.json src)
hash="$({
  "${podman[@]}" image inspect --format '{{.Id}}' "$base"
  git ls-files -s -- "${context[@]}"
  git diff HEAD -- "${context[@]}"
  git ls-files --others --exclude-standard -- "${context[@]}" | xargs -r sha256sum
} | sha256sum | cut -c1-12)"
image="localhost/git-sshd:build-$hash"
exec 9>/tmp/git-sshd-build-image.lock
flock 9
if ! "${podman[@]}" image exists "$image"; then
  echo "image: building $image from the Dockerfile (5-15 min on a busy 2-core machine)" >&2
  started=$SECONDS
  buildah --storage-driver vfs bud -q --isolation chroot --network host --build-arg "NODE_IMAGE=$base" -t "$image" . >/dev/null
  echo "image: built in $((SECONDS - started)) s" >&2
  # Earlier builds are not needed any more (vfs keeps each one whole: hundreds of MB).
  "${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' localhost/git-sshd | grep ':build-' | grep -vx "$image" \
    | xargs -r "${podman[@]}" rmi -f >/dev/null 2>&1 || true
fi
echo "$image"
