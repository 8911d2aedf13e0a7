#!/usr/bin/env bash
# Renders k8s/git-sshd.yaml from the chart with its default values. Never edit k8s/ by
# hand: test/chart.test.ts fails when the files drift from what this script writes.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM="${HELM:-helm}"
render() {
  echo "# Rendered from charts/git-sshd with its default values by scripts/render-k8s.sh; do not edit."
  "$HELM" template git-sshd charts/git-sshd --namespace git-sshd --kube-version 1.31.0
}
# --stdout: print instead of writing (the drift test compares the two).
if [ "${1:-}" = "--stdout" ]; then render; else render > k8s/git-sshd.yaml; fi
