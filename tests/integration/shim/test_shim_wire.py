"""The shim's own wire and command line, bundles, OOM, exec with a terminal."""

from __future__ import annotations

import os
import socket
import stat
import subprocess

import msgpack
import pytest

from pycontainerd import oci, runtime, shim
from pycontainerd.api import errdefs
from pycontainerd.api.types import Mount
from pycontainerd.shim import UsageError
from pycontainerd.shim._io import parse_binary_uri
from pycontainerd.shim._main import parse_args

from .conftest import NAMESPACE, FakeDaemon, Harness, read_fifo


def _raw_call(address: str, frames: list[object]) -> list[list[object]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address.removeprefix("unix://"))
        s.settimeout(10)
        for frame in frames:
            s.sendall(msgpack.packb(frame))
        unpacker = msgpack.Unpacker(raw=False, timestamp=3)
        answers: list[list[object]] = []
        while len(answers) < len(frames):
            data = s.recv(65536)
            assert data, "the shim closed the connection"
            unpacker.feed(data)
            answers.extend(unpacker)
        return answers


def test_wire_errors_are_errdefs_maps(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    answers = _raw_call(
        task.shim.address,
        [
            [0, 1, "state", [{"id": task.id}, {"namespace": "ignored"}]],
            [0, 2, "no_such_method", [{}]],
            [0, 3, "kill", [{"id": task.id, "signal": "TERM"}]],
            [0, 4, "state", ["not a map"]],
            [0, 5, "state", [{"id": "other"}]],
            [0, 6, b"connect", [{"id": task.id}]],
        ],
    )
    by_id = {a[1]: a for a in answers}
    assert by_id[1][2] is None and by_id[1][3]["status"] == "running"  # type: ignore[index]
    assert by_id[2][2]["code"] == "NotImplemented"  # type: ignore[index]
    assert by_id[3][2] == {"code": "InvalidArgument", "message": "signal: expected an integer"}
    assert by_id[4][2]["code"] == "InvalidArgument"  # type: ignore[index]
    assert by_id[5][2]["code"] == "NotFound"  # type: ignore[index]
    assert by_id[6][3]["task_pid"] == task.pid  # type: ignore[index]


def test_shim_command_line() -> None:
    flags, debug, action = parse_args(
        ["-namespace", "ns", "-id", "c1", "--address=/run/d.sock", "-debug", "start"]
    )
    assert (flags, debug, action) == (
        {"namespace": "ns", "id": "c1", "address": "/run/d.sock"},
        True,
        "start",
    )
    for bad in (["-id", "c1", "start"], ["-namespace", "ns", "-id", "c1"], ["-bogus", "start"]):
        with pytest.raises(UsageError):
            parse_args(bad)
    done = subprocess.run(
        [*runtime.shim_command(), "-id", "x", "start"],
        env=runtime._shim.shim_env("/nonexistent/pycache"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    assert b"-namespace is required" in done.stderr
    path = shim.socket_path(shim.SOCKET_DIR, "/run/pycontainerd/pycontainerd.sock", "ns", "id")
    assert len(path) < 108 and path.startswith("/run/pycontainerd/s/")


def test_binary_uri_arguments() -> None:
    assert parse_binary_uri("binary:///usr/bin/logger?id=a%20b&verbose") == (
        "/usr/bin/logger",
        ["id", "a b", "verbose"],
    )


def test_shared_socket_when_the_shim_is_alive(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    again = runtime.start_shim(task.bundle)  # containerd's grouping: the live shim is reused
    try:
        assert again.address == task.shim.address
        assert again.connect()["shim_pid"] == task.shim.connect()["shim_pid"]
    finally:
        again.close()


def test_bundle_layout_and_errors(harness: Harness) -> None:
    spec = harness.spec("true", id="layout")
    bare = runtime.new_bundle(harness.state, harness.root, NAMESPACE, "bare", spec)
    assert stat.S_IMODE(os.stat(bare.path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(bare.rootfs).st_mode) == 0o711
    bare.delete()
    bundle = harness.bundle(spec, "layout")
    assert os.readlink(os.path.join(bundle.path, "work")) == bundle.work_dir
    assert bundle.path.endswith(f"io.containerd.runtime.v2.task/{NAMESPACE}/layout")
    assert bundle.read_spec() == spec
    assert os.path.exists(os.path.join(bundle.rootfs, "bin", "busybox"))  # bind-mounted
    with pytest.raises(errdefs.AlreadyExists):
        harness.bundle(spec, "layout")
    with pytest.raises(errdefs.InvalidArgument):
        runtime.new_bundle(harness.state, harness.root, NAMESPACE, "bad/id", spec)
    bad_mount = [
        Mount(type="bind", source=os.path.join(harness.base, "missing"), options=["rbind"])
    ]
    with pytest.raises(errdefs.NotFound):
        runtime.new_bundle(harness.state, harness.root, NAMESPACE, "broken", spec, bad_mount)
    assert not os.path.exists(os.path.join(os.path.dirname(bundle.path), "broken"))
    bundle.delete()
    assert not os.path.exists(bundle.path) and not os.path.exists(bundle.work_dir)
    assert not os.path.exists(os.path.join(os.path.dirname(bundle.path), ".layout"))


def test_oom_event(harness: Harness, daemon: FakeDaemon) -> None:
    task = harness.task("tail", "/dev/zero", opts=(oci.with_memory_limit(16 << 20),))
    exit = task.shim.wait(timeout=20)
    assert exit.exit_status == 137
    assert daemon.wait_for(task.id, "/tasks/oom")
    assert daemon.topics(task.id).index("/tasks/oom") > 0


def test_exec_with_terminal(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    stdout = harness.fifo("exec-tty")
    reader = os.open(stdout, os.O_RDONLY | os.O_NONBLOCK)
    try:
        process = {
            "args": ["sh", "-c", "sleep 0.3; stty size; tty"],
            "cwd": "/",
            "env": [oci.DEFAULT_PATH_ENV],
        }
        task.shim.exec("tty", process, terminal=True, stdout=stdout)
        task.shim.start("tty")
        task.shim.resize_pty(90, 30, exec_id="tty")
        output = read_fifo(reader, until=b"/dev/pts/", timeout=10)
        assert task.shim.wait("tty", timeout=10).exit_status == 0
    finally:
        os.close(reader)
    assert b"30 90\r\n" in output
    assert task.shim.state("tty")["terminal"] is True


def test_debug_log(harness: Harness) -> None:
    harness.debug = True
    task = harness.task("true")
    task.shim.wait(timeout=10)
    with open(os.path.join(task.bundle.path, "shim.log")) as f:
        log = f.read()
    assert f"serving shimtest/{task.id}" in log
    assert "shim: create {" in log and "shim: wait {" in log
