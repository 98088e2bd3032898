"""Tasks and processes as the Go client has them (``container.new_task`` → :class:`Task`).

    task = container.new_task(cio.stdio())
    task.start()
    status = task.wait()                      # ExitStatus(code, exited_at)
    probe = task.exec("probe", {"args": ["id"], "cwd": "/"}, cio.null())
    probe.start(); probe.wait(); probe.delete()
    task.kill(signal.SIGKILL)
    task.delete()                             # closes the stdio (FIFOs removed)

Every call is one ``tasks.*`` request in the client's namespace.
"""

from __future__ import annotations

import builtins
import signal as signals
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from pycontainerd.api import convert, errdefs
from pycontainerd.api import tasks as api

from . import cio

if TYPE_CHECKING:
    from ._session import Session

PROCESS_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
IO_WAIT_TIMEOUT = 5.0


@attrs.frozen
class ExitStatus:
    """A process's exit (the Go client's ``ExitStatus``)."""

    code: int
    exited_at: datetime | None


def _exit(resp: Any) -> ExitStatus:
    return ExitStatus(int(resp.get("exit_status") or 0), resp.get("exited_at"))


class Process:
    """A process of a task: its init process (:class:`Task`) or one exec'd into it.

    Args:
        client: the client.
        container_id: the task's container.
        exec_id: ``""`` for the init process.
        io: its stdio (closed by :meth:`delete`), or ``None`` when attached later.
        pid: its pid when known.
    """

    def __init__(
        self,
        client: Session,
        container_id: str,
        exec_id: str,
        io: cio.IO | None,
        pid: int = 0,
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.exec_id = exec_id
        self.io = io
        self.pid = pid

    @property
    def id(self) -> str:
        return self.exec_id or self.container_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} pid={self.pid}>"

    def _call(self, method: str, **fields: Any) -> Any:
        req = {"container_id": self.container_id, **fields}
        return self.client.conn.call(method, req, namespace=self.client.namespace)

    def start(self) -> int:
        """Run it (``tasks.start``); returns its pid.

        Raises:
            errdefs.FailedPrecondition: it is not in the created state.
            errdefs.NotFound: no such task or process.
        """
        self.pid = int(self._call("tasks.start", exec_id=self.exec_id)["pid"])
        return self.pid

    def wait(self) -> ExitStatus:
        """Block until it exits; its exit code and time (``tasks.wait``).

        Raises:
            errdefs.NotFound: no such task or process.
        """
        return _exit(self._call("tasks.wait", exec_id=self.exec_id))

    def kill(self, sig: int = signals.SIGTERM, *, all: bool = False) -> None:
        """Send ``sig`` (to every process of the task with ``all``).

        Raises:
            errdefs.NotFound: "process already finished", or no such task.
        """
        self._call("tasks.kill", exec_id=self.exec_id, signal=int(sig), all=all)

    def status(self) -> api.Process:
        """Its state (``tasks.get``): ``status`` is ``created``, ``running``, ``stopped``...

        Raises:
            errdefs.NotFound: no such task or process.
        """
        resp = self._call("tasks.get", exec_id=self.exec_id)
        return convert.structure(resp, api.GetTaskResponse).process

    def resize(self, width: int, height: int) -> None:
        """Resize its pty (``tasks.resize_pty``)."""
        self._call("tasks.resize_pty", exec_id=self.exec_id, width=width, height=height)

    def close_io(self) -> None:
        """Close its stdin (``tasks.close_io``): the process reads EOF."""
        self._call("tasks.close_io", exec_id=self.exec_id, stdin=True)

    def _close_io(self) -> None:
        if self.io is not None:
            self.io.wait(IO_WAIT_TIMEOUT)
            self.io.close()

    def delete(self) -> ExitStatus:
        """Delete the exited process and close its stdio (``tasks.delete_process``).

        Raises:
            errdefs.FailedPrecondition: it is still running.
        """
        resp = self._call("tasks.delete_process", exec_id=self.exec_id)
        self._close_io()
        return _exit(resp)


class Task(Process):
    """A container's task: its init process, plus exec, pause, pids, metrics."""

    def __init__(self, client: Session, container_id: str, io: cio.IO | None, pid: int) -> None:
        super().__init__(client, container_id, "", io, pid)

    def pause(self) -> None:
        """Freeze every process of the task (``tasks.pause``).

        Raises:
            errdefs.FailedPrecondition: it is not running.
        """
        self._call("tasks.pause")

    def resume(self) -> None:
        """Thaw a paused task (``tasks.resume``)."""
        self._call("tasks.resume")

    def pids(self) -> builtins.list[api.ProcessInfo]:
        """The processes in the task's cgroup (``tasks.list_pids``)."""
        resp = self._call("tasks.list_pids")
        return convert.structure(resp, api.ListPidsResponse).processes

    def metrics(self) -> api.Metric:
        """Its cgroup statistics (``tasks.metrics``).

        Raises:
            errdefs.NotFound: the task has none (it is not running).
        """
        resp = self.client.conn.call(
            "tasks.metrics",
            {"filters": [f"id=={self.container_id}"]},
            namespace=self.client.namespace,
        )
        found = convert.structure(resp, api.MetricsResponse).metrics
        if not found:
            raise errdefs.NotFound(f"task {self.container_id}: no metrics")
        return found[0]

    def update(self, resources: Mapping[str, Any]) -> None:
        """Change its OCI ``linux.resources`` (``tasks.update``)."""
        any_value = {"type_url": "", "value": dict(resources)}
        self._call("tasks.update", resources=any_value)

    def exec(self, exec_id: str, process: Mapping[str, Any], io: cio.Creator) -> Process:
        """Add a process (an OCI ``process`` map) to the task; start it with ``.start()``.

        Raises:
            errdefs.InvalidArgument: an empty or invalid ``exec_id``.
            errdefs.AlreadyExists: ``exec_id`` is taken.
            errdefs.FailedPrecondition: the task has stopped.
        """
        pio = io(exec_id)
        try:
            self._call(
                "tasks.exec",
                exec_id=exec_id,
                spec={"type_url": PROCESS_TYPE_URL, "value": dict(process)},
                **pio.config.fields(),
            )
        except BaseException:
            pio.close()
            raise
        return Process(self.client, self.container_id, exec_id, pio)

    def load_process(self, exec_id: str) -> Process:
        """A process exec'd earlier (by another client): its pid, no stdio."""
        proc = Process(self.client, self.container_id, exec_id, None)
        proc.pid = proc.status().pid
        return proc

    def delete(self, *, kill: bool = False) -> ExitStatus:
        """Delete the stopped task and close its stdio (``tasks.delete``).

        With ``kill``, a running task is killed (SIGKILL) and waited for first.

        Raises:
            errdefs.FailedPrecondition: the task is running (or paused).
            errdefs.NotFound: no such task.
        """
        if kill:
            try:
                self.kill(signals.SIGKILL, all=True)
                self.wait()
            except errdefs.NotFound:
                pass
        resp = self._call("tasks.delete")
        self._close_io()
        return _exit(resp)
