#!/usr/bin/env bash
# The image test: builds the real Dockerfile with buildah on a local base image and runs it
# with podman (no Docker engine and no registry pulls on these machines). Slow; run apart
# from `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in buildah podman debootstrap runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund
export PATH="$PWD/node_modules/.bin:$PATH"
# helm renders the chart's pod, which the test runs the image as.
GIT_SSHD_TOOLS="$(bash scripts/tools.sh --dir)"
export GIT_SSHD_TOOLS
bash scripts/tools.sh
export HELM="$GIT_SSHD_TOOLS/helm"
# Built by the script (and reused by the Kubernetes suite in the same run): its name says what it was built from.
GIT_SSHD_IMAGE="$(bash scripts/build-image.sh)"
export GIT_SSHD_IMAGE
exec node --import tsx --test --test-timeout=1200000 test/image/*.test.ts
