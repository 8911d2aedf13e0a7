#!/usr/bin/env bash
# Brings up a real single-node Kubernetes on this machine, every part a process of its own
# under $K8S_STATE (see env.sh): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd + runc, kubelet, kube-proxy (nftables), and the storage
# provisioner behind the default StorageClass. Imports the image archives in $K8S_IMAGES.
# Prints how long each step took and ends with the env lines to use it (also in
# $K8S_STATE/cluster.env). down.sh undoes all of it.
#
# Traffic stays inside the machine: pods live on the bridge k8slab0 (10.244.0.0/24, the
# host is 10.244.0.1, where the apiserver listens); the service range 10.96.0.0/16 is
# routed onto the bridge, so host-to-ClusterIP traffic works (kube-proxy rewrites it)
# and nothing un-rewritten leaves the machine.
#
# Facts this host imposes (Debian bookworm in a VM, cgroup v1, no CAP_SYS_RESOURCE):
# the kubelet needs failCgroupV1: false and cgroupfs; containerd restrict_oom_score_adj
# (runc cannot lower oom_score_adj otherwise: "can't get final child's PID from pipe");
# the apiserver reaches the kubelet by host name on loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
S="$K8S_STATE"
P="$S/pki"
export KUBECONFIG="$K8S_KUBECONFIG"
PATH="$K8S_BIN:$PATH"
node="$(hostname)"

bash "$here/tools.sh" --check || { echo "k8s up: the binaries are not built yet: bash $here/tools.sh" >&2; exit 1; }
bash "$here/packages.sh"
if [ -f "$S/kube-apiserver.pid" ] && kill -0 "$(cat "$S/kube-apiserver.pid")" 2>/dev/null; then
  echo "k8s up: a cluster already runs from $S (bash $here/down.sh first)" >&2
  exit 1
fi
for port in 2379 2380 6443 10250 10257 10259; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "k8s up: port $port is in use: another cluster (or something else) runs on this machine" >&2
    exit 1
  fi
done

started=$(date +%s.%N)
elapsed() { echo "k8s up: $(echo "$(date +%s.%N) - $started" | bc | xargs printf '%.1f') s $*"; }
# Every wait is bounded; on a timeout the component's log tail says why.
wait_for() { # what seconds log command...
  local what=$1 seconds=$2 log=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "k8s up: $what not within ${seconds} s; last lines of $S/logs/$log.log:" >&2
      tail -n 30 "$S/logs/$log.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  elapsed "$what"
}
# Each in a session of its own: a Ctrl-C in the caller's terminal does not kill the
# cluster out of order; down.sh stops them in order by PID file.
start() { local name=$1; shift; setsid "$@" > "$S/logs/$name.log" 2>&1 < /dev/null & echo $! > "$S/$name.pid"; }

mkdir -p "$S/logs"
# What the kubelet (kernel tunables), the bridge plugin (ip_forward) and kube-proxy change on
# the host: saved once, restored by down.sh.
if [ ! -f "$S/host-sysctls" ]; then
  for key in net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
             kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet; do
    value="$(sysctl -n "$key" 2>/dev/null)" && echo "$key=$value"
  done > "$S/host-sysctls"
  [ -d /run/containerd ] || touch "$S/made-run-containerd"
  [ -d /var/lib/cni ] || touch "$S/made-var-lib-cni"
  [ -d /var/log/containers ] || touch "$S/made-var-log-containers"
  nft list tables > "$S/host-nft-tables" 2>/dev/null || true
fi
bash "$here/pki.sh" "$P"

ip link show "$K8S_BRIDGE" >/dev/null 2>&1 || ip link add "$K8S_BRIDGE" type bridge
ip addr replace "$K8S_GATEWAY/24" dev "$K8S_BRIDGE"
ip link set "$K8S_BRIDGE" up
ip route replace "$K8S_SERVICE_CIDR" dev "$K8S_BRIDGE"

# Progress notifications every 5 s (etcd's default is 10 min): Debian's etcd 3.4 lacks the
# on-request progress the apiserver asks newer ones for, so without them its watch caches
# learn of a newer revision only from a change of their own kind, and a watch resumed from a
# revision seen elsewhere waits on a quiet kind ("Too large resource version").
start etcd etcd --name git-sshd-k8s --data-dir "$S/etcd-data" --experimental-watch-progress-notify-interval=5s \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster git-sshd-k8s=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
wait_for "etcd healthy" 60 etcd env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379 endpoint health

start kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
  --bind-address="$K8S_GATEWAY" --advertise-address="$K8S_GATEWAY" --secure-port=6443 \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --kubelet-client-certificate="$P/kubelet-client.crt" --kubelet-client-key="$P/kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=Hostname,InternalIP \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$P/sa.pub" \
  --service-account-signing-key-file="$P/sa.key" --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true
wait_for "kube-apiserver ready" 180 kube-apiserver kubectl get --raw /readyz

start kube-controller-manager kube-controller-manager --kubeconfig="$P/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" --use-service-account-credentials=true \
  --allocate-node-cidrs=true --cluster-cidr="$K8S_CLUSTER_CIDR" --service-cluster-ip-range="$K8S_SERVICE_CIDR" --leader-elect=false
start kube-scheduler kube-scheduler --kubeconfig="$P/scheduler.kubeconfig" \
  --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false

mkdir -p "$S/containerd" "$S/cni/net.d"
cat > "$S/containerd/config.toml" <<CONFIG
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
[grpc]
  address = "$S/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.10"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
CONFIG
cat > "$S/cni/net.d/10-bridge.conflist" <<CONFIG
{"cniVersion":"0.4.0","name":"$K8S_CNI_NETWORK","plugins":[
 {"type":"bridge","bridge":"$K8S_BRIDGE","isGateway":true,"ipMasq":false,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$S/cni/ipam","ranges":[[{"subnet":"$K8S_POD_CIDR"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}},{"type":"loopback"}]}
CONFIG
start containerd containerd --config "$S/containerd/config.toml"
wait_for "containerd up" 60 containerd ctr -a "$S/containerd/containerd.sock" version
bash "$here/import.sh"
elapsed "images imported"

mkdir -p "$S/kubelet"
cat > "$S/kubelet/config.yaml" <<CONFIG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$S/containerd/containerd.sock
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $P/kubelet.crt
tlsPrivateKeyFile: $P/kubelet.key
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $P/ca.crt}}
authorization: {mode: Webhook}
failSwapOn: false
resolvConf: /etc/resolv.conf
podLogsDir: $S/pod-logs
evictionHard: {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
CONFIG
start kubelet kubelet --config="$S/kubelet/config.yaml" --kubeconfig="$P/kubelet.kubeconfig" --root-dir="$S/kubelet/root"
# --conntrack-* 0: leave the host's conntrack settings as they are.
start kube-proxy kube-proxy --kubeconfig="$P/kube-proxy.kubeconfig" --proxy-mode=nftables \
  --cluster-cidr="$K8S_CLUSTER_CIDR" --hostname-override="$node" --nodeport-addresses="$K8S_GATEWAY/32" \
  --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0
wait_for "node Ready" 180 kubelet kubectl wait --for=condition=Ready "node/$node" --timeout=5s
wait_for "default ServiceAccount" 120 kube-controller-manager kubectl -n default get serviceaccount default

# The default StorageClass: rancher's local-path-provisioner (what kind ships), run as a
# host process. Each claim gets a directory under $S/volumes, made (mode 0777) and removed
# by a helper pod; reclaimPolicy Delete; WaitForFirstConsumer.
mkdir -p "$S/volumes"
kubectl apply -f - >/dev/null <<MANIFEST
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["$S/volumes"]}]}'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      priorityClassName: system-node-critical
      tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
      containers:
        - name: helper-pod
          image: localhost/git-sshd-k8s-busybox:1
          imagePullPolicy: Never
MANIFEST
start local-path-provisioner local-path-provisioner --debug start --kubeconfig "$P/storage-provisioner.kubeconfig" \
  --namespace local-path-storage --configmap-name local-path-config --service-account-name local-path-provisioner \
  --provisioner-name rancher.io/local-path --helper-image localhost/git-sshd-k8s-busybox:1
wait_for "storage provisioner up" 60 local-path-provisioner grep -q 'Starting provisioner controller\|Started provisioner controller' "$S/logs/local-path-provisioner.log"

cat > "$S/cluster.env" <<ENV
export KUBECONFIG=$K8S_KUBECONFIG
export GIT_SSHD_K8S_BIN=$K8S_BIN
export GIT_SSHD_K8S_STATE=$S
export GIT_SSHD_K8S_APISERVER=$K8S_APISERVER
export GIT_SSHD_K8S_CA=$P/ca.crt
ENV
elapsed "cluster up: source $S/cluster.env"
