#!/usr/bin/env bash
# pycontainerd in two minutes, as root on Debian 12 (no make needed):
#
#   ./scripts/demo.sh
#
# Runs scripts/setup.sh, starts the daemon on a fresh demo root under
# /tmp/pycontainerd-demo (log: /tmp/pycontainerd-demo/daemon.log), walks through
# pyctr, then stops the daemon with SIGTERM.
#
# Environment:
#   KEEP=1         leave the daemon running afterwards (the script prints how to
#                  use and stop it)
#   STEPS="a b"    run only these steps (default: all, in order; see DEFAULT_STEPS)
#   SKIP_SETUP=1   do not run scripts/setup.sh first
#   DEMO_DIR=DIR   where root, state, socket and log go (default /tmp/pycontainerd-demo;
#                  keep it short: Unix socket paths are limited to 108 bytes)
#
# Adding a step: write a function demo_NAME below and add NAME to DEFAULT_STEPS.
# Inside a step, `show ARGS...` prints and runs `pyctr ARGS...` against the demo
# daemon, `run_for SECONDS ARGS...` does the same for a command that streams
# until stopped.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/.venv/bin"
DEMO=${DEMO_DIR:-/tmp/pycontainerd-demo}
ADDRESS="$DEMO/pycontainerd.sock"
LOG="$DEMO/daemon.log"
PIDFILE="$DEMO/daemon.pid"
READY_TIMEOUT=${READY_TIMEOUT:-30}
DEFAULT_STEPS="version namespaces plugins registry pull run events debug"
export PYTHONUNBUFFERED=1 # streamed output (events) must not sit in a buffer when stopped

DAEMON_PID=""
DEMO_OK=0

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------- helpers for steps
show() {
  printf '\n$ pyctr %s\n' "$*"
  "$BIN/pyctr" --address "$ADDRESS" "$@"
}

run_for() {
  local seconds=$1 rc=0
  shift
  printf '\n$ pyctr %s    # stopped after %ss\n' "$*" "$seconds"
  timeout "$seconds" "$BIN/pyctr" --address "$ADDRESS" "$@" || rc=$?
  # 124: timeout stopped it, as intended
  [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || die "pyctr $* failed (exit code $rc)"
}

# --------------------------------------------------------------------------- the steps
demo_version() {
  say "the daemon answers: client and server versions"
  show version
}

demo_namespaces() {
  say "namespaces: create one, label it, list them"
  show namespaces create demo
  show namespaces label demo env=dev
  show namespaces ls
}

demo_plugins() {
  say "plugins: what the daemon loaded (type, id, status)"
  show plugins ls
}

demo_registry() {
  say "a local OCI registry: Debian's docker-registry on 127.0.0.1, a busybox image pushed to it"
  REGISTRY=$("$BIN/python" "$REPO/scripts/demo_registry.py" "$DEMO/registry") \
    || die "could not start the local registry (see $DEMO/registry/registry.log)"
  printf 'registry: %s, image: %s/library/busybox:latest\n' "$REGISTRY" "$REGISTRY"
}

demo_pull() {
  [ -n "${REGISTRY:-}" ] || demo_registry
  say "pull: resolve, fetch, verify and unpack into overlayfs snapshots"
  show images pull --plain-http "$REGISTRY/library/busybox:latest"
  show images ls
  show snapshots ls
}

demo_run() {
  [ -n "${REGISTRY:-}" ] || demo_pull
  say "run a container from it (runc under a per-task shim), then clean up"
  show run --rm "$REGISTRY/library/busybox:latest" hello echo "hello from a pycontainerd container"
}

stop_registry() {
  local pidfile="$DEMO/registry/registry.pid"
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
}

demo_events() {
  say "events: the journal replays everything since sequence 0, then streams live"
  run_for 2 events --since 0
}

demo_debug() {
  say "debug: the live actor tree under the root supervisor"
  show debug actors
}

# --------------------------------------------------------------------------- the daemon
stop_previous() {
  # A daemon left running by an earlier KEEP=1 run of this script.
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE")
  if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q pycontainerd; then
    say "stopping the demo daemon left running earlier (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.1
    done
    die "the earlier demo daemon (pid $pid) ignores SIGTERM; stop it first"
  fi
}

start_daemon() {
  stop_previous
  rm -rf "$DEMO"
  mkdir -p "$DEMO"
  say "starting pycontainerd (log: $LOG)"
  printf '$ pycontainerd --root %s --state %s --address %s\n' "$DEMO/root" "$DEMO/state" "$ADDRESS"
  "$BIN/pycontainerd" --root "$DEMO/root" --state "$DEMO/state" --address "$ADDRESS" \
    > "$LOG" 2>&1 &
  DAEMON_PID=$!
  echo "$DAEMON_PID" > "$PIDFILE"
  local deadline=$((SECONDS + READY_TIMEOUT)) err="$DEMO/pyctr-ready.err"
  until "$BIN/pyctr" --address "$ADDRESS" version > /dev/null 2> "$err"; do
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      local rc=0
      wait "$DAEMON_PID" || rc=$?
      DAEMON_PID=""
      printf 'demo.sh: the daemon exited with code %s while starting; last lines of %s:\n' \
        "$rc" "$LOG" >&2
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf 'demo.sh: no answer to "pyctr version" after %ss.\n' "$READY_TIMEOUT" >&2
      printf 'last pyctr error:\n' >&2
      tail -n 10 "$err" >&2
      printf 'last lines of %s:\n' "$LOG" >&2
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    sleep 0.2
  done
  rm -f "$err"
  printf 'ready: pid %s, socket %s\n' "$DAEMON_PID" "$ADDRESS"
}

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  local pid=$DAEMON_PID rc=0
  DAEMON_PID=""
  if [ "${KEEP:-0}" = 1 ] && [ "$DEMO_OK" = 1 ]; then
    say "KEEP=1: the daemon keeps running (pid $pid)"
    printf '  talk to it:  %s --address %s namespaces ls\n' "$BIN/pyctr" "$ADDRESS"
    printf '  its log:     %s\n' "$LOG"
    printf '  stop it:     kill %s   (or run this script again)\n' "$pid"
    return 0
  fi
  say "stopping the daemon (SIGTERM to pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    printf 'demo.sh: the daemon ignored SIGTERM for 20s and was killed; see %s\n' "$LOG" >&2
    return 1
  fi
  wait "$pid" || rc=$?
  rm -f "$PIDFILE"
  printf 'stopped (exit code %s)\n' "$rc"
  [ "$rc" -eq 0 ] || { tail -n 20 "$LOG" >&2; return 1; }
}

on_exit() {
  local rc=$?
  stop_daemon || rc=1
  stop_registry
  if [ "$rc" -eq 0 ]; then
    say "demo done"
  else
    printf '\ndemo.sh: FAILED (exit code %s); daemon log: %s\n' "$rc" "$LOG" >&2
  fi
  exit "$rc"
}

main() {
  if [ "$(id -u)" -ne 0 ]; then
    die "run as root (the daemon mounts, runs runc and owns its root): sudo $0"
  fi
  if [ "${SKIP_SETUP:-0}" != 1 ]; then
    "$REPO/scripts/setup.sh"
  fi
  [ -x "$BIN/pycontainerd" ] || die "$BIN/pycontainerd not found: run ./scripts/setup.sh"
  local steps=${STEPS:-$DEFAULT_STEPS} s
  for s in $steps; do
    declare -F "demo_$s" > /dev/null || die "unknown step '$s' (steps: $DEFAULT_STEPS)"
  done
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_daemon
  for s in $steps; do
    "demo_$s"
  done
  DEMO_OK=1
}

main "$@"
