#!/usr/bin/env bash
# Builds a local Node 24 base image where no registry can be reached: a minimal Debian
# bookworm from debootstrap plus the project's Node 24 (the node-linux-<arch> package that
# npm ci installed: binary and headers) and this machine's npm, imported into podman as
# $BASE_IMAGE. The Dockerfile takes it through its NODE_IMAGE build argument.
set -euo pipefail
BASE_IMAGE="${BASE_IMAGE:-localhost/git-sshd-node-base:node24-bookworm}"
PODMAN=(podman --storage-driver vfs)
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then exit 0; fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
# mktemp makes the directory 0700, and it becomes the image's "/": a non-root user could not reach anything.
chmod 0755 "$rootfs"
echo "debootstrap bookworm (minbase) into $rootfs"
debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
node_dir="$(dirname "$(dirname "$(readlink -f node_modules/.bin/node)")")"
"$node_dir/bin/node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' \
  || { echo "node_modules/.bin/node is not Node >= 24: run npm ci first" >&2; exit 1; }
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
install -m 0755 "$node_dir/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/include"
cp -a "$node_dir/include/node" "$rootfs/usr/local/include/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
# This machine's extra CAs (a TLS-inspecting egress proxy, say) go along: builds in the
# image reach the npm registry the way this machine does.
mkdir -p "$rootfs/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
# node links libstdc++ dynamically here; minbase lacks it.
chroot "$rootfs" bash -c 'apt-get install -y -qq --no-install-recommends libstdc++6 ca-certificates >/dev/null && update-ca-certificates >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
chroot "$rootfs" node --version
tar -C "$rootfs" -c . | "${PODMAN[@]}" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$BASE_IMAGE" >/dev/null
echo "imported $BASE_IMAGE"
