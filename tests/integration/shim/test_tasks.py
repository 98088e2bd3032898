"""Tasks through pycontainerd.runtime and the shim, with real runc."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime

import msgpack
import pytest

from pycontainerd import oci, runtime, shim
from pycontainerd.api import errdefs
from pycontainerd.shim import read_exit_file

from .conftest import FakeDaemon, Harness, pid_alive, read_fifo, wait_until


@pytest.mark.parametrize("code", [0, 3])
def test_create_start_wait_delete(harness: Harness, code: int) -> None:
    out = os.path.join(harness.base, "out.log")
    task = harness.task(
        "sh",
        "-c",
        f"echo hello; id -u; exit {code}",
        start=False,
        stdout=f"file://{out}",
        stderr=f"file://{out}",
    )
    state = task.shim.state()
    assert state["status"] == "created"
    assert state["pid"] == task.pid > 0
    assert state["bundle"] == task.bundle.path
    assert task.shim.start() == task.pid
    exit = task.shim.wait()
    # The exit is on disk before wait returns.
    record = read_exit_file(task.bundle.path)
    assert record is not None
    assert record["exit_status"] == code and record["pid"] == task.pid
    assert exit.exit_status == code
    assert isinstance(exit.exited_at, datetime)
    assert abs(record["exited_at"] / 1e9 - exit.exited_at.timestamp()) < 1e-3
    with open(out) as f:
        assert f.read() == "hello\n0\n"
    state = task.shim.state()
    assert state["status"] == "stopped"
    assert state["exit_status"] == code
    deleted = task.shim.delete()
    assert (deleted.pid, deleted.exit_status, deleted.exited_at) == (
        task.pid,
        code,
        exit.exited_at,
    )
    with pytest.raises(errdefs.NotFound):
        task.shim.state()


def test_stdout_fifo_and_stdin_fifo(harness: Harness) -> None:
    stdin, stdout = harness.fifo("stdin"), harness.fifo("stdout")
    reader = os.open(stdout, os.O_RDONLY | os.O_NONBLOCK)
    try:
        task = harness.task("cat", stdin=stdin, stdout=stdout)
        writer = os.open(stdin, os.O_WRONLY)
        os.write(writer, b"through the fifo\n")
        os.close(writer)  # EOF: cat exits
        assert task.shim.wait(timeout=10).exit_status == 0
        assert read_fifo(reader, until=b"\n") == b"through the fifo\n"
    finally:
        os.close(reader)


def test_close_io_gives_stdin_eof(harness: Harness) -> None:
    stdin = harness.fifo("stdin")
    out = os.path.join(harness.base, "out.log")
    task = harness.task("cat", stdin=stdin, stdout=f"file://{out}")
    writer = os.open(stdin, os.O_WRONLY)
    try:
        os.write(writer, b"abc")
        assert wait_until(lambda: os.path.getsize(out) == 3)
        task.shim.close_io()  # the client still holds its end open
        assert task.shim.wait(timeout=10).exit_status == 0
    finally:
        os.close(writer)
    with open(out) as f:
        assert f.read() == "abc"


def test_kill_sigterm_sigkill_and_all(harness: Harness) -> None:
    trapped = harness.task("sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done")
    time.sleep(0.2)  # let the shell install its trap
    trapped.shim.kill(signal.SIGTERM)
    assert trapped.shim.wait(timeout=10).exit_status == 7

    killed = harness.task("sleep", "60")
    killed.shim.kill(signal.SIGKILL)
    assert killed.shim.wait(timeout=10).exit_status == 128 + signal.SIGKILL
    with pytest.raises(errdefs.NotFound, match="process already finished"):
        killed.shim.kill(signal.SIGKILL)

    group = harness.task("sleep", "60")
    group.shim.exec("sleeper", {"args": ["sleep", "60"], "cwd": "/", "env": [oci.DEFAULT_PATH_ENV]})
    exec_pid = group.shim.start("sleeper")
    group.shim.kill(signal.SIGKILL, all=True)
    assert group.shim.wait(timeout=10).exit_status == 137
    assert group.shim.wait("sleeper", timeout=10).exit_status == 137
    assert not pid_alive(exec_pid)


def test_exec_process_and_event_order(harness: Harness, daemon: FakeDaemon) -> None:
    task = harness.task("sleep", "60")
    out = os.path.join(harness.base, "exec.log")
    process = {
        "args": ["sh", "-c", "echo from exec; exit 5"],
        "cwd": "/",
        "env": [oci.DEFAULT_PATH_ENV, "A=1"],
    }
    task.shim.exec("e1", process, stdout=f"file://{out}")
    assert task.shim.state("e1")["status"] == "created"
    pid = task.shim.start("e1")
    assert pid > 0 and pid != task.pid
    exit = task.shim.wait("e1", timeout=10)
    assert exit.exit_status == 5
    assert read_exit_file(task.bundle.path, "e1")["exit_status"] == 5  # type: ignore[index]
    with open(out) as f:
        assert f.read() == "from exec\n"
    assert task.shim.state()["status"] == "running"
    deleted = task.shim.delete("e1")
    assert (deleted.pid, deleted.exit_status) == (pid, 5)
    with pytest.raises(errdefs.NotFound):
        task.shim.state("e1")
    with pytest.raises(errdefs.InvalidArgument):
        task.shim.exec("", process)
    task.shim.exec("e2", process)
    with pytest.raises(errdefs.AlreadyExists):
        task.shim.exec("e2", process)
    assert daemon.wait_for(task.id, "/tasks/exit")
    # e2's exec-added is published after e1's exit: wait for it too (the second one)
    assert daemon.wait_for(task.id, "/tasks/exec-added", count=2)
    exec_events = [
        (e["topic"], e["event"].get("exec_id") or e["event"].get("id"))
        for e in daemon.envelopes
        if e["event"].get("container_id") == task.id and e["topic"] != "/tasks/start"
    ]
    assert exec_events[:5] == [
        ("/tasks/create", None),
        ("/tasks/exec-added", "e1"),
        ("/tasks/exec-started", "e1"),
        ("/tasks/exit", "e1"),
        ("/tasks/exec-added", "e2"),
    ]


def test_pause_resume(harness: Harness, daemon: FakeDaemon) -> None:
    task = harness.task("sleep", "60")
    task.shim.pause()
    assert task.shim.state()["status"] == "paused"
    with pytest.raises(errdefs.FailedPrecondition, match="cannot pause a paused container"):
        task.shim.pause()
    with pytest.raises(errdefs.FailedPrecondition, match="cannot delete a paused process"):
        task.shim.delete()
    task.shim.resume()
    assert task.shim.state()["status"] == "running"
    with pytest.raises(errdefs.FailedPrecondition, match="cannot resume a running process"):
        task.shim.resume()
    assert daemon.wait_for(task.id, "/tasks/resumed")
    topics = daemon.topics(task.id)
    assert topics.index("/tasks/paused") < topics.index("/tasks/resumed")


def test_pids_stats_update(harness: Harness) -> None:
    task = harness.task("sleep", "60", opts=(oci.with_memory_limit(256 << 20),))
    task.shim.exec("extra", {"args": ["sleep", "60"], "cwd": "/", "env": [oci.DEFAULT_PATH_ENV]})
    exec_pid = task.shim.start("extra")
    processes = {p["pid"]: p["info"] for p in task.shim.pids()}
    assert processes[task.pid] is None
    assert processes[exec_pid] == {"exec_id": "extra"}
    stats = task.shim.stats()
    if stats["type_url"] != "io.containerd.cgroups.v1.Metrics":
        pytest.skip(f"this host's task cgroups are not v1 ({stats['type_url']})")
    metrics = stats["value"]
    assert metrics["memory"]["usage"]["usage"] > 0
    assert metrics["memory"]["usage"]["limit"] == 256 << 20
    assert metrics["cpu"]["usage"]["total"] > 0
    assert metrics["pids"]["current"] == 2
    task.shim.update({"memory": {"limit": 128 << 20}})
    assert task.shim.stats()["value"]["memory"]["usage"]["limit"] == 128 << 20


def test_tty_and_resize(harness: Harness) -> None:
    stdout = harness.fifo("tty-out")
    reader = os.open(stdout, os.O_RDONLY | os.O_NONBLOCK)
    try:
        task = harness.task(
            "sh",
            "-c",
            "sleep 0.5; stty size; tty",
            opts=(oci.with_tty(),),
            terminal=True,
            stdout=stdout,
        )
        task.shim.resize_pty(123, 45)
        output = read_fifo(reader, until=b"/dev/pts/", timeout=10)
        assert task.shim.wait(timeout=10).exit_status == 0
        output += read_fifo(reader, until=b"\n", timeout=1)
    finally:
        os.close(reader)
    assert b"45 123\r\n" in output
    assert b"/dev/pts/0" in output
    assert task.shim.state()["terminal"] is True


def test_state_machine_errors(harness: Harness) -> None:
    task = harness.task("sleep", "60", start=False)
    with pytest.raises(errdefs.FailedPrecondition, match="cannot pause task in created state"):
        task.shim.pause()
    with pytest.raises(errdefs.FailedPrecondition, match="in created state"):
        task.shim.checkpoint(os.path.join(harness.base, "ckpt"))
    task.shim.start()
    with pytest.raises(errdefs.FailedPrecondition, match="cannot start a running process"):
        task.shim.start()
    with pytest.raises(errdefs.FailedPrecondition, match="cannot delete a running process"):
        task.shim.delete()
    with pytest.raises(errdefs.NotImplemented_):
        task.shim.call("no_such_method")
    with pytest.raises(errdefs.NotFound):
        task.shim.state("missing-exec")
    with pytest.raises(errdefs.NotFound):
        task.shim.call("state", id="someone-else")
    with pytest.raises(errdefs.AlreadyExists):
        task.shim.create(task.bundle)
    task.shim.kill(signal.SIGKILL)
    task.shim.wait(timeout=10)
    with pytest.raises(errdefs.FailedPrecondition, match="cannot start a stopped process"):
        task.shim.start()
    with pytest.raises(errdefs.FailedPrecondition, match="cannot exec in a stopped state"):
        task.shim.exec("late", {"args": ["true"], "cwd": "/", "env": [oci.DEFAULT_PATH_ENV]})
    with pytest.raises(errdefs.FailedPrecondition, match="cannot update a stopped container"):
        task.shim.update({"memory": {"limit": 1 << 30}})

    unstarted = harness.task("sleep", "60", start=False)
    deleted = unstarted.shim.delete()
    assert deleted.pid == unstarted.pid
    assert deleted.exit_status == 137 and deleted.exited_at is not None
    assert wait_until(lambda: not pid_alive(unstarted.pid))


def test_events_forwarded_in_order(harness: Harness, daemon: FakeDaemon) -> None:
    task = harness.task("true")
    task.shim.wait(timeout=10)
    task.shim.delete()
    assert daemon.wait_for(task.id, "/tasks/delete")
    assert daemon.topics(task.id) == [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ]
    by_topic = {e["topic"]: e for e in daemon.envelopes}
    create = by_topic["/tasks/create"]
    assert create["namespace"] == "shimtest"
    assert isinstance(create["timestamp"], datetime)
    assert create["event"]["bundle"] == task.bundle.path
    assert create["event"]["pid"] == task.pid
    exit = by_topic["/tasks/exit"]["event"]
    assert (exit["id"], exit["pid"], exit["exit_status"]) == (task.id, task.pid, 0)
    assert isinstance(exit["exited_at"], datetime)
    assert by_topic["/tasks/delete"]["event"]["id"] == ""


def test_unstarted_task_delete_has_no_exit_event(harness: Harness, daemon: FakeDaemon) -> None:
    task = harness.task("sleep", "60", start=False)
    deleted = task.shim.delete()
    assert deleted.exit_status == 137
    assert daemon.wait_for(task.id, "/tasks/delete")
    assert daemon.topics(task.id) == ["/tasks/create", "/tasks/delete"]  # containerd's order


def test_events_retried_until_daemon_listens(harness: Harness) -> None:
    harness.daemon_address = os.path.join(harness.base, "late.sock")
    task = harness.task("true")
    task.shim.wait(timeout=10)
    time.sleep(0.3)  # a few failed attempts
    daemon = FakeDaemon(harness.daemon_address)
    harness.daemons.append(daemon)
    assert daemon.wait_for(task.id, "/tasks/exit")
    assert daemon.topics(task.id) == ["/tasks/create", "/tasks/start", "/tasks/exit"]


def test_binary_log_uri(harness: Harness) -> None:
    logger = os.path.join(harness.base, "logger.sh")
    out = os.path.join(harness.base, "logged")
    with open(logger, "w") as f:
        f.write(
            "#!/bin/sh\n"
            'printf "\\000" >&5; exec 5>&-\n'
            'cat <&3 > "$2.$CONTAINER_NAMESPACE.$CONTAINER_ID"\n'
        )
    os.chmod(logger, 0o755)
    uri = f"binary://{logger}?file={out}"
    task = harness.task("echo", "logged line", stdout=uri, stderr=uri)
    assert task.shim.wait(timeout=10).exit_status == 0
    target = f"{out}.shimtest.{task.id}"
    assert wait_until(lambda: os.path.exists(target) and os.path.getsize(target) > 0)
    with open(target) as f:
        assert f.read() == "logged line\n"


def test_concurrent_wait_does_not_block_other_calls(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(task.shim.wait().exit_status))
    waiter.start()
    time.sleep(0.1)
    assert task.shim.state()["status"] == "running"  # answered while wait blocks
    task.shim.kill(signal.SIGKILL)
    waiter.join(10)
    assert results == [137]


def test_options_file_names_the_runtime(harness: Harness) -> None:
    task = harness.task("true")
    task.shim.wait(timeout=10)
    with open(os.path.join(task.bundle.path, shim.OPTIONS_FILE), "rb") as f:
        assert msgpack.unpackb(f.read()) == {
            "binary_name": "runc",
            "root": "/run/pycontainerd/runc/shimtest",
        }
    with open(os.path.join(task.bundle.path, runtime.SHIM_BINARY_FILE)) as f:
        assert json.load(f) == runtime.shim_command()
