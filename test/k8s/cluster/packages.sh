#!/usr/bin/env bash
# The Debian packages the Kubernetes test cluster needs, installed machine-wide when
# missing (as root, with apt): etcd, containerd, runc and the CNI plugins run the
# cluster; buildah/podman build and export the images; debootstrap makes the image's
# base; gcc builds the pause image; nftables is kube-proxy's backend; conntrack lets
# kube-proxy flush stale UDP entries; busybox-static is the storage helper image; OpenSSH's client and git are the test peers.
set -euo pipefail
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need etcd etcd-server
need etcdctl etcd-client
need containerd containerd
need ctr containerd
need runc runc
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] && [ -x /usr/lib/cni/portmap ] || missing+=(containernetworking-plugins)
need buildah buildah
need podman podman
need debootstrap debootstrap
need gcc gcc
need nft nftables
need conntrack conntrack
need ip iproute2
need bc bc
need busybox busybox-static
need flock util-linux
need openssl openssl
need ssh openssh-client
need ssh-keyscan openssh-client
need git git
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
packages="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "k8s: missing tools; install these Debian packages: $packages" >&2
  exit 1
fi
echo "k8s: installing Debian packages machine-wide: ${packages}(once)"
started=$SECONDS
apt-get update -qq
# Installed for their binaries only: no service is started (there is no init system to start
# one in a container, and the test cluster runs its own etcd and containerd).
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
echo "k8s: installed them in $((SECONDS - started)) s"
