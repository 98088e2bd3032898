#!/usr/bin/env bash
# The whole check, as CI runs it (needs no make):
#
#   ./scripts/test.sh                 setup, then every check below, in this order
#   ./scripts/test.sh STEP...         only those steps (the Makefile's targets use this)
#
# Steps:
#   setup       scripts/setup.sh (Debian packages and .venv; root for apt-get)
#   lint        ruff check . && ruff format --check .
#   typecheck   mypy --strict (files and settings from pyproject.toml)
#   imports     lint-imports (the layer contracts in pyproject.toml)
#   docs        python -m pycontainerd.api.docgen --check (docs/protocol.md is current)
#   pytest      python -m pytest -q tests        (unit + integration; integration needs root)
#   unit        python -m pytest -q tests/unit
#   integration python -m pytest -q tests/integration
#
# Extra pytest arguments: PYTEST_ARGS="-x -k namespaces" ./scripts/test.sh pytest
# A pytest run passes only when pytest exits 0 AND reports "N passed": "no tests
# collected" (exit code 5) or a run that passes nothing is a failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BIN="$REPO/.venv/bin"
ALL=(setup lint typecheck imports docs pytest)

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

need_venv() {
  [ -x "$BIN/python" ] || die "no .venv: run ./scripts/setup.sh (or make setup) first"
}

run_pytest() {
  need_venv
  local out rc
  out=$(mktemp)
  set +e
  # shellcheck disable=SC2086  # PYTEST_ARGS is split into arguments on purpose
  "$BIN/python" -m pytest -q ${PYTEST_ARGS:-} "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 5 ]; then
    rm -f "$out"
    die "pytest $*: no tests collected (exit code 5)"
  fi
  if [ "$rc" -ne 0 ]; then
    rm -f "$out"
    die "pytest $* failed (exit code $rc)"
  fi
  if ! grep -Eq '[0-9]+ passed' "$out"; then
    rm -f "$out"
    die "pytest $* exited 0 but reported no passed test"
  fi
  rm -f "$out"
}

run_step() {
  case "$1" in
    setup)
      step "setup"
      "$REPO/scripts/setup.sh" ;;
    lint)
      need_venv
      step "lint: ruff check . && ruff format --check ."
      "$BIN/ruff" check .
      "$BIN/ruff" format --check . ;;
    typecheck)
      need_venv
      step "typecheck: mypy --strict"
      "$BIN/mypy" --strict ;;
    imports)
      need_venv
      step "imports: lint-imports"
      "$BIN/lint-imports" ;;
    docs)
      need_venv
      step "docs: python -m pycontainerd.api.docgen --check"
      "$BIN/python" -m pycontainerd.api.docgen --check ;;
    pytest)
      step "pytest: tests (unit + integration)"
      run_pytest tests ;;
    unit)
      step "pytest: tests/unit"
      run_pytest tests/unit ;;
    integration)
      step "pytest: tests/integration"
      [ "$(id -u)" -eq 0 ] || die "integration tests run as root"
      run_pytest tests/integration ;;
    *)
      die "unknown step '$1' (steps: setup lint typecheck imports docs pytest unit integration)" ;;
  esac
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${ALL[@]}")
for s in "${steps[@]}"; do
  run_step "$s"
done
if [ $# -eq 0 ]; then
  printf '\n==> all checks passed: %s\n' "${ALL[*]}"
fi
