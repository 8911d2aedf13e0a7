#!/usr/bin/env bash
# Builds the images the Kubernetes tests run, as OCI archives in $K8S_IMAGES for
# import.sh (no registry here: buildah builds, podman exports, containerd imports):
#  - localhost/pause:3.10, the pod sandbox: pause.c from the Kubernetes module, static gcc.
#  - localhost/git-sshd-k8s-busybox:1, the storage provisioner's helper (busybox-static).
#  - git-sshd from the repository's Dockerfile (scripts/build-image.sh), named
#    localhost/git-sshd:build-<hash of what it is built from>, and also tagged
#    git-sshd:<the chart's appVersion>, what the chart's default values ask for
#    (docker.io/library/git-sshd:0.1.0 to containerd).
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

# git-sshd: scripts/build-image.sh (shared with the image test) names it by what it is built from.
image="$(cd "$root" && bash scripts/build-image.sh)"
if [ "$(cat "$K8S_IMAGES/git-sshd.ref" 2>/dev/null)" != "$image" ] || [ ! -f "$K8S_IMAGES/git-sshd.tar" ]; then
  export_image "$image" "$K8S_IMAGES/git-sshd"
fi
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/git-sshd/Chart.yaml")"
echo "docker.io/library/git-sshd:$app_version" > "$K8S_IMAGES/git-sshd.tags"
echo "$image"
