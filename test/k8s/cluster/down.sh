#!/usr/bin/env bash
# Stops the test cluster up.sh started and undoes its changes to the host: processes
# (stopped in order by PID file, then whatever of theirs is left: container shims and the
# containers' processes, found by cgroup), mounts, network namespaces, the bridge and the
# service route, kube-proxy's nftables tables, the kubelet's iptables chains, the sysctls
# the kubelet and the bridge plugin changed, the kubepods cgroups, CNI's cache. With
# --purge it also removes the state dir ($K8S_STATE: PKI, etcd data, volumes, logs).
# Ends by checking that nothing is left (leftovers.sh): exit status 1 if something is.
#
#   bash test/k8s/cluster/down.sh [--purge]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
S="$K8S_STATE"
export KUBECONFIG="$K8S_KUBECONFIG"
PATH="$K8S_BIN:$PATH"
ctr=(ctr -a "$S/containerd/containerd.sock" -n k8s.io)
started=$SECONDS

alive() { [ -f "$S/$1.pid" ] && kill -0 "$(cat "$S/$1.pid")" 2>/dev/null; }
stop() { # name: TERM, up to 15 s, then KILL
  local file="$S/$1.pid" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

# 1. While the API and the kubelet run: the namespaces go, then every pod, so that the
# kubelet tears pods down itself (CNI DEL, volumes unmounted). Bounded; what is left is
# removed by force below.
if alive kube-apiserver && kubectl get --raw /readyz >/dev/null 2>&1; then
  kubectl get namespaces -o name 2>/dev/null | grep -vE '^namespace/(default|kube-system|kube-public|kube-node-lease)$' \
    | xargs -r kubectl delete --wait=false >/dev/null 2>&1
  if alive kubelet; then
    kubectl delete pods --all --all-namespaces --grace-period=1 --timeout=90s >/dev/null 2>&1
    for _ in $(seq 1 60); do [ -z "$("${ctr[@]}" tasks ls -q 2>/dev/null)" ] && break; sleep 1; done
  fi
fi

# 2. The node's components.
stop local-path-provisioner
stop kube-proxy
kube-proxy --cleanup >/dev/null 2>&1
stop kubelet
if alive containerd; then
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  sleep 1
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks rm -f "$task" >/dev/null 2>&1; done
  for container in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers rm "$container" >/dev/null 2>&1; done
fi
stop containerd
# Shims outlive containerd, and the containers' processes outlive their shims.
for pid in $(pgrep -f -- "$S/containerd" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
for tasks in $(find /sys/fs/cgroup/*/kubepods -name tasks 2>/dev/null); do
  while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$tasks"
done

# 3. The control plane.
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

# 4. Mounts (containers' root file systems, volumes, shm), pods' network namespaces
# (their veth ends go with them), cgroups.
for _ in 1 2 3; do
  mounts="$(awk -v s="$S/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r)"
  [ -z "$mounts" ] && break
  for mount in $mounts; do umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null; done
done
for netns in /run/netns/cni-*; do
  [ -e "$netns" ] || continue
  umount "$netns" 2>/dev/null
  rm -f "$netns"
done
for hierarchy in /sys/fs/cgroup/*/; do
  [ -d "$hierarchy/kubepods" ] && find "$hierarchy/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 5. Host network and netfilter.
ip link del "$K8S_BRIDGE" 2>/dev/null
ip route del "$K8S_SERVICE_CIDR" 2>/dev/null
for family in ip ip6; do nft delete table "$family" kube-proxy 2>/dev/null; done
for save in iptables ip6tables; do
  for table in filter nat mangle; do
    chains="$("$save-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\) .*/\1/p')"
    [ -z "$chains" ] && continue
    # Jumps into them first, then the chains themselves.
    "$save-save" -t "$table" | grep -E '^-A .* -j (KUBE-|CNI-)' | sed 's/^-A/-D/' | while read -r rule; do
      eval "$save -t $table $rule" 2>/dev/null
    done
    for chain in $chains; do "$save" -t "$table" -F "$chain" 2>/dev/null; done
    for chain in $chains; do "$save" -t "$table" -X "$chain" 2>/dev/null; done
  done
done
# Tables iptables-nft made for those chains, if the host had none before and they hold no rule now.
if [ -f "$S/host-nft-tables" ]; then
  nft list tables 2>/dev/null | while read -r _ family name; do
    grep -qx "table $family $name" "$S/host-nft-tables" && continue
    nft list table "$family" "$name" 2>/dev/null | grep -qE '^\s+(ip|ip6|meta|counter|jump|accept|drop|tcp|udp|iifname|oifname|ct) ' && continue
    nft delete table "$family" "$name" 2>/dev/null
  done
fi
if [ -f "$S/host-sysctls" ]; then
  while IFS== read -r key value; do sysctl -q -w "$key=$value" >/dev/null 2>&1; done < "$S/host-sysctls"
fi

# 6. Files outside the state dir: CNI's result cache, containerd's shim sockets, the kubelet's
# /var/log/containers links.
rm -f /var/lib/cni/results/"$K8S_CNI_NETWORK"-* 2>/dev/null
[ -f "$S/made-var-lib-cni" ] && { rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true; }
[ -f "$S/made-run-containerd" ] && rm -rf /run/containerd
find /var/log/containers -maxdepth 1 -type l -lname "$S/*" -delete 2>/dev/null
[ -f "$S/made-var-log-containers" ] && { rmdir /var/log/containers 2>/dev/null || true; }

sysctls="$(mktemp)"
cp "$S/host-sysctls" "$sysctls" 2>/dev/null
if [ "${1:-}" = --purge ]; then
  rm -rf "$S"
fi
status=0
bash "$here/leftovers.sh" "$sysctls" || status=1
rm -f "$sysctls"
echo "k8s down: done in $((SECONDS - started)) s$([ "${1:-}" = --purge ] && echo ", $S removed")"
exit $status
