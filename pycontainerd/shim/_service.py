"""The runtime v2 task API of one container (``runtime/v2/runc/task/service.go``).

Handlers take containerd's request maps (``id``, ``exec_id``, ``bundle``...)
and return its response maps. One condition variable guards the task: a
handler holds it while it drives the runtime, and releases it only to wait
(``wait``, the exit of an unstarted init on ``delete``). Exits arrive from the
reaper on a queue and are applied by one thread, in reaping order::

    reaper (main thread) --(pid, status)--> exit thread: match pid -> process
        -> exit file in the bundle (fsync) -> process stopped, waiters woken
        -> /tasks/exit published
"""

from __future__ import annotations

import os
import signal as signals
import threading
import time
from _queue import SimpleQueue  # queue.py would cost 0.5 MiB more

import msgpack

from pycontainerd.api import errdefs

from . import _cgroups
from ._io import ConsoleSocket, ProcessIO
from ._process import (
    CREATED,
    DELETED,
    PAUSED,
    RUNNING,
    Process,
    read_pid_file,
    write_exit_file,
)
from ._reaper import Reaper
from ._rpc import Publisher, log, timestamp
from ._runc import Runc, RuntimeError_

TYPE_CHECKING = False  # typing costs the shim 1 MiB of RSS: imported for mypy only
if TYPE_CHECKING:
    from typing import Any

    from ._rpc import Handler

VERSION = "pycontainerd-shim/1"
OPTIONS_FILE = "options"
"""The runc options of the task, msgpack, for the ``delete`` cleanup."""
_UNSTARTED_EXIT_WAIT = 2.0
_CONSOLE_DRAIN = 2.0


def _str(req: dict[str, Any], key: str) -> str:
    value = req.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errdefs.InvalidArgument(f"{key}: expected a string")
    return value


def _int(req: dict[str, Any], key: str) -> int:
    value = req.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise errdefs.InvalidArgument(f"{key}: expected an integer")
    return value


def _bool(req: dict[str, Any], key: str) -> bool:
    value = req.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise errdefs.InvalidArgument(f"{key}: expected a bool")
    return value


def _document(value: object, what: str) -> dict[str, Any]:
    """A JSON document given as a map, as ``{"type_url", "value"}``, or as JSON bytes."""
    if isinstance(value, dict) and "value" in value and "type_url" in value:
        value = value["value"]
    if isinstance(value, bytes | str):
        try:
            import json  # lazily: json and re cost the shim 1 MiB of RSS

            value = json.loads(value)
        except ValueError:
            raise errdefs.InvalidArgument(f"{what}: not a JSON document") from None
    if not isinstance(value, dict):
        raise errdefs.InvalidArgument(f"{what}: expected a map")
    return value


def _time(ns: int) -> msgpack.Timestamp | None:
    return timestamp(ns) if ns else None


def _kill_error(exc: RuntimeError_) -> errdefs.ErrdefsError:
    """containerd's ``checkKillError``."""
    text = exc.message.lower()
    if "process already finished" in text or "not running" in text or "no such process" in text:
        return errdefs.NotFound("process already finished")
    if "does not exist" in text:
        return errdefs.NotFound("no such container")
    return errdefs.Unknown(f"unknown error after kill: {exc.message}")


class TaskService:
    """The task API of container ``container_id`` in ``bundle``."""

    def __init__(
        self,
        namespace: str,
        container_id: str,
        bundle: str,
        publisher: Publisher,
        socket_dir: str,
    ) -> None:
        self.namespace = namespace
        self.container_id = container_id
        self.bundle = bundle
        self.publisher = publisher
        self.socket_dir = socket_dir
        self.reaper = Reaper(self._on_exit)
        self.runc = Runc(self.reaper, bundle)
        self.init: Process | None = None
        self.execs: dict[str, Process] = {}
        self.shutdown_requested = threading.Event()
        self._cond = threading.Condition()
        self._exits: SimpleQueue[tuple[int, int, int]] = SimpleQueue()
        self._unclaimed: dict[int, tuple[int, int]] = {}
        self._console_seq = 0
        threading.Thread(target=self._apply_exits, daemon=True).start()

    def handlers(self) -> dict[str, Handler]:
        names = [
            "create",
            "start",
            "delete",
            "exec",
            "state",
            "pids",
            "pause",
            "resume",
            "kill",
            "resize_pty",
            "close_io",
            "checkpoint",
            "update",
            "wait",
            "stats",
            "connect",
            "shutdown",
        ]
        return {name: getattr(self, name) for name in names}

    # -- exits -----------------------------------------------------------------

    def _on_exit(self, pid: int, status: int) -> None:
        self._exits.put((pid, status, time.time_ns()))

    def _apply_exits(self) -> None:
        while True:
            pid, status, at = self._exits.get()
            try:
                self._apply_exit(pid, status, at)
            except Exception as exc:
                log(f"exit of pid {pid}: {exc!r}")

    def _apply_exit(self, pid: int, status: int, at: int) -> None:
        with self._cond:
            process = self._by_pid(pid)
            if process is None:
                self._unclaimed[pid] = (status, at)
                if len(self._unclaimed) > 1024:
                    self._unclaimed.pop(next(iter(self._unclaimed)))
                return
        process.io.wait_drained(_CONSOLE_DRAIN)
        with self._cond:
            self._exited(process, status, at)

    def _by_pid(self, pid: int) -> Process | None:
        for p in [self.init, *self.execs.values()]:
            if p is not None and p.pid == pid and not p.exited:
                return p
        return None

    def _claim(self, process: Process) -> None:
        """Apply an exit reaped before ``process.pid`` was known."""
        found = self._unclaimed.pop(process.pid, None)
        if found is not None:
            self._exited(process, *found)

    def _exited(self, process: Process, status: int, at: int) -> None:
        process.set_exited(status, at)
        write_exit_file(self.bundle, process)  # durable before anyone hears of it
        self._cond.notify_all()
        if not process.publish_exit:
            return
        self.publisher.publish(
            "/tasks/exit",
            {
                "container_id": self.container_id,
                "id": process.id,
                "pid": process.pid,
                "exit_status": status,
                "exited_at": timestamp(at),
            },
        )

    # -- lookup ----------------------------------------------------------------

    def _container(self, req: dict[str, Any]) -> Process:
        id = _str(req, "id")
        if self.init is None or id != self.container_id or self.init.status == DELETED:
            raise errdefs.NotFound(f"container {id!r} not created")
        return self.init

    def _process(self, req: dict[str, Any]) -> Process:
        init = self._container(req)
        exec_id = _str(req, "exec_id")
        if not exec_id:
            return init
        try:
            return self.execs[exec_id]
        except KeyError:
            raise errdefs.NotFound(f"process {exec_id} does not exist") from None

    def _console_socket(self) -> ConsoleSocket:
        self._console_seq += 1
        path = os.path.join(self.socket_dir, f"pty-{os.getpid()}-{self._console_seq}.sock")
        return ConsoleSocket(path)

    def _launch(self, process: Process, run: Any) -> None:
        """Open stdio, run the runtime (``run(stdio, console_path)``), take the console."""
        console = self._console_socket() if process.io.terminal else None
        try:
            stdio = process.io.open()
            run(stdio, console.path if console else "")
            if console is not None:
                process.io.attach_console(console.receive())
        except BaseException:
            process.io.close()
            raise
        finally:
            process.io.release_runtime_fds()
            if console is not None:
                console.close()

    # -- handlers ----------------------------------------------------------------

    def create(self, req: dict[str, Any]) -> dict[str, Any]:
        """``CreateTaskRequest{id, bundle, rootfs, terminal, stdin, stdout, stderr, options}``.

        ``options`` are the runc options: ``binary_name``, ``root``, ``systemd_cgroup``.
        """
        id = _str(req, "id")
        if id != self.container_id:
            raise errdefs.InvalidArgument(f"this shim serves {self.container_id!r}, not {id!r}")
        if _str(req, "checkpoint"):
            raise errdefs.NotImplemented_("restoring from a checkpoint is not supported")
        options = req.get("options") or {}
        options = _document(options, "options") if options else {}
        with self._cond:
            if self.init is not None:
                raise errdefs.AlreadyExists(f"container {id} already exists")
            self.runc = Runc(
                self.reaper,
                self.bundle,
                binary=str(options.get("binary_name") or "runc"),
                root=str(options.get("root") or f"/run/pycontainerd/runc/{self.namespace}"),
                systemd_cgroup=bool(options.get("systemd_cgroup")),
            )
            with open(os.path.join(self.bundle, OPTIONS_FILE), "wb") as f:
                f.write(msgpack.packb({"binary_name": self.runc.binary, "root": self.runc.root}))
            stdin, stdout, stderr = _str(req, "stdin"), _str(req, "stdout"), _str(req, "stderr")
            terminal = _bool(req, "terminal")
            io = ProcessIO(
                self.reaper,
                stdin,
                stdout,
                stderr,
                terminal,
                namespace=self.namespace,
                container_id=id,
            )
            init = Process(id, "", io)
            pid_file = os.path.join(self.bundle, "init.pid")

            def run(stdio: tuple[int, int, int], console: str) -> None:
                self.runc.create(id, pid_file=pid_file, stdio=stdio, console_socket=console)

            self._launch(init, run)
            init.pid = read_pid_file(pid_file)
            self.init = init
            _cgroups.watch_oom(init.pid, self._oom)
            self.publisher.publish(
                "/tasks/create",
                {
                    "container_id": id,
                    "bundle": _str(req, "bundle") or self.bundle,
                    "rootfs": req.get("rootfs") or [],
                    "io": {
                        "stdin": stdin,
                        "stdout": stdout,
                        "stderr": stderr,
                        "terminal": terminal,
                    },
                    "checkpoint": "",
                    "pid": init.pid,
                },
            )
            self._claim(init)
            return {"pid": init.pid}

    def _oom(self) -> None:
        self.publisher.publish("/tasks/oom", {"container_id": self.container_id})

    def start(self, req: dict[str, Any]) -> dict[str, Any]:
        """``StartRequest{id, exec_id}`` -> ``{pid}``."""
        with self._cond:
            init = self._container(req)
            p = self._process(req)
            p.check("start")
            if p.is_init:
                self.runc.start(p.id)
                if p.status == CREATED:
                    p.status = RUNNING
                self.publisher.publish(
                    "/tasks/start", {"container_id": self.container_id, "pid": p.pid}
                )
                return {"pid": p.pid}
            init.check("exec")
            process_file = os.path.join(self.bundle, f"exec-{p.exec_id}.json")
            with open(process_file, "w") as f:
                import json

                json.dump(p.spec, f)
            pid_file = os.path.join(self.bundle, f"{p.exec_id}.pid")

            def run(stdio: tuple[int, int, int], console: str) -> None:
                self.runc.exec(
                    self.container_id,
                    process_file=process_file,
                    pid_file=pid_file,
                    stdio=stdio,
                    console_socket=console,
                )

            try:
                self._launch(p, run)
            finally:
                os.unlink(process_file)
            p.pid = read_pid_file(pid_file)
            p.status = RUNNING
            self.publisher.publish(
                "/tasks/exec-started",
                {"container_id": self.container_id, "exec_id": p.exec_id, "pid": p.pid},
            )
            self._claim(p)
            return {"pid": p.pid}

    def delete(self, req: dict[str, Any]) -> dict[str, Any]:
        """``DeleteRequest{id, exec_id}`` -> ``{pid, exit_status, exited_at}``."""
        with self._cond:
            p = self._process(req)
            p.check("delete")
            if not p.is_init:
                del self.execs[p.exec_id]
                p.status = DELETED if p.exited else p.status
                p.io.close()
                return {"pid": p.pid, "exit_status": p.exit_status, "exited_at": _time(p.exited_at)}
            unstarted = p.status == CREATED
            p.publish_exit = not unstarted
            try:
                self.runc.delete(p.id, force=unstarted)
            except RuntimeError_ as exc:
                if "does not exist" not in exc.message and "not exist" not in exc.message:
                    raise
            if unstarted:
                self._cond.wait_for(lambda: p.exited, _UNSTARTED_EXIT_WAIT)
                if not p.exited:
                    self._exited(p, 128 + signals.SIGKILL, time.time_ns())
            p.io.close()
            p.status = DELETED
            for e in self.execs.values():
                e.io.close()
            self.publisher.publish(
                "/tasks/delete",
                {
                    "container_id": self.container_id,
                    "pid": p.pid,
                    "exit_status": p.exit_status,
                    "exited_at": _time(p.exited_at),
                    "id": "",
                },
            )
            return {"pid": p.pid, "exit_status": p.exit_status, "exited_at": _time(p.exited_at)}

    def exec(self, req: dict[str, Any]) -> dict[str, Any]:
        """``ExecProcessRequest{id, exec_id, terminal, stdin, stdout, stderr, spec}``."""
        with self._cond:
            init = self._container(req)
            exec_id = _str(req, "exec_id")
            if not exec_id:
                raise errdefs.InvalidArgument("exec id cannot be empty")
            if "/" in exec_id or exec_id in (".", ".."):
                raise errdefs.InvalidArgument(f"exec id {exec_id!r} is not an identifier")
            if exec_id in self.execs:
                raise errdefs.AlreadyExists(f"id {exec_id}: already exists")
            init.check("exec")
            spec = _document(req.get("spec"), "spec")
            terminal = _bool(req, "terminal")
            spec["terminal"] = terminal
            io = ProcessIO(
                self.reaper,
                _str(req, "stdin"),
                _str(req, "stdout"),
                _str(req, "stderr"),
                terminal,
                namespace=self.namespace,
                container_id=self.container_id,
            )
            self.execs[exec_id] = Process(self.container_id, exec_id, io, spec)
            self.publisher.publish(
                "/tasks/exec-added", {"container_id": self.container_id, "exec_id": exec_id}
            )
            return {}

    def state(self, req: dict[str, Any]) -> dict[str, Any]:
        """``StateRequest{id, exec_id}`` -> ``StateResponse``."""
        with self._cond:
            p = self._process(req)
            return {
                "id": p.id,
                "bundle": self.bundle,
                "pid": p.pid,
                "status": p.status,
                "stdin": p.io.stdin,
                "stdout": p.io.stdout,
                "stderr": p.io.stderr,
                "terminal": p.io.terminal,
                "exit_status": p.exit_status,
                "exited_at": _time(p.exited_at),
                "exec_id": p.exec_id,
            }

    def pids(self, req: dict[str, Any]) -> dict[str, Any]:
        """``PidsRequest{id}`` -> ``{processes: [{pid, info}]}`` (info names an exec's id)."""
        with self._cond:
            init = self._container(req)
            by_pid = {e.pid: e.exec_id for e in self.execs.values() if e.pid}
        try:
            pids = self.runc.ps(init.id)
        except RuntimeError_ as exc:
            raise errdefs.FailedPrecondition(exc.message) from None
        return {
            "processes": [
                {"pid": pid, "info": {"exec_id": by_pid[pid]} if pid in by_pid else None}
                for pid in pids
            ]
        }

    def pause(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            init = self._container(req)
            init.check("pause")
            self.runc.pause(init.id)
            init.status = PAUSED
            self.publisher.publish("/tasks/paused", {"container_id": self.container_id})
            return {}

    def resume(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            init = self._container(req)
            init.check("resume")
            self.runc.resume(init.id)
            if init.status == PAUSED:
                init.status = RUNNING
            self.publisher.publish("/tasks/resumed", {"container_id": self.container_id})
            return {}

    def kill(self, req: dict[str, Any]) -> dict[str, Any]:
        """``KillRequest{id, exec_id, signal, all}``."""
        with self._cond:
            p = self._process(req)
            sig = _int(req, "signal") or signals.SIGTERM
            if not 0 < sig <= signals.SIGRTMAX:
                raise errdefs.InvalidArgument(f"invalid signal {sig}")
            if p.exited:
                raise errdefs.NotFound("process already finished")
            if p.is_init:
                try:
                    self.runc.kill(p.id, sig, all=_bool(req, "all"))
                except RuntimeError_ as exc:
                    raise _kill_error(exc) from None
                return {}
            if not p.pid:
                raise errdefs.FailedPrecondition("process not created")
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                raise errdefs.NotFound("process already finished") from None
            return {}

    def resize_pty(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            p = self._process(req)
            p.io.resize(_int(req, "width"), _int(req, "height"))
            return {}

    def close_io(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            p = self._process(req)
            if _bool(req, "stdin"):
                p.io.close_stdin()
            return {}

    def checkpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        """``CheckpointTaskRequest{id, path, options}``: ``runc checkpoint`` (CRIU)."""
        with self._cond:
            init = self._container(req)
            init.check("checkpoint")
            path = _str(req, "path")
            if not path:
                raise errdefs.InvalidArgument("checkpoint path is required")
            options = req.get("options") or {}
            options = _document(options, "options") if options else {}
            work = os.path.join(self.bundle, "criu-work")
            try:
                self.runc.checkpoint(init.id, path, work, leave_running=not options.get("exit"))
            except RuntimeError_ as exc:
                raise errdefs.FailedPrecondition(exc.message) from None
            if options.get("exit"):
                self._cond.wait_for(lambda: init.exited, _UNSTARTED_EXIT_WAIT)
            return {}

    def update(self, req: dict[str, Any]) -> dict[str, Any]:
        """``UpdateTaskRequest{id, resources, annotations}``: ``runc update``."""
        with self._cond:
            init = self._container(req)
            init.check("update")
            resources = _document(req.get("resources"), "resources")
            self.runc.update(init.id, resources)
            return {}

    def wait(self, req: dict[str, Any]) -> dict[str, Any]:
        """``WaitRequest{id, exec_id}``: blocks until the process exited."""
        with self._cond:
            p = self._process(req)
            self._cond.wait_for(lambda: p.exited)
            return {"exit_status": p.exit_status, "exited_at": _time(p.exited_at)}

    def stats(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            init = self._container(req)
            if init.exited:
                raise errdefs.NotFound("process already finished")
            pid = init.pid
        try:
            return {"stats": _cgroups.stats(pid)}
        except OSError as exc:
            raise errdefs.NotFound(f"no cgroup for pid {pid}: {exc}") from None

    def connect(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            pid = self.init.pid if self.init is not None else 0
            return {"shim_pid": os.getpid(), "task_pid": pid, "version": VERSION}

    def shutdown(self, req: dict[str, Any]) -> dict[str, Any]:
        """``ShutdownRequest{id, now}``: ignored while the container exists, unless ``now``."""
        with self._cond:
            live = self.init is not None and self.init.status != DELETED
            if live and not _bool(req, "now"):
                return {}
            self.shutdown_requested.set()
            return {}
