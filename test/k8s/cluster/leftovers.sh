#!/usr/bin/env bash
# Lists what of the test cluster is still on the host, and exits 1 if anything is:
# its processes, mounts, pods' network namespaces, the bridge and the service route,
# kube-proxy's nftables tables, KUBE-/CNI- iptables chains, kubepods cgroups, CNI's
# cache for its network, and sysctls that differ from the values in SYSCTLS (key=value
# lines, saved by up.sh) when given.
#
#   bash test/k8s/cluster/leftovers.sh [SYSCTLS]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
S="$K8S_STATE"
found=()
for proc in /proc/[0-9]*; do
  pid="${proc#/proc/}"
  [ "$pid" = $$ ] && continue
  exe="$(readlink "$proc/exe" 2>/dev/null)" || continue
  command="$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null | cut -c1-150)"
  case "$exe" in "$K8S_BIN"/*) ;; *) case "$command" in *"$S/"*) ;; *) continue ;; esac ;; esac
  found+=("process $pid: $command")
done
for tasks in $(find /sys/fs/cgroup/*/kubepods -name tasks 2>/dev/null); do
  while read -r pid; do found+=("process $pid in $(dirname "$tasks")"); done < "$tasks"
done
while read -r mount; do found+=("mount $mount"); done < <(awk -v s="$S/" 'index($2, s) == 1 || $2 ~ "^/run/netns/cni-" {print $2}' /proc/mounts)
for netns in /run/netns/cni-*; do [ -e "$netns" ] && found+=("network namespace $netns"); done
ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && found+=("bridge $K8S_BRIDGE")
[ -n "$(ip route show "$K8S_SERVICE_CIDR" 2>/dev/null)" ] && found+=("route $K8S_SERVICE_CIDR")
for family in ip ip6; do nft list table "$family" kube-proxy >/dev/null 2>&1 && found+=("nftables table $family kube-proxy"); done
for save in iptables-save ip6tables-save; do
  while read -r chain; do found+=("$save chain $chain"); done < <("$save" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\) .*/\1/p')
done
for hierarchy in /sys/fs/cgroup/*/; do [ -d "$hierarchy/kubepods" ] && found+=("cgroup ${hierarchy}kubepods"); done
for file in /var/lib/cni/results/"$K8S_CNI_NETWORK"-*; do [ -e "$file" ] && found+=("file $file"); done
for link in $(find /var/log/containers -maxdepth 1 -type l -lname "$S/*" 2>/dev/null); do found+=("link $link"); done
if [ -n "${1:-}" ] && [ -s "$1" ]; then
  while IFS== read -r key value; do
    now="$(sysctl -n "$key" 2>/dev/null)"
    [ "$now" = "$value" ] || found+=("sysctl $key=$now (was $value)")
  done < "$1"
fi
if [ ${#found[@]} -eq 0 ]; then
  echo "k8s: nothing of the test cluster is left on this host"
  exit 0
fi
echo "k8s: left on this host:" >&2
printf '  %s\n' "${found[@]}" >&2
exit 1
