#!/usr/bin/env bash
# Installs, once, Paramiko (PyPI) into a virtualenv under ~/.cache/git-sshd for the
# key-exchange tests (test/peers/paramiko/client.py). Prints the venv's python on its last line.
set -euo pipefail
VERSION=5.1.0
VENV="${GIT_SSHD_PEERS:-$HOME/.cache/git-sshd/peers}/paramiko-$VERSION"
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import paramiko, sys; sys.exit(paramiko.__version__ != '$VERSION')" 2>/dev/null; then
  echo "paramiko peer: installing Paramiko $VERSION from PyPI into $VENV (once)" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "paramiko==$VERSION" >&2
fi
echo "$VENV/bin/python"
