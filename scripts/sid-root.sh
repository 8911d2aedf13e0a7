#!/usr/bin/env bash
# Builds, once, a Debian sid root with today's OpenSSH client (10.x) and git (2.5x), the
# peers test/modern.test.ts runs chrooted against git-sshd on loopback (a chroot shares the
# network). Cached in $GIT_SSHD_SID_ROOT (~/.cache/git-sshd/sid-root); a root whose build
# did not finish is built again. Needs root and debootstrap (installed when missing).
# Prints the root's path on its last line.
set -euo pipefail
ROOT="${GIT_SSHD_SID_ROOT:-$HOME/.cache/git-sshd/sid-root}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DONE="$ROOT/.git-sshd-complete"

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if [ -e "$DONE" ]; then echo "$ROOT"; exit 0; fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "sid root: installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
rm -rf "$ROOT"
started=$SECONDS
echo "sid root: debootstrap sid with openssh-client and git into $ROOT (once, a few minutes)" >&2
debootstrap --variant=minbase --include=openssh-client,git,ca-certificates sid "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
  echo "sid root: debootstrap failed, see $ROOT.log" >&2
  tail -n 20 "$ROOT.log" >&2
  exit 1
}
chroot "$ROOT" apt-get clean
echo "sid root: $(chroot "$ROOT" ssh -V 2>&1), $(chroot "$ROOT" git --version), built in $((SECONDS - started)) s" >&2
touch "$DONE"
echo "$ROOT"
