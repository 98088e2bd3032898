#!/usr/bin/env bash
# Installs what pycontainerd's demo, tests and benchmarks need on Debian 12, and
# the project venv (.venv, editable install with the test and dev extras).
#
#   sudo ./scripts/setup.sh
#
# Idempotent and fast the second time: Debian packages are installed only when
# one is missing (apt-get update runs at most once, and only then), and pip runs
# only when pyproject.toml or the Python interpreter changed since the last
# successful install (stamp .venv/.pycontainerd-setup). Nothing is downloaded
# when everything is in place.
#
# Environment: PYTHON (default python3) makes the venv.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.pycontainerd-setup"
PYTHON=${PYTHON:-python3}

# Debian packages: make (the Makefile), python3-venv (the venv), runc and
# busybox-static (containers and test images), docker-registry, skopeo and
# umoci (a local OCI registry and images for pull tests), btrfs-progs (the
# btrfs snapshotter), containerd (interop tests and the benchmark's peer), crun
# and criu (another OCI runtime and checkpoints: their tests run them and skip
# with the tool's own message where this kernel refuses), iproute2 (netns tests).
PACKAGES=(make python3-venv runc crun criu busybox-static docker-registry skopeo umoci btrfs-progs containerd iproute2)

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

install_packages() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "this script expects Debian 12 (dpkg-query and apt-get not found)"
  fi
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages: all present"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}
    installing them needs root: run 'sudo $0' (or as root: apt-get install -y ${missing[*]})"
  fi
  say "Debian packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed (no network or no Debian mirror reachable?)"
  apt-get install -y -q "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
}

venv_key() {
  # What the installed venv depends on: the project's metadata and the interpreter.
  { sha256sum "$REPO/pyproject.toml"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } \
    | sha256sum | cut -d' ' -f1
}

make_venv() {
  if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "venv: $VENV is broken (its interpreter does not run); recreating it"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (apt-get install python3-venv)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || die "$PYTHON is $("$PYTHON" --version 2>&1); pycontainerd needs Python >= 3.11"
    say "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  fi
  local key
  key=$(venv_key)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] && [ -x "$VENV/bin/pycontainerd" ]; then
    say "venv: up to date ($VENV)"
    return
  fi
  say "venv: pip install -e '.[test,dev]'"
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "${REPO}[test,dev]" \
    || die "pip install failed (is PyPI reachable?)"
  echo "$key" > "$STAMP"
}

install_packages
make_venv
say "setup done"
