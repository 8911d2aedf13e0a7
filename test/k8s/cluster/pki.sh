#!/usr/bin/env bash
# A throwaway PKI for the single-node test cluster (made once per state dir): a CA, the
# apiserver's serving certificate, client certificates for each component and the admin,
# and the service-account signing key pair. usage: pki.sh DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"
dir="${1:?usage: pki.sh DIR}"
mkdir -p "$dir"
cd "$dir"
[ -f admin.kubeconfig ] && exit 0
node="$(hostname)"
openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -nodes -key ca.key -subj "/CN=git-sshd-k8s-test-ca" -days 3650 -out ca.crt
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
issue() { # name subject [subjectAltName]
  openssl genrsa -out "$1.key" 2048 2>/dev/null
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  else printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
# 10.96.0.1 is the `kubernetes` Service pods use; the apiserver listens on the bridge address.
issue apiserver "/CN=kube-apiserver" "IP:$K8S_GATEWAY,IP:10.96.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue admin "/O=system:masters/CN=kubernetes-admin"
issue controller-manager "/CN=system:kube-controller-manager"
issue scheduler "/CN=system:kube-scheduler"
issue kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
issue kubelet "/O=system:nodes/CN=system:node:$node" "IP:127.0.0.1,DNS:$node,DNS:localhost"
issue kube-proxy "/CN=system:kube-proxy"
issue storage-provisioner "/O=system:masters/CN=local-path-provisioner"
chmod 0600 ./*.key
for user in admin controller-manager scheduler kubelet kube-proxy storage-provisioner; do
  cat > "$user.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: git-sshd-test, cluster: {server: "$K8S_APISERVER", certificate-authority: $dir/ca.crt}}]
users: [{name: $user, user: {client-certificate: $dir/$user.crt, client-key: $dir/$user.key}}]
contexts: [{name: git-sshd-test, context: {cluster: git-sshd-test, user: $user}}]
current-context: git-sshd-test
KUBECONFIG
done
