"""``TaskActor``: one live task, its shim connection, and its events.

One actor per ``(namespace, container id)`` owns the task from ``tasks.create``
to ``tasks.delete``: the bundle, the connection to the task's shim (a Trio
msgpack-RPC client: waiting for an exit costs no thread), the processes (the
init process ``""`` and every ``exec_id``) and their exits. It is the single
publisher of the task's events, journalled with the change they describe::

    Create ─▶ bundle + rootfs mounted, shim started, runc create  /tasks/create
              a watcher awaits the shim's `wait` of the init
    Start  ─▶ runc start (an exec: and a watcher of its own)      /tasks/start
              ... exit ─▶ exit recorded, waiters answered          /tasks/exit (once)
    Delete ─▶ runc delete, shim shut down, bundle removed          /tasks/delete

The init process is watched from its ``runc create`` on, as containerd's shim
tracks a created init's pid: a signal to a task that never started ends its
``runc init``, and that exit is the task's (``tasks.wait`` returns it, the task
is stopped and deletes). An exec is watched once started: before, it has no
process, so nothing of it can exit (a signal to it is refused, "process not
created", and its deletion journals no exit).

``/tasks/exit`` is journalled with a deduplication key (namespace, container,
exec id, pid, exited_at), so an exit learnt twice — from the live connection
and, after a daemon restart, from the shim's exit file — is published once;
``/tasks/delete`` with that key and ``/delete``.

A dead shim (containerd's ``cleanupAfterDeadShim``): the actor watches the
shim's process (a pidfd) and its connection. When either goes, the shim's
``delete`` cleanup force-deletes the container (``runc delete --force``: what
is left of its processes is killed, its cgroups removed), unmounts the rootfs
and records the exit in the bundle (137, or 255 when the cleanup failed); the
actor publishes each process's ``/tasks/exit`` once and ``/tasks/delete``,
answers the waiters, removes the bundle, and the task is gone while its
container stays. A shim whose connection closed but whose process lives is
killed first (through its pidfd): a shim the daemon cannot talk to is dead to it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.api import tasks as api
from pycontainerd.metadata import Transaction, events
from pycontainerd.runtime import DEAD_SHIM_EXIT_STATUS, Bundle, delete_shim, record_exit
from pycontainerd.supervisor import Actor, ActorRef, MailboxClosed
from pycontainerd.wire import AsyncClient, ConnectionLost

from .metadata import Update

log = logging.getLogger("pycontainerd.tasks")

PROCESS_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"


def exit_key(ns: str, container_id: str, exec_id: str, pid: int, exited_at: datetime) -> str:
    """The journal's deduplication key of one exit (the time to the millisecond:
    the shim's answer and its exit file may round the nanoseconds differently)."""
    millis = round(exited_at.timestamp() * 1000)
    return f"/tasks/exit/{ns}/{container_id}/{exec_id}/{pid}/{millis}"


KILLED_EXIT_STATUS = 128 + signal.SIGKILL
SHIM_POLL_INTERVAL = 1.0
"""Seconds between liveness checks of a shim when no pidfd can watch it."""


@attrs.define
class Proc:
    """One process of the task as the daemon knows it."""

    exec_id: str
    pid: int = 0
    status: str = "created"
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    exit_status: int = 0
    exited_at: datetime | None = None
    exited: trio.Event = attrs.field(factory=trio.Event)
    watched: bool = False
    """A watcher awaits its exit from the shim."""
    exiting: bool = False
    """Its exit is being recorded (``exited`` is set once it is journalled)."""


@attrs.frozen
class Attach:
    """Take over a task: a new one (after ``runc create``) or one recovered."""

    bundle: Bundle
    address: str
    pid: int
    io: tuple[str, str, str, bool]
    rootfs: list[dict[str, Any]]
    recovered: bool = False


@attrs.frozen
class Start:
    exec_id: str


@attrs.frozen
class Kill:
    exec_id: str
    signal: int
    all: bool


@attrs.frozen
class Exec:
    request: api.ExecProcessRequest


@attrs.frozen
class Pause:
    resume: bool


@attrs.frozen
class Delete:
    exec_id: str


@attrs.frozen
class Get:
    exec_id: str


@attrs.frozen
class WaitExit:
    exec_id: str


@attrs.frozen(eq=False)
class ShimDied:
    """The shim behind ``client`` exited or closed its connection (sent by the actor itself)."""

    client: AsyncClient


@attrs.frozen
class ShimCall:
    """A call passed to the shim as it is (pids, stats, update, resize, close_io...)."""

    method: str
    fields: dict[str, Any]


class TaskActor(Actor):
    """See the module docstring."""

    def __init__(
        self,
        key: tuple[str, str],
        metadata: ActorRef,
        on_deleted: Callable[[tuple[str, str]], None],
        on_attached: Callable[[tuple[str, str]], None],
    ) -> None:
        super().__init__(name=f"{key[0]}/{key[1]}", mailbox_size=64)
        self.namespace, self.id = key
        self._metadata = metadata
        self._on_deleted = on_deleted
        self._on_attached = on_attached
        self.bundle: Bundle | None = None
        self._shim: AsyncClient | None = None
        self._shim_pidfd = -1
        self._monitor: trio.CancelScope | None = None
        self.procs: dict[str, Proc] = {}

    def __repr__(self) -> str:
        init = self.procs.get("")
        status = init.status if init else "-"
        return f"<TaskActor ns={self.namespace!r} id={self.id!r} {self.statistics_repr()} {status}>"

    def busy(self) -> bool:
        return True  # a live task is never passivated

    async def terminate(self, reason: BaseException | None) -> None:
        # the daemon stops (or this actor crashed): the shim and its task live on
        self._forget_shim()
        if self._shim is not None:
            with contextlib.suppress(Exception):
                await self._shim.aclose()

    # -- helpers -----------------------------------------------------------------

    @property
    def shim(self) -> AsyncClient:
        if self._shim is None:
            raise errdefs.NotFound(f"task {self.id}: not found")
        return self._shim

    async def _call(self, method: str, **fields: Any) -> Any:
        client = self.shim
        try:
            return await client.call(method, {"id": self.id, **fields})
        except ConnectionLost as exc:
            self._report_dead(client)
            raise errdefs.Unavailable(f"task {self.id}: shim unreachable: {exc}") from None
        except errdefs.Unavailable as exc:
            raise errdefs.Unavailable(f"task {self.id}: shim unreachable: {exc}") from None

    def _proc(self, exec_id: str) -> Proc:
        proc = self.procs.get(exec_id)
        if proc is None:
            what = f"process {exec_id} of task {self.id}" if exec_id else f"task {self.id}"
            raise errdefs.NotFound(f"{what}: not found")
        return proc

    async def _publish(self, topic: str, event: dict[str, Any], key: str | None = None) -> None:
        await self._publish_all([(topic, event, key)])

    async def _publish_all(self, batch: list[tuple[str, dict[str, Any], str | None]]) -> None:
        """Journal ``(topic, event, dedup key)`` records in one transaction."""
        ns = self.namespace

        def write(tx: Transaction) -> None:
            for topic, event, key in batch:
                if key is None:
                    events.publish(tx, ns, topic, event)
                else:
                    events.publish(tx, ns, topic, event, dedup_key=key)

        await self._metadata.call(Update(write))

    def _watch(self, proc: Proc) -> None:
        if not proc.watched:
            proc.watched = True
            self.start_soon(self._await_exit, proc)

    async def _await_exit(self, proc: Proc) -> None:
        try:
            r = await self._call("wait", exec_id=proc.exec_id)
        except errdefs.NotFound:
            return  # deleted meanwhile
        except errdefs.Unavailable:
            return  # the shim is gone: its cleanup ends the process (_on_shim_died)
        await self._exited(proc, int(r["exit_status"]), r["exited_at"])

    def _exit_event(
        self, proc: Proc, status: int, at: datetime | None
    ) -> tuple[str, dict[str, Any], str]:
        """Mark ``proc`` stopped; its ``/tasks/exit`` record (waiters are told by the caller)."""
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        proc.status, proc.exit_status, proc.exited_at = "stopped", status, at
        event = {
            "container_id": self.id,
            "id": proc.exec_id or self.id,
            "pid": proc.pid,
            "exit_status": status,
            "exited_at": at,
        }
        return "/tasks/exit", event, exit_key(self.namespace, self.id, proc.exec_id, proc.pid, at)

    def _delete_event(self, proc: Proc) -> tuple[str, dict[str, Any], str]:
        at = proc.exited_at or datetime.now(UTC)
        event = {
            "container_id": self.id,
            "pid": proc.pid,
            "exit_status": proc.exit_status,
            "exited_at": at,
            "id": "",
        }
        key = exit_key(self.namespace, self.id, "", proc.pid, at) + "/delete"
        return "/tasks/delete", event, key

    async def _exited(self, proc: Proc, status: int, at: datetime | None) -> None:
        """Journal ``proc``'s exit once and answer its waiters; a caller that finds it
        being journalled (its watcher and ``delete`` both learn it) waits for that."""
        if proc.exiting:
            await proc.exited.wait()
            return
        proc.exiting = True
        record = self._exit_event(proc, status, at)
        try:
            with trio.CancelScope(shield=True):
                await self._publish_all([record])
        except BaseException:
            proc.exiting = False
            raise
        proc.exited.set()

    # -- the shim's liveness -------------------------------------------------------

    async def _watch_shim(self, client: AsyncClient) -> None:
        """Know the shim's pid, open a pidfd on it and watch it (``connect`` again
        after the pidfd is open: the pid was not reused meanwhile)."""
        self._forget_shim()
        try:
            pid = int((await client.call("connect", {"id": self.id})).get("shim_pid") or 0)
            pidfd = os.pidfd_open(pid) if pid > 0 else -1
        except (errdefs.ErrdefsError, OSError) as exc:
            log.info("task %s/%s: shim pid not watched: %s", self.namespace, self.id, exc)
            pidfd = -1
        self._shim_pidfd = pidfd
        scope = self._monitor = trio.CancelScope()
        self.start_soon(self._monitor_shim, client, pidfd, scope)
        if pidfd >= 0:
            try:
                await client.call("connect", {"id": self.id})
            except ConnectionLost:
                self._report_dead(client)
            except errdefs.ErrdefsError as exc:  # it answered: it lives
                log.info("task %s/%s: shim connect: %s", self.namespace, self.id, exc)

    def _forget_shim(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        if self._shim_pidfd >= 0:
            trio.lowlevel.notify_closing(self._shim_pidfd)
            os.close(self._shim_pidfd)
            self._shim_pidfd = -1

    async def _monitor_shim(self, client: AsyncClient, pidfd: int, scope: trio.CancelScope) -> None:
        with scope:
            if pidfd >= 0:
                try:
                    await trio.lowlevel.wait_readable(pidfd)
                except trio.ClosedResourceError:
                    return  # no longer watched (_forget_shim)
            else:
                while True:
                    await trio.sleep(SHIM_POLL_INTERVAL)
                    try:
                        await client.call("connect", {"id": self.id})
                    except ConnectionLost:
                        break
                    except errdefs.ErrdefsError:
                        continue
            self._report_dead(client)

    def _report_dead(self, client: AsyncClient) -> None:
        """Have the mailbox handle :class:`ShimDied` (after the message being handled)."""
        if self._shim is client:
            self.start_soon(self._send_self, ShimDied(client))

    async def _send_self(self, msg: object) -> None:
        if self._cell is not None:
            with contextlib.suppress(MailboxClosed):  # stopping: the shim is left as it is
                await self._cell.ref.send(msg)

    def _shim_lives(self) -> bool:
        if self._shim_pidfd < 0:
            return False  # unknown: its connection closed, it is dead to us
        poller = select.poll()
        poller.register(self._shim_pidfd, select.POLLIN)
        return not poller.poll(0)

    async def on_shim_died(self, msg: ShimDied) -> None:
        if self._shim is not msg.client:
            return  # deleted, or the task has another shim now
        log.warning("task %s/%s: shim died, cleaning up", self.namespace, self.id)
        with trio.CancelScope(shield=True):
            await self._cleanup_dead_shim(msg.client)

    async def _cleanup_dead_shim(self, client: AsyncClient) -> None:
        """containerd's ``cleanupAfterDeadShim`` (see the module docstring)."""
        if self._shim_lives():  # its connection closed: kill it, never two shims
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._shim_pidfd, signal.SIGKILL)
        self._forget_shim()
        self._shim = None
        with contextlib.suppress(Exception):
            await client.aclose()
        bundle = self.bundle
        init = self.procs.get("")
        pid = init.pid if init is not None else 0
        status, at, failed = DEAD_SHIM_EXIT_STATUS, datetime.now(UTC), True
        if bundle is not None:
            try:
                result = await self.run_sync_in_thread(delete_shim, bundle)
                pid, status = result.pid or pid, result.exit_status
                at, failed = result.exited_at or at, False
            except errdefs.ErrdefsError as exc:
                log.warning("task %s/%s: dead shim cleanup: %s", self.namespace, self.id, exc)
                try:  # a restart's recovery then publishes this same exit, not another
                    recorded = await self.run_sync_in_thread(record_exit, bundle, pid, status, at)
                    pid, status = recorded.pid, recorded.exit_status
                    at = recorded.exited_at or at
                except OSError as err:
                    log.warning("task %s/%s: exit not recorded: %s", self.namespace, self.id, err)
        batch: list[tuple[str, dict[str, Any], str | None]] = []
        # (an exit being journalled by its watcher is left to it)
        ended = [p for p in self.procs.values() if not p.exiting]
        for proc in ended:
            proc.exiting = True
            if proc.exec_id == "":
                proc.pid = proc.pid or pid
                batch.append(self._exit_event(proc, status, at))
            elif proc.status == "created":  # never ran: nothing exited
                proc.status, proc.exit_status, proc.exited_at = "stopped", status, at
            else:
                killed = DEAD_SHIM_EXIT_STATUS if failed else KILLED_EXIT_STATUS
                batch.append(self._exit_event(proc, killed, at))
        if init is not None:
            batch.append(self._delete_event(init))
        try:
            await self._publish_all(batch)
        except errdefs.ErrdefsError as exc:
            log.error(
                "task %s/%s: dead shim's events not published: %s", self.namespace, self.id, exc
            )
        for proc in ended:
            proc.exited.set()
        if bundle is not None:
            try:
                await self.run_sync_in_thread(bundle.delete)
            except (errdefs.ErrdefsError, OSError) as exc:
                # kept with its recorded exit: the next daemon start removes it
                log.warning("task %s/%s: bundle not removed: %s", self.namespace, self.id, exc)
        self.bundle = None
        self.procs = {}
        self._on_deleted((self.namespace, self.id))

    # -- handlers ----------------------------------------------------------------

    async def on_attach(self, msg: Attach) -> int:
        client = await AsyncClient.connect(msg.address.removeprefix("unix://"), namespace=None)
        try:
            await self._attach(msg, client)
        except BaseException:
            # not attached: the caller cleans up (a queued ShimDied finds no shim)
            self._forget_shim()
            self._shim, self.bundle, self.procs = None, None, {}
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await client.aclose()
            raise
        self._on_attached((self.namespace, self.id))
        return msg.pid

    async def _attach(self, msg: Attach, client: AsyncClient) -> None:
        self.bundle = msg.bundle
        self._shim = client
        stdin, stdout, stderr, terminal = msg.io
        init = Proc("", pid=msg.pid, stdin=stdin, stdout=stdout, stderr=stderr, terminal=terminal)
        self.procs = {"": init}
        await self._watch_shim(client)
        if msg.recovered:
            await self._recover()
            return
        await self._publish(
            "/tasks/create",
            {
                "container_id": self.id,
                "bundle": msg.bundle.path,
                "rootfs": msg.rootfs,
                "io": {"stdin": stdin, "stdout": stdout, "stderr": stderr, "terminal": terminal},
                "checkpoint": "",
                "pid": msg.pid,
            },
        )
        self._watch(init)  # created: a signal may end it before it starts

    async def _recover(self) -> None:
        """Rebuild the processes from the shim after a daemon restart (a task that
        ended meanwhile stays, stopped, until deleted; its exit is published once)."""
        try:
            running = (await self._call("pids"))["processes"]
        except errdefs.FailedPrecondition:
            running = []  # runc lists no processes of a stopped container
        for info in running:
            exec_id = (info.get("info") or {}).get("exec_id", "") if info else ""
            if exec_id:
                self.procs[exec_id] = Proc(exec_id)
        for proc in list(self.procs.values()):
            st = await self._call("state", exec_id=proc.exec_id)
            proc.pid, proc.status = int(st.get("pid") or 0), str(st.get("status") or "unknown")
            proc.stdin, proc.stdout = st.get("stdin", ""), st.get("stdout", "")
            proc.stderr, proc.terminal = st.get("stderr", ""), bool(st.get("terminal"))
            if proc.status == "stopped":
                await self._exited(proc, int(st.get("exit_status") or 0), st.get("exited_at"))
            elif proc.status != "created" or not proc.exec_id:
                self._watch(proc)  # an init even if created; an exec once it runs

    async def on_start(self, msg: Start) -> int:
        proc = self._proc(msg.exec_id)
        pid = int((await self._call("start", exec_id=msg.exec_id))["pid"])
        proc.pid, proc.status = pid, "running"
        self._watch(proc)
        if msg.exec_id:
            event = {"container_id": self.id, "exec_id": msg.exec_id, "pid": pid}
            await self._publish("/tasks/exec-started", event)
        else:
            await self._publish("/tasks/start", {"container_id": self.id, "pid": pid})
        return pid

    async def on_kill(self, msg: Kill) -> None:
        proc = self._proc(msg.exec_id)
        if proc.exited.is_set():
            raise errdefs.NotFound("process already finished")
        await self._call("kill", exec_id=msg.exec_id, signal=msg.signal, all=msg.all)

    async def on_exec(self, msg: Exec) -> None:
        req = msg.request
        if req.exec_id in self.procs:
            raise errdefs.AlreadyExists(f"exec {req.exec_id} of task {self.id}: already exists")
        init = self._proc("")
        if init.exited.is_set():
            raise errdefs.FailedPrecondition("cannot exec in a stopped state")
        spec = api.any_map(req.spec) or {"type_url": PROCESS_TYPE_URL, "value": {}}
        await self._call(
            "exec",
            exec_id=req.exec_id,
            spec=spec,
            stdin=req.stdin,
            stdout=req.stdout,
            stderr=req.stderr,
            terminal=req.terminal,
        )
        self.procs[req.exec_id] = Proc(
            req.exec_id,
            stdin=req.stdin,
            stdout=req.stdout,
            stderr=req.stderr,
            terminal=req.terminal,
        )
        await self._publish("/tasks/exec-added", {"container_id": self.id, "exec_id": req.exec_id})

    async def on_pause(self, msg: Pause) -> None:
        await self._call("resume" if msg.resume else "pause")
        self._proc("").status = "running" if msg.resume else "paused"
        topic = "/tasks/resumed" if msg.resume else "/tasks/paused"
        await self._publish(topic, {"container_id": self.id})

    async def on_get(self, msg: Get) -> api.Process:
        proc = self._proc(msg.exec_id)
        if not proc.exited.is_set():
            with contextlib.suppress(errdefs.ErrdefsError):
                st = await self._call("state", exec_id=msg.exec_id)
                proc.status = str(st.get("status") or proc.status)
        return api.Process(
            container_id=self.id,
            id=msg.exec_id or self.id,
            pid=proc.pid,
            status=proc.status,
            stdin=proc.stdin,
            stdout=proc.stdout,
            stderr=proc.stderr,
            terminal=proc.terminal,
            exit_status=proc.exit_status,
            exited_at=proc.exited_at,
        )

    async def on_wait(self, msg: WaitExit) -> object:
        proc = self._proc(msg.exec_id)

        async def wait() -> api.WaitResponse:
            await proc.exited.wait()
            return api.WaitResponse(exit_status=proc.exit_status, exited_at=proc.exited_at)

        return self.defer(wait)

    async def on_delete(self, msg: Delete) -> api.DeleteTaskResponse:
        proc = self._proc(msg.exec_id)
        if msg.exec_id == "" and any(
            not p.exited.is_set() and p.status != "created" for p in self.procs.values()
        ):
            raise errdefs.FailedPrecondition(
                f"cannot delete a {proc.status} process: task {self.id} must be stopped"
            )
        r = await self._call("delete", exec_id=msg.exec_id)
        if msg.exec_id and not proc.watched:
            # an exec deleted before it started: it had no process, nothing exited
            proc.exiting, proc.status = True, "stopped"
            proc.exited.set()
        else:  # journalled by its watcher, or now (a created init: `runc delete --force`)
            await self._exited(proc, int(r.get("exit_status") or 0), r.get("exited_at"))
        del self.procs[msg.exec_id]
        at = proc.exited_at
        resp = api.DeleteTaskResponse(
            id=msg.exec_id or self.id, pid=proc.pid, exit_status=proc.exit_status, exited_at=at
        )
        if msg.exec_id:
            return resp
        await self._publish_all([self._delete_event(proc)])
        self._forget_shim()  # the shim exits now: that is no death
        client = self.shim
        self._shim = None
        with contextlib.suppress(errdefs.ErrdefsError):
            await client.call("shutdown", {"id": self.id, "now": True})
        await client.aclose()
        bundle = self.bundle
        if bundle is not None:
            await self.run_sync_in_thread(bundle.delete)
        self.bundle = None
        self.procs = {}
        self._on_deleted((self.namespace, self.id))
        return resp

    async def on_shim_call(self, msg: ShimCall) -> Any:
        return await self._call(msg.method, **msg.fields)

    handlers = {
        Attach: on_attach,
        Start: on_start,
        Kill: on_kill,
        Exec: on_exec,
        Pause: on_pause,
        Get: on_get,
        WaitExit: on_wait,
        Delete: on_delete,
        ShimCall: on_shim_call,
        ShimDied: on_shim_died,
    }
