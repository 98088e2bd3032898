"""Processes of a task and their state machine (``pkg/process/init_state.go``).

::

    created --start--> running --pause--> paused --resume--> running
       |                  |                  |
       +------exit--------+------exit--------+--> stopped --delete--> deleted
       +------delete-------------------------------------------------^

The init process is the container; exec processes are extra processes
started in it (``exec.go``, ``exec_state.go``: created, running, stopped).
Refused transitions raise ``FailedPrecondition`` with containerd's messages.
"""

from __future__ import annotations

import os
import time

import msgpack

from pycontainerd.api import errdefs

from ._io import ProcessIO

CREATED, RUNNING, PAUSED, PAUSING, STOPPED, DELETED = (
    "created",
    "running",
    "paused",
    "pausing",
    "stopped",
    "deleted",
)

TYPE_CHECKING = False  # typing costs the shim 1 MiB of RSS: imported for mypy only
if TYPE_CHECKING:
    from typing import Any

# (state, operation) -> message, for init processes; a pair not listed is allowed.
_INIT_REFUSED = {
    (CREATED, "pause"): "cannot pause task in created state",
    (CREATED, "resume"): "cannot resume task in created state",
    (CREATED, "checkpoint"): "cannot checkpoint a task in created state",
    (RUNNING, "start"): "cannot start a running process",
    (RUNNING, "resume"): "cannot resume a running process",
    (RUNNING, "delete"): "cannot delete a running process",
    (PAUSED, "start"): "cannot start a paused process",
    (PAUSED, "pause"): "cannot pause a paused container",
    (PAUSED, "delete"): "cannot delete a paused process",
    (PAUSED, "exec"): "cannot exec in a paused state",
    (PAUSED, "checkpoint"): "cannot checkpoint a paused container",
    (STOPPED, "start"): "cannot start a stopped process",
    (STOPPED, "pause"): "cannot pause a stopped container",
    (STOPPED, "resume"): "cannot resume a stopped container",
    (STOPPED, "update"): "cannot update a stopped container",
    (STOPPED, "checkpoint"): "cannot checkpoint a stopped container",
    (STOPPED, "exec"): "cannot exec in a stopped state",
}

_EXEC_REFUSED = {
    (RUNNING, "start"): "cannot start a running process",
    (RUNNING, "delete"): "cannot delete a running process",
    (STOPPED, "start"): "cannot start a stopped process",
}


class Process:
    """One process of the task: the init (``exec_id == ""``) or an exec.

    Attributes:
        id: the container id for init, else the exec id (containerd ``p.ID()``).
        status: one of ``created``, ``running``, ``paused``, ``stopped``, ``deleted``.
        exit_status, exited_at: set once the process was reaped (ns since epoch).
    """

    def __init__(
        self, container_id: str, exec_id: str, io: ProcessIO, spec: dict[str, Any] | None = None
    ) -> None:
        self.container_id = container_id
        self.exec_id = exec_id
        self.id = exec_id or container_id
        self.io = io
        self.spec = spec
        self.pid = 0
        self.status = CREATED
        self.exit_status = 0
        self.exited_at = 0
        self.publish_exit = True
        """False for an init deleted before it started: containerd sends no
        ``/tasks/exit`` then (create -> delete), only ``/tasks/delete``."""

    @property
    def is_init(self) -> bool:
        return not self.exec_id

    @property
    def exited(self) -> bool:
        return self.status in (STOPPED, DELETED)

    def check(self, operation: str) -> None:
        """Refuse ``operation`` in the current state.

        Raises:
            errdefs.FailedPrecondition: containerd's message for the transition.
            errdefs.NotFound: the process was deleted.
        """
        if self.status == DELETED:
            raise errdefs.NotFound(f"process {self.id} not found")
        table = _INIT_REFUSED if self.is_init else _EXEC_REFUSED
        message = table.get((self.status, operation))
        if message:
            raise errdefs.FailedPrecondition(message)

    def set_exited(self, status: int, exited_at: int | None = None) -> None:
        self.status = STOPPED
        self.exit_status = status
        self.exited_at = exited_at if exited_at is not None else time.time_ns()

    def exit_record(self) -> dict[str, Any]:
        return {
            "container_id": self.container_id,
            "id": self.id,
            "exec_id": self.exec_id,
            "pid": self.pid,
            "exit_status": self.exit_status,
            "exited_at": self.exited_at,
        }


def exit_file_name(exec_id: str) -> str:
    """``exits/init`` for the init process, ``exits/exec.<id>`` for an exec."""
    return os.path.join("exits", f"exec.{exec_id}" if exec_id else "init")


def write_exit_file(bundle: str, process: Process) -> None:
    """Durably record the exit of ``process`` in the bundle (write, fsync, rename).

    This is done before the exit is reported anywhere: a daemon restarted
    after the exit reads it there.
    """
    write_exit_record(bundle, process.exit_record())


def write_exit_record(bundle: str, record: dict[str, Any]) -> None:
    """Durably write ``record`` (``exit_record``'s keys; ``exec_id`` names the
    process) as a process's exit file in the bundle."""
    directory = os.path.join(bundle, "exits")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(bundle, exit_file_name(str(record.get("exec_id") or "")))
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, msgpack.packb(record))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_exit_file(bundle: str, exec_id: str = "") -> dict[str, Any] | None:
    """The recorded exit of a process of the bundle, or None if it has not exited."""
    try:
        with open(os.path.join(bundle, exit_file_name(exec_id)), "rb") as f:
            doc = msgpack.unpackb(f.read())
    except (OSError, ValueError, msgpack.UnpackException):
        return None
    return doc if isinstance(doc, dict) else None


def read_pid_file(path: str) -> int:
    """The pid a runtime wrote to ``--pid-file``.

    Raises:
        errdefs.Internal: no readable pid there.
    """
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError) as exc:
        raise errdefs.Internal(f"cannot read pid file {path}: {exc}") from None
