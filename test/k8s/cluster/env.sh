# Where the Kubernetes test cluster's parts live; sourced by the scripts beside it.
#  K8S_BIN     the Kubernetes binaries, helm and the storage provisioner, built once per
#              machine from the Go module proxy (tools.sh), with the rewritten Kubernetes
#              module source in $K8S_BIN/src/kubernetes (the pause image is built from it).
#  K8S_IMAGES  OCI archives imported into containerd at start (images.sh).
#  K8S_STATE   the running cluster: PKI, etcd data, containerd and kubelet roots, logs,
#              PID files, volumes. down.sh --purge removes all of it.
# One cluster per machine: its ports (6443, 2379, 10250...) and bridge (k8slab0) are fixed.
K8S_CACHE="${GIT_SSHD_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/git-sshd/k8s}"
K8S_BIN="${GIT_SSHD_K8S_BIN:-$K8S_CACHE/bin}"
K8S_IMAGES="${GIT_SSHD_K8S_IMAGES:-$K8S_CACHE/images}"
K8S_STATE="${GIT_SSHD_K8S_STATE:-/var/tmp/git-sshd-k8s}"
K8S_VERSION=v1.37.2
HELM_VERSION=v3.19.0
LOCAL_PATH_VERSION=v0.0.30
K8S_BRIDGE=k8slab0
K8S_GATEWAY=10.244.0.1
K8S_POD_CIDR=10.244.0.0/24
K8S_CLUSTER_CIDR=10.244.0.0/16
K8S_SERVICE_CIDR=10.96.0.0/16
K8S_CNI_NETWORK=git-sshd-k8s
K8S_APISERVER="https://$K8S_GATEWAY:6443"
K8S_KUBECONFIG="$K8S_STATE/pki/admin.kubeconfig"
