#!/usr/bin/env bash
# Builds the images the Kubernetes tests run, as OCI archives in $K8S_IMAGES for
# import.sh (no registry here: buildah builds, podman exports, containerd imports):
#  - localhost/pause:3.10, the pod sandbox: pause.c from the Kubernetes module, static gcc.
#  - localhost/git-sshd-k8s-busybox:1, the storage provisioner's helper (busybox-static).
#  - git-sshd from the repository's Dockerfile, on the local Node 24 base
#    (scripts/image-base.sh), named localhost/git-sshd:k8s-<hash of what it is built from>
#    and also tagged git-sshd:<the chart's appVersion>, which is what the chart's default
#    values ask for (docker.io/library/git-sshd:0.1.0 to containerd).
# Each is rebuilt only when what it is built from changed. Prints the git-sshd image's name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
podman=(podman --storage-driver vfs)
buildah=(buildah --storage-driver vfs)
mkdir -p "$K8S_IMAGES"
exec 9>"$K8S_IMAGES/.lock"
flock 9
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export_image() { # name archive-base
  "${podman[@]}" save -q --format oci-archive -o "$2.tar.partial" "$1"
  mv -f "$2.tar.partial" "$2.tar"
  echo "$1" > "$2.ref"
}

if [ ! -f "$K8S_IMAGES/pause.tar" ]; then
  mkdir -p "$work/pause"
  gcc -Os -static -DVERSION=3.10-git-sshd -o "$work/pause/pause" "$K8S_BIN/src/kubernetes/build/pause/linux/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$work/pause/Containerfile"
  "${buildah[@]}" bud -q --isolation chroot -t localhost/pause:3.10 -f "$work/pause/Containerfile" "$work/pause" >/dev/null
  export_image localhost/pause:3.10 "$K8S_IMAGES/pause"
fi

if [ ! -f "$K8S_IMAGES/busybox.tar" ]; then
  mkdir -p "$work/busybox/bin"
  cp /bin/busybox "$work/busybox/bin/busybox"
  for applet in sh mkdir rm ls cat chmod sleep; do ln -s busybox "$work/busybox/bin/$applet"; done
  printf 'FROM scratch\nCOPY bin/ /bin/\nENTRYPOINT ["/bin/sh"]\n' > "$work/busybox/Containerfile"
  "${buildah[@]}" bud -q --isolation chroot -t localhost/git-sshd-k8s-busybox:1 -f "$work/busybox/Containerfile" "$work/busybox" >/dev/null
  export_image localhost/git-sshd-k8s-busybox:1 "$K8S_IMAGES/busybox"
fi

# git-sshd: named by a hash of the build context the Dockerfile uses (and the base image).
base="${BASE_IMAGE:-localhost/git-sshd-node-base:node24-bookworm}"
(cd "$root" && bash scripts/image-base.sh)
hash="$(cd "$root" && {
  "${podman[@]}" image inspect --format '{{.Id}}' "$base"
  git ls-files -s -- Dockerfile package.json package-lock.json patches scripts/postinstall.mjs scripts/build.mjs tsconfig.json src
  git diff HEAD -- Dockerfile package.json package-lock.json patches scripts/postinstall.mjs scripts/build.mjs tsconfig.json src
  git ls-files --others --exclude-standard -- patches src | xargs -r sha256sum
} | sha256sum | cut -c1-12)"
image="localhost/git-sshd:k8s-$hash"
if [ "$(cat "$K8S_IMAGES/git-sshd.ref" 2>/dev/null)" != "$image" ] || [ ! -f "$K8S_IMAGES/git-sshd.tar" ]; then
  echo "k8s images: building $image from the Dockerfile (a few minutes)" >&2
  started=$SECONDS
  (cd "$root" && "${buildah[@]}" bud -q --layers --isolation chroot --network host --build-arg "NODE_IMAGE=$base" -t "$image" .) >/dev/null
  export_image "$image" "$K8S_IMAGES/git-sshd"
  # Older builds are not needed: the archive above is the image.
  "${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' localhost/git-sshd | grep ':k8s-' | grep -vx "$image" | xargs -r "${podman[@]}" rmi -f >/dev/null 2>&1 || true
  echo "k8s images: built in $((SECONDS - started)) s" >&2
fi
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/git-sshd/Chart.yaml")"
echo "docker.io/library/git-sshd:$app_version" > "$K8S_IMAGES/git-sshd.tags"
echo "$image"
