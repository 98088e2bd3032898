"""The daemon's shim fork server and child reaper, with real shims that serve no task."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

import pycontainerd
from pycontainerd import runtime, shim
from pycontainerd.api import errdefs
from pycontainerd.runtime._forkserver import spawn_exec_reaped


def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _stat(pid: int) -> tuple[str, int]:
    """``(state, ppid)`` of ``pid``; ``("", 0)`` once it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return "", 0
    return fields[0], int(fields[1])


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


class Launcher:
    """Bundles under one short temp dir; every shim started is shut down after the test."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.socket_dir = os.path.join(base, "s")
        self.clients: list[runtime.ShimClient] = []

    def start(self, id: str, spawn: shim.Spawner) -> tuple[runtime.ShimClient, int]:
        bundle = os.path.join(self.base, id)
        os.makedirs(bundle, exist_ok=True)
        address, pid = shim.launch_serve(
            runtime.shim_command(),
            runtime._shim.shim_env(os.path.join(self.base, "pycache")),
            bundle=bundle,
            namespace="fs",
            id=id,
            socket_dir=self.socket_dir,
            spawn=spawn,
        )
        client = runtime.ShimClient(address, id, timeout=15)
        self.clients.append(client)
        return client, pid

    def close(self) -> None:
        for client in self.clients:
            pid = 0
            with contextlib.suppress(errdefs.ErrdefsError):  # already gone
                pid = int(client.connect()["shim_pid"])
                client.shutdown(now=True)
            client.close()
            if pid:
                _until(_gone(pid), 5)


def _gone(pid: int) -> Callable[[], bool]:
    return lambda: _stat(pid)[0] in ("", "Z")


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    # Short: the socket path (dir + 64 hex) must stay under 108 bytes.
    lau = Launcher(tempfile.mkdtemp(prefix="f", dir="/tmp"))
    try:
        yield lau
    finally:
        lau.close()
        shutil.rmtree(lau.base, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[runtime.ForkServer]:
    fork_server = runtime.ForkServer()
    try:
        yield fork_server
    finally:
        pid = fork_server.pid
        fork_server.close()  # the fork server exits on the closed socket
        if pid:
            assert _until(lambda: _stat(pid)[0] == "")  # ... and is reaped


def test_forked_shims_serve_in_their_own_session_with_their_command_line(
    launcher: Launcher, server: runtime.ForkServer
) -> None:
    first, pid = launcher.start("a1", server.spawn)
    assert server.pid and pid
    assert int(first.connect()["shim_pid"]) == pid
    assert _stat(pid)[1] == server.pid  # the fork server's child, not ours
    assert os.getsid(pid) == pid
    zygote = server.pid
    second, pid2 = launcher.start("a2", server.spawn)
    assert server.pid == zygote and pid2 != pid  # one fork server for both
    assert int(second.connect()["shim_pid"]) == pid2
    assert os.readlink(f"/proc/{pid2}/cwd") == os.path.join(launcher.base, "a2")
    argv = _cmdline(pid2)
    assert argv[: len(runtime.shim_command())] == runtime.shim_command()
    assert argv[-5:] == [
        "-socket-dir",
        launcher.socket_dir,
        "-bundle",
        f"{launcher.base}/a2",
        "serve",
    ]
    assert "zygote" in _cmdline(zygote)
    # A shim's shutdown: the fork server (ignoring SIGCHLD) leaves no zombie.
    second.shutdown(now=True)
    assert _until(lambda: _stat(pid2)[0] == "")


def test_a_dead_fork_server_falls_back_to_exec_then_is_replaced(
    launcher: Launcher, server: runtime.ForkServer
) -> None:
    first, pid = launcher.start("b1", server.spawn)
    zygote = server.pid
    os.kill(zygote, signal.SIGKILL)
    assert _until(lambda: _stat(zygote)[0] == "")  # reaped by the daemon's reaper
    # The forked shim outlives its fork server: re-parented, still serving.
    assert int(first.connect()["shim_pid"]) == pid
    assert _stat(pid)[1] != zygote
    # The next request finds it dead: exec'd (our child), and a new one next time.
    second, pid2 = launcher.start("b2", server.spawn)
    assert _stat(pid2)[1] == os.getpid()
    assert int(second.connect()["shim_pid"]) == pid2
    assert server.pid == 0 and server.failures == 1
    third, pid3 = launcher.start("b3", server.spawn)
    assert server.pid not in (0, zygote) and _stat(pid3)[1] == server.pid
    assert server.failures == 0
    assert int(third.connect()["shim_pid"]) == pid3
    second.shutdown(now=True)
    assert _until(lambda: _stat(pid2)[0] == "")  # our child, reaped by REAPER


def test_disabled_after_failures_execs(launcher: Launcher) -> None:
    fork_server = runtime.ForkServer(max_failures=0)
    assert not fork_server.enabled
    client, pid = launcher.start("c1", fork_server.spawn)
    assert fork_server.pid == 0 and _stat(pid)[1] == os.getpid()
    assert int(client.connect()["shim_pid"]) == pid


def test_child_reaper_reaps_only_what_it_watches() -> None:
    watched = os.posix_spawn(sys.executable, [sys.executable, "-S", "-c", "pass"], dict(os.environ))
    other = os.posix_spawn(sys.executable, [sys.executable, "-S", "-c", "pass"], dict(os.environ))
    try:
        runtime.REAPER.watch(watched)
        assert _until(lambda: _stat(watched)[0] == "")
        assert watched not in runtime.REAPER.watched()
        assert _until(lambda: _stat(other)[0] == "Z")  # not ours to reap
    finally:
        _, status = os.waitpid(other, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_exec_spawner_reaps(launcher: Launcher) -> None:
    client, pid = launcher.start("d1", spawn_exec_reaped)
    assert _stat(pid)[1] == os.getpid() and os.getsid(pid) == pid
    assert pid in runtime.REAPER.watched()
    client.shutdown(now=True)
    assert _until(lambda: _stat(pid)[0] == "")


def test_shim_env_keeps_bytecode_out_of_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    cache = runtime.shim_pycache_dir("/var/run/elsewhere")
    assert cache == "/var/run/elsewhere/pycache"  # under the daemon's state
    env = runtime._shim.shim_env(cache)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == cache
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", "/elsewhere")
    env = runtime._shim.shim_env(cache)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONPYCACHEPREFIX"] == "/elsewhere"
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX")
    env = runtime._shim.shim_env(cache)
    assert "PYTHONPYCACHEPREFIX" not in env  # Python's own __pycache__ then
    assert env["PYTHONPATH"].split(os.pathsep)[0] == os.path.dirname(
        os.path.dirname(os.path.abspath(pycontainerd.__file__))
    )
