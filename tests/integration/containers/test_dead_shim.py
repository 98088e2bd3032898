"""A task's shim killed with SIGKILL, a task that ended while the daemon was down,
and signals the kernel does not have (issue 11, findings 6 and 8).

As containerd's ``cleanupAfterDeadShim``: when a shim dies, the daemon force-deletes
its container through the runtime (the shim's ``delete``: ``runc delete --force``),
unmounts the rootfs, removes the cgroups and the bundle, publishes one
``/tasks/exit`` (137) and one ``/tasks/delete``, and the task is gone while its
container stays. A restart publishes nothing more for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import runtime
from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio
from tests.integration.daemon import DaemonProcess
from tests.integration.shim.conftest import pid_alive, wait_until

from .conftest import IMAGE, leftovers

NS = "default"
MARKER = "/dead-shim-test/marker"


def _bundle(d: DaemonProcess, id: str) -> Path:
    return d.state / runtime.TASK_PLUGIN / NS / id


def _shim_pid(d: DaemonProcess, id: str) -> int:
    address = (_bundle(d, id) / "address").read_text().strip()
    with runtime.ShimClient(address, id, timeout=10) as shim:
        return int(shim.connect()["shim_pid"])


def _journal(c: Client, id: str) -> list[tuple[str, str, int]]:
    """``(topic, id, exit_status)`` of every journalled /tasks/exit and /tasks/delete of
    container ``id``, up to a marker published now."""
    nonce = uuid.uuid4().hex
    c.publish(MARKER, {"nonce": nonce})
    seen = []
    flt = f'topic~="^/tasks/(exit|delete)$",event.container_id=="{id}"'
    for e in c.subscribe([flt, f'topic=="{MARKER}",event.nonce=="{nonce}"'], since=0):
        if e.topic == MARKER:
            break
        seen.append((e.topic, str(e.event.get("id", "")), int(e.event["exit_status"])))
    return seen


def _gone(d: DaemonProcess, id: str) -> list[str]:
    """What of task ``id`` is still there: bundle, runc state, work dir, cgroups."""
    left = []
    for path in (
        _bundle(d, id),
        d.state / "runc" / NS / id,
        d.root / runtime.TASK_PLUGIN / NS / id,
    ):
        if os.path.lexists(path):
            left.append(str(path))
    for controller in ("memory", "pids", "cpu", "freezer", "devices"):
        group = Path("/sys/fs/cgroup") / controller / NS / id
        if group.exists():
            left.append(str(group))
    left += [m for m in leftovers(d, timeout=0) if id in m]
    return left


@pytest.fixture
def restarting(cdaemon: DaemonProcess, image_name: str) -> Iterator[DaemonProcess]:
    """The module's daemon for a test that restarts it: what the test leaves is
    removed afterwards through a connection to whichever daemon then runs."""
    yield cdaemon
    if cdaemon.proc is None or cdaemon.proc.poll() is not None:
        cdaemon.start()
    with Client(cdaemon.address, namespace=NS) as c:
        for ctr in c.containers():
            with contextlib.suppress(errdefs.NotFound):
                ctr.task().delete(kill=True)
            ctr.delete()
    cdaemon.reap()


class _Waiter(threading.Thread):
    """``tasks.wait`` on a connection of its own."""

    def __init__(self, d: DaemonProcess, id: str, exec_id: str = "") -> None:
        super().__init__(daemon=True)
        self.d, self.id, self.exec_id = d, id, exec_id
        self.result: Any = None
        self.ready = threading.Event()

    def run(self) -> None:
        with Client(self.d.address, namespace=NS) as c:
            self.ready.set()
            try:
                self.result = c.call(
                    "tasks.wait", {"container_id": self.id, "exec_id": self.exec_id}
                )
            except errdefs.ErrdefsError as exc:
                self.result = exc


def test_a_killed_shim_is_cleaned_up_as_containerd(restarting: DaemonProcess) -> None:
    d, id = restarting, "deadshim"
    with Client(d.address, namespace=NS) as c:
        ctr = c.new_container(id, image=IMAGE, args=["sleep", "600"])
        task = ctr.new_task(cio.null())
        pid = task.start()
        waiter = _Waiter(d, id)
        waiter.start()
        assert waiter.ready.wait(10)
        time.sleep(0.3)  # the wait has reached the daemon
        os.kill(_shim_pid(d, id), signal.SIGKILL)

        # within a few seconds: the container's process is gone, the task with it
        assert wait_until(lambda: not pid_alive(pid), 15), "the container outlived its shim"
        assert wait_until(lambda: _gone(d, id) == [], 15), _gone(d, id)
        waiter.join(15)
        assert isinstance(waiter.result, dict), waiter.result
        assert waiter.result["exit_status"] == 137
        with pytest.raises(errdefs.NotFound):
            task.status()
        with pytest.raises(errdefs.NotFound):
            task.delete()
        assert c.call("tasks.list", {})["tasks"] == []
        assert _journal(c, id) == [("/tasks/exit", id, 137), ("/tasks/delete", "", 137)]

        # the container remains, and runs a new task
        again = c.load_container(id).new_task(cio.null())
        again.start()
        again.kill(signal.SIGKILL)
        assert again.wait().code == 137
        again.delete()
        exits = [j for j in _journal(c, id) if j[0] == "/tasks/exit"]
        assert exits == [("/tasks/exit", id, 137)] * 2

    # a restart publishes nothing more for it
    d.stop()
    d.start()
    with Client(d.address, namespace=NS) as c:
        journal = _journal(c, id)
        assert [j for j in journal if j[0] == "/tasks/exit"] == exits, journal
        c.load_container(id).delete()
    assert leftovers(d) == []


def test_a_killed_shim_ends_the_exec_processes_too(client: Client, cdaemon: DaemonProcess) -> None:
    id = "deadshim-exec"
    ctr = client.new_container(id, image=IMAGE, args=["sleep", "600"])
    task = ctr.new_task(cio.null())
    pid = task.start()
    proc = task.exec(
        "probe", {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/bin"]}, cio.null()
    )
    exec_pid = proc.start()
    waiter = _Waiter(cdaemon, id, "probe")
    waiter.start()
    assert waiter.ready.wait(10)
    time.sleep(0.3)
    os.kill(_shim_pid(cdaemon, id), signal.SIGKILL)

    assert wait_until(lambda: not pid_alive(pid) and not pid_alive(exec_pid), 15)
    assert wait_until(lambda: _gone(cdaemon, id) == [], 15), _gone(cdaemon, id)
    waiter.join(15)
    assert isinstance(waiter.result, dict) and waiter.result["exit_status"] == 137, waiter.result
    with pytest.raises(errdefs.NotFound):
        proc.status()
    with pytest.raises(errdefs.NotFound):
        task.status()
    assert sorted(_journal(client, id)) == [
        ("/tasks/delete", "", 137),
        ("/tasks/exit", id, 137),
        ("/tasks/exit", "probe", 137),
    ]
    ctr.delete()
    assert leftovers(cdaemon) == []


def test_a_killed_shim_of_a_created_task(client: Client, cdaemon: DaemonProcess) -> None:
    """Never started: nothing waits on the shim, its process exit is noticed all the same."""
    id = "deadshim-created"
    ctr = client.new_container(id, image=IMAGE, args=["true"])
    task = ctr.new_task(cio.null())
    os.kill(_shim_pid(cdaemon, id), signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(task.pid), 15)
    assert wait_until(lambda: _gone(cdaemon, id) == [], 15), _gone(cdaemon, id)
    with pytest.raises(errdefs.NotFound):
        task.status()
    assert _journal(client, id) == [("/tasks/exit", id, 137), ("/tasks/delete", "", 137)]
    ctr.delete()
    assert leftovers(cdaemon) == []


def test_a_killed_shim_whose_runc_state_is_gone(client: Client, cdaemon: DaemonProcess) -> None:
    """runc has nothing to delete (its state is gone, as after a create cut short):
    what is left in the container's own cgroups is killed and the cgroups removed."""
    id = "deadshim-norunc"
    ctr = client.new_container(id, image=IMAGE, args=["sleep", "600"])
    task = ctr.new_task(cio.null())
    pid = task.start()
    shutil.rmtree(cdaemon.state / "runc" / NS / id)
    os.kill(_shim_pid(cdaemon, id), signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid), 15), "the container outlived its shim"
    assert wait_until(lambda: _gone(cdaemon, id) == [], 15), _gone(cdaemon, id)
    assert _journal(client, id) == [("/tasks/exit", id, 137), ("/tasks/delete", "", 137)]
    ctr.delete()
    assert leftovers(cdaemon) == []


@pytest.mark.parametrize("sig", [0x7FFFFFFF, -1, 65, 2**40])
def test_an_invalid_signal_is_an_invalid_argument(client: Client, sig: int) -> None:
    id = "badsignal"
    ctr = client.new_container(id, image=IMAGE, args=["sleep", "600"])
    task = ctr.new_task(cio.null())
    task.start()
    with pytest.raises(errdefs.InvalidArgument, match="signal"):
        client.call("tasks.kill", {"container_id": id, "signal": sig})
    assert task.status().status == "running"
    task.kill(signal.SIGKILL)
    assert task.wait().code == 137
    task.delete()
    ctr.delete()


def test_a_task_that_ended_while_the_daemon_was_down_stays_until_deleted(
    restarting: DaemonProcess,
) -> None:
    d, id = restarting, "ended-down"
    with Client(d.address, namespace=NS) as c:
        args = ["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 5"]
        task = c.new_container(id, image=IMAGE, args=args).new_task(cio.null())
        pid = task.start()
    d.kill()
    assert pid_alive(pid)
    (_bundle(d, id) / "rootfs" / "go").write_text("")  # it exits while the daemon is down
    assert wait_until(lambda: not pid_alive(pid), 15)
    d.start()
    with Client(d.address, namespace=NS) as c:
        got = c.call("tasks.get", {"container_id": id})["process"]
        assert (got["status"], got["exit_status"], got["pid"]) == ("stopped", 5, pid)
        listed = c.call("tasks.list", {})["tasks"]
        assert [(t["container_id"], t["status"], t["exit_status"]) for t in listed] == [
            (id, "stopped", 5)
        ]
        assert c.call("tasks.wait", {"container_id": id})["exit_status"] == 5
        assert _journal(c, id) == [("/tasks/exit", id, 5)]
    # a second restart publishes nothing new either
    d.stop()
    d.start()
    with Client(d.address, namespace=NS) as c:
        assert c.call("tasks.get", {"container_id": id})["process"]["status"] == "stopped"
        assert _journal(c, id) == [("/tasks/exit", id, 5)]
        deleted = c.call("tasks.delete", {"container_id": id})
        assert (deleted["exit_status"], deleted["pid"]) == (5, pid)
        with pytest.raises(errdefs.NotFound):
            c.call("tasks.get", {"container_id": id})
        assert _journal(c, id) == [("/tasks/exit", id, 5), ("/tasks/delete", "", 5)]
        assert _gone(d, id) == []
        c.load_container(id).delete()
    assert leftovers(d) == []
