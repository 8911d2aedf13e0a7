#!/usr/bin/env bash
# Imports image archives into the running cluster's containerd (namespace k8s.io, where
# the kubelet looks): every $K8S_IMAGES/*.tar, or the archives named. An archive NAME.tar
# may have NAME.tags beside it: more names for the same image, one a line (the image's
# own name is in NAME.ref). Pods use them with imagePullPolicy Never or IfNotPresent:
# there is no registry.
#
#   bash test/k8s/cluster/import.sh [ARCHIVE.tar...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
ctr=(ctr -a "$K8S_STATE/containerd/containerd.sock" -n k8s.io)
archives=("$@")
[ ${#archives[@]} -gt 0 ] || archives=("$K8S_IMAGES"/*.tar)
for archive in "${archives[@]}"; do
  [ -f "$archive" ] || continue
  "${ctr[@]}" images import "$archive" >/dev/null
  base="${archive%.tar}"
  if [ -f "$base.tags" ] && [ -f "$base.ref" ]; then
    ref="$(cat "$base.ref")"
    while read -r tag; do
      [ -n "$tag" ] && "${ctr[@]}" images tag --force "$ref" "$tag" >/dev/null
    done < "$base.tags"
  fi
done
