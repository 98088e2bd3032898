"""A signal to a task that was created and never started (found by the chaos suite).

``runc kill`` of a created container ends its ``runc init``; the shim, its
subreaper, reaps it. As containerd (the shim tracks a created init's pid from
``Create`` on, its exit is handled as any other): ``tasks.wait`` returns its
status, ``tasks.get`` says stopped with that status and time, ``tasks.delete``
works, and the exit is journalled exactly once, followed by one
``/tasks/delete``. An exec that was added but never started has no process: a
signal to it is ``FailedPrecondition`` ("process not created"), and deleting it
journals no exit.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio
from tests.integration.daemon import DaemonProcess
from tests.integration.shim.conftest import pid_alive, wait_until

from .conftest import IMAGE, leftovers
from .test_dead_shim import _gone, _journal

NS = "default"
WAIT_TIMEOUT = 20.0
"""Seconds a call may take here (the exit is reaped at once; a hang is the bug)."""


def _wait(d: DaemonProcess, id: str, exec_id: str = "") -> dict[str, Any]:
    """``tasks.wait`` on a connection whose calls end after :data:`WAIT_TIMEOUT`."""
    with Client(d.address, namespace=NS, timeout=WAIT_TIMEOUT) as c:
        resp: dict[str, Any] = c.call("tasks.wait", {"container_id": id, "exec_id": exec_id})
        return resp


def _get(c: Client, id: str, exec_id: str = "") -> dict[str, Any]:
    got: dict[str, Any] = c.call("tasks.get", {"container_id": id, "exec_id": exec_id})["process"]
    return got


def _ends_as_containerd(
    c: Client, d: DaemonProcess, id: str, pid: int, statuses: tuple[int, ...]
) -> None:
    """The created task ``id`` (init ``pid``) was signalled: it exited with one of
    ``statuses``, is listed stopped with that status, deletes, and its exit and
    delete are journalled once each."""
    assert wait_until(lambda: not pid_alive(pid), 15), "runc init outlived the signal"
    waited = _wait(d, id)
    status = int(waited["exit_status"])
    assert status in statuses
    assert waited["exited_at"] is not None
    got = _get(c, id)
    assert (got["status"], got["exit_status"], got["pid"]) == ("stopped", status, pid)
    assert got["exited_at"] == waited["exited_at"]
    with pytest.raises(errdefs.NotFound, match="already finished"):
        c.call("tasks.kill", {"container_id": id, "signal": int(signal.SIGKILL)})
    deleted = c.call("tasks.delete", {"container_id": id})
    assert (deleted["exit_status"], deleted["pid"]) == (status, pid)
    with pytest.raises(errdefs.NotFound):
        _get(c, id)
    assert _journal(c, id) == [("/tasks/exit", id, status), ("/tasks/delete", "", status)]
    assert _gone(d, id) == []
    c.load_container(id).delete()


@pytest.mark.parametrize("all", [True, False], ids=["all", "init"])
def test_sigkill_of_a_created_task_ends_its_wait(
    client: Client, cdaemon: DaemonProcess, all: bool
) -> None:
    id = f"created-kill-{'all' if all else 'init'}"
    task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
    assert task.status().status == "created"
    task.kill(signal.SIGKILL, all=all)
    _ends_as_containerd(client, cdaemon, id, task.pid, (128 + signal.SIGKILL,))
    assert leftovers(cdaemon) == []


def test_sigterm_of_a_created_task_ends_its_wait(client: Client, cdaemon: DaemonProcess) -> None:
    """``runc init`` ends on SIGTERM too, with the status the shim reaps (containerd
    reports the same): runc init is the init of the container's pid namespace, where
    the kernel drops the SIGTERM the Go runtime re-raises to die of it, so the runtime
    exits 2 instead (143 if a runc dies of the signal itself)."""
    id = "created-term"
    task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
    task.kill(signal.SIGTERM)
    _ends_as_containerd(client, cdaemon, id, task.pid, (2, 128 + signal.SIGTERM))


def test_a_wait_made_before_the_kill_returns(client: Client, cdaemon: DaemonProcess) -> None:
    id = "created-waited"
    task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
    with Client(cdaemon.address, namespace=NS, timeout=WAIT_TIMEOUT) as other:
        pending = other.conn.request("tasks.wait", {"container_id": id, "exec_id": ""})
        time.sleep(0.3)  # the wait has reached the daemon
        task.kill(signal.SIGKILL)
        assert pending.wait()["exit_status"] == 137
    _ends_as_containerd(client, cdaemon, id, task.pid, (137,))


def test_a_created_exec_cannot_be_signalled_and_deletes_without_an_exit(
    client: Client, cdaemon: DaemonProcess
) -> None:
    id = "created-exec"
    task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
    process = {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/bin"]}
    task.start()
    proc = task.exec("idle", process, cio.null())
    with pytest.raises(errdefs.FailedPrecondition, match="not created"):
        proc.kill(signal.SIGKILL)
    with pytest.raises(errdefs.FailedPrecondition, match="not created"):
        proc.kill(signal.SIGTERM, all=True)
    assert proc.status().status == "created"
    proc.delete()
    with pytest.raises(errdefs.NotFound):
        proc.status()
    task.kill(signal.SIGKILL)
    assert _wait(cdaemon, id)["exit_status"] == 137
    # only the init's exit: an exec that never ran did not exit
    exits = [j for j in _journal(client, id) if j[0] == "/tasks/exit"]
    assert exits == [("/tasks/exit", id, 137)]


def test_a_created_exec_of_a_created_task(client: Client, cdaemon: DaemonProcess) -> None:
    """Both never started: the init's kill ends the task; the exec deletes without an exit."""
    id = "created-both"
    task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
    process = {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/bin"]}
    proc = task.exec("idle", process, cio.null())
    with pytest.raises(errdefs.FailedPrecondition, match="not created"):
        proc.kill(signal.SIGKILL)
    task.kill(signal.SIGKILL, all=True)
    assert _wait(cdaemon, id)["exit_status"] == 137
    proc.delete()
    _ends_as_containerd(client, cdaemon, id, task.pid, (137,))


def test_sigkill_of_a_created_task_after_a_daemon_restart(cdaemon: DaemonProcess) -> None:
    """The daemon killed while the task is created: recovered, then killed, it ends as well."""
    id = "created-recovered"
    with Client(cdaemon.address, namespace=NS) as c:
        task = c.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
        pid = task.pid
    cdaemon.kill()
    cdaemon.start()
    with Client(cdaemon.address, namespace=NS) as c:
        assert _get(c, id)["status"] == "created"
        c.call("tasks.kill", {"container_id": id, "signal": int(signal.SIGKILL), "all": True})
        _ends_as_containerd(c, cdaemon, id, pid, (137,))
    cdaemon.reap()
    assert leftovers(cdaemon) == []


def test_a_created_task_deleted_as_it_is_journals_its_exit_once(
    client: Client, cdaemon: DaemonProcess
) -> None:
    """``runc delete --force`` ends the runc init the watcher awaits: the delete and
    the watcher both learn the exit, it is journalled once, before the delete."""
    for n in range(5):
        id = f"created-deleted-{n}"
        task = client.new_container(id, image=IMAGE, args=["sleep", "600"]).new_task(cio.null())
        deleted = client.call("tasks.delete", {"container_id": id})
        assert (deleted["exit_status"], deleted["pid"]) == (137, task.pid)
        assert not pid_alive(task.pid)
        assert _journal(client, id) == [("/tasks/exit", id, 137), ("/tasks/delete", "", 137)]
        assert _gone(cdaemon, id) == []
        client.load_container(id).delete()
    assert leftovers(cdaemon) == []
