"""The shim's launch (shared by its ``start`` command and the daemon) and command line."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator

import pytest

from pycontainerd import shim

# A stand-in for ``serve``: answers one connection on fd 3 with where and how it runs.
FAKE_SERVE = textwrap.dedent(
    """
    import os, socket, sys
    listener = socket.socket(fileno=3)
    conn, _ = listener.accept()
    report = f"{os.getsid(0)} {os.getpid()} {os.getppid()} {' '.join(sys.argv[1:])}"
    print("fake shim on stderr", file=sys.stderr, flush=True)
    conn.sendall(report.encode())
    conn.close()
    """
)


@pytest.fixture
def dirs() -> Iterator[tuple[str, str]]:
    # Short: the socket path (dir + 64 hex) must stay under 108 bytes.
    base = tempfile.mkdtemp(prefix="l", dir="/tmp")
    bundle = os.path.join(base, "bundle")
    os.mkdir(bundle)
    try:
        yield bundle, os.path.join(base, "s")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _ask(address: str) -> list[str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(address.removeprefix("unix://"))
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode().split(" ")


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_launch_binds_writes_address_and_spawns_in_a_new_session(
    dirs: tuple[str, str],
) -> None:
    bundle, socket_dir = dirs
    command = [sys.executable, "-S", "-c", FAKE_SERVE]
    address, pid = shim.launch_serve(
        command, dict(os.environ), bundle=bundle, namespace="ns", id="c1", socket_dir=socket_dir
    )
    try:
        path = shim.socket_path(socket_dir, "", "ns", "c1")
        assert address == f"unix://{path}"
        with open(os.path.join(bundle, "address")) as f:
            assert f.read() == address
        assert not os.path.exists(os.path.join(bundle, "address.tmp"))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o711
        sid, child, parent, *args = _ask(address)
        assert int(child) == pid and int(sid) == pid  # its own session
        assert int(parent) == os.getpid()
        assert args == [
            *shim.serve_args(bundle=bundle, namespace="ns", id="c1", socket_dir=socket_dir)
        ]
        assert args[-3:] == ["-bundle", bundle, "serve"]
    finally:
        assert _reap(pid) == 0
    with open(os.path.join(bundle, "shim.log")) as f:
        assert "fake shim on stderr" in f.read()


def test_launch_shares_a_live_socket_and_replaces_a_dead_one(dirs: tuple[str, str]) -> None:
    bundle, socket_dir = dirs
    os.makedirs(socket_dir)
    path = shim.socket_path(socket_dir, "/run/d.sock", "ns", "c2")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(4)
    spawned: list[list[str]] = []

    def spawn(command: object, args: list[str], env: object, listen_fd: int, log_fd: int) -> int:
        spawned.append(args)
        return 4242

    try:
        address, pid = shim.launch_serve(
            ["x"], {}, bundle=bundle, namespace="ns", id="c2", address="/run/d.sock",
            socket_dir=socket_dir, spawn=spawn,
        )  # fmt: skip
        assert (address, pid, spawned) == (f"unix://{path}", 0, [])
        with open(os.path.join(bundle, "address")) as f:
            assert f.read() == address
    finally:
        live.close()
    # Nothing listens any more: the stale file is replaced by a new listener.
    address, pid = shim.launch_serve(
        ["x"], {}, bundle=bundle, namespace="ns", id="c2", address="/run/d.sock",
        socket_dir=socket_dir, spawn=spawn,
    )  # fmt: skip
    assert pid == 4242 and len(spawned) == 1
    assert "-address" in spawned[0] and "/run/d.sock" in spawned[0]
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_launch_failures_leave_no_socket(dirs: tuple[str, str]) -> None:
    bundle, socket_dir = dirs

    def failing(command: object, args: object, env: object, listen_fd: int, log_fd: int) -> int:
        raise OSError(2, "no such shim")

    with pytest.raises(OSError, match="no such shim"):
        shim.launch_serve(
            ["x"], {}, bundle=bundle, namespace="ns", id="c3", socket_dir=socket_dir, spawn=failing
        )
    assert os.listdir(socket_dir) == []
    with pytest.raises(shim.UsageError, match="is over 107 bytes"):
        shim.launch_serve(
            ["x"], {}, bundle=bundle, namespace="ns", id="c4", socket_dir="/" + "d" * 80
        )


def test_start_command_prints_the_address_and_leaves_the_shim(dirs: tuple[str, str]) -> None:
    bundle, socket_dir = dirs
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run(
        [sys.executable, "-S", "-P", "-m", "pycontainerd.shim", "-namespace", "ns", "-id", "c5",
         "-socket-dir", socket_dir, "start"],
        cwd=bundle, env=env, capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    address = done.stdout.decode().strip()
    with open(os.path.join(bundle, "address")) as f:
        assert f.read() == address
    from pycontainerd import runtime  # the shim's client

    with runtime.ShimClient(address, "c5", timeout=10) as client:
        info = client.connect()
        assert info["version"] == shim.VERSION and info["task_pid"] == 0
        shim_pid = int(info["shim_pid"])
        assert os.getsid(shim_pid) == shim_pid
        client.shutdown(now=True)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{shim_pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(address.removeprefix("unix://"))


def test_set_cmdline_rewrites_proc_cmdline_in_place() -> None:
    script = textwrap.dedent(
        """
        import sys
        from pycontainerd.shim import set_cmdline
        assert set_cmdline(["python", "-m", "pycontainerd.shim", "-id", "x", "serve"])
        sys.stdout.write(open("/proc/self/cmdline", "rb").read().hex())
        print()
        assert set_cmdline(["y" * 4000])  # longer than the room: truncated to it
        sys.stdout.write(open("/proc/self/cmdline", "rb").read().hex())
        """
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, "-cmdline-room", " " * 40],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        capture_output=True,
        check=True,
        timeout=30,
    )
    first, second = (bytes.fromhex(line) for line in done.stdout.decode().split())
    assert [a for a in first.split(b"\0") if a] == [
        b"python", b"-m", b"pycontainerd.shim", b"-id", b"x", b"serve"
    ]  # fmt: skip
    assert len(second) == len(first) and second.rstrip(b"\0") == b"y" * (len(first) - 1)
