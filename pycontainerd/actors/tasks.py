"""The ``tasks.*`` service: containerd's Tasks over the runtime v2 shims.

``tasks.create`` reads the container, mounts its rootfs (the request's
``rootfs`` mounts, or the container's ``snapshot_key`` in its snapshotter) into
a new bundle, starts the task's shim and has it ``runc create`` the container
— blocking work, in worker threads — then hands the task to its
:class:`~pycontainerd.actors.task_actor.TaskActor`, which every later call goes
through. On daemon start :func:`TasksService.recover` rebuilds the actors of
live shims from the state directory before the socket accepts calls (a task
that ended while the daemon was down stays listed, stopped, until
``tasks.delete``, as containerd's), and cleans up after shims that died
meanwhile, publishing their exit and delete once.

Every runtime path is under the state directory: bundles, runc's state
(``<state>/runc/<ns>``), the shims' sockets (``<state>/s/<sha256>``, short
enough for a Unix socket address) and their bytecode cache (``<state>/pycache``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from pycontainerd.api import errdefs, filters, identifiers
from pycontainerd.api import tasks as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import AnyValue, Empty, Mount
from pycontainerd.metadata import NamespacedSnapshotter, Transaction, events, tables
from pycontainerd.runtime import (
    Bundle,
    ShimClient,
    delete_shim,
    load_existing,
    max_socket_dir,
    new_bundle,
    shim_socket_dir,
    start_shim,
)
from pycontainerd.snapshots import Snapshotter
from pycontainerd.supervisor import ActorRef, KeyedSupervisor, io_limiter

from .metadata import ActorRunner, Update, View
from .task_actor import (
    Attach,
    Delete,
    Exec,
    Get,
    Kill,
    Pause,
    ShimCall,
    Start,
    TaskActor,
    WaitExit,
    exit_key,
)

log = logging.getLogger("pycontainerd.tasks")

Key = tuple[str, str]


def _mount(m: Mount) -> dict[str, Any]:
    return {"type": m.type, "source": m.source, "target": m.target, "options": list(m.options)}


class TasksService:
    """containerd's Tasks service (see the module docstring).

    Args:
        metadata: the metadata actor.
        snapshotters: the loaded snapshotters by name (rootfs from ``snapshot_key``).
        state: the daemon's state directory (bundles).
        root: the daemon's root directory (work directories).
        address: the daemon's socket, handed to shims.
    """

    def __init__(
        self,
        metadata: ActorRef,
        snapshotters: Mapping[str, Snapshotter],
        *,
        state: Path,
        root: Path,
        address: str,
    ) -> None:
        self.metadata = metadata
        self.snapshotters = dict(snapshotters)
        self.state = str(state)
        self.root = str(root)
        self.address = address
        self.runner = ActorRunner(metadata)
        self.socket_dir = shim_socket_dir(self.state)
        if len(os.fsencode(self.socket_dir)) > max_socket_dir():
            raise errdefs.InvalidArgument(
                f"state directory {self.state!r} is too long: the shims' sockets under "
                f"{self.socket_dir!r} would not fit a Unix socket address "
                f"({max_socket_dir()} bytes for the directory at most)"
            )
        self.live: set[Key] = set()
        self._creating: set[Key] = set()
        self.tasks: KeyedSupervisor[Key] = KeyedSupervisor(
            "tasks", lambda key: TaskActor(key, metadata, self._deleted, self.live.add)
        )

    def _deleted(self, key: Key) -> None:
        self.live.discard(key)

    def methods(self) -> dict[str, Any]:
        return {
            "tasks.create": self.create,
            "tasks.start": self.start,
            "tasks.delete": self.delete,
            "tasks.delete_process": self.delete_process,
            "tasks.get": self.get,
            "tasks.list": self.list,
            "tasks.kill": self.kill,
            "tasks.exec": self.exec,
            "tasks.resize_pty": self.resize_pty,
            "tasks.close_io": self.close_io,
            "tasks.pause": self.pause,
            "tasks.resume": self.resume,
            "tasks.list_pids": self.list_pids,
            "tasks.update": self.update,
            "tasks.metrics": self.metrics,
            "tasks.wait": self.wait,
        }

    # -- plumbing ------------------------------------------------------------------

    def _ref(self, ns: str, container_id: str) -> ActorRef:
        key = (ns, container_id)
        ref = self.tasks.get(key)
        if ref is None or key not in self.live:
            raise errdefs.NotFound(f"task {container_id}: not found")
        return ref

    async def _ask(
        self, call: Call, msg: object, reply: Callable[[Any], Any] = lambda _: Empty()
    ) -> Wait:
        ref = self._ref(call.namespace, call.request.container_id)
        pending = await ref.request(msg)

        async def wait() -> Any:
            return reply(await pending.wait())

        return wait

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=io_limiter())

    # -- create ----------------------------------------------------------------------

    async def create(self, call: Call) -> Wait:
        req: api.CreateTaskRequest = call.request
        ns, cid = call.namespace, req.container_id
        identifiers.validate(cid)
        key = (ns, cid)
        if key in self.live or key in self._creating:
            raise errdefs.AlreadyExists(f"task {cid}: already exists")
        if req.checkpoint is not None:
            raise errdefs.NotImplemented_("restoring a task from a checkpoint is not supported")
        pending = await self.metadata.request(View(lambda db: tables.containers.get(db, ns, cid)))
        self._creating.add(key)

        async def wait() -> api.CreateTaskResponse:
            try:
                container: tables.containers.ContainerRecord = await pending.wait()
                pid = await self._create(ns, container, req)
            finally:
                self._creating.discard(key)
            return api.CreateTaskResponse(container_id=cid, pid=pid)

        return wait

    async def _create(
        self, ns: str, container: tables.containers.ContainerRecord, req: api.CreateTaskRequest
    ) -> int:
        spec = (container.spec or {}).get("value")
        if not isinstance(spec, dict):
            raise errdefs.InvalidArgument(f"container {container.id}: spec is not an OCI spec map")
        mounts = list(req.rootfs)
        if not mounts and container.snapshot_key:
            mounts = await self._snapshot_mounts(ns, container)
        options = api.any_map(req.options) or dict(container.runtime_options or {})
        values = dict(options.get("value") or {}) if options else {}
        # runc's state per daemon and namespace, so that two daemons never share it
        values.setdefault("root", os.path.join(self.state, "runc", ns))
        bundle = await self._thread(
            new_bundle, self.state, self.root, ns, container.id, spec, mounts
        )
        try:
            shim = await self._thread(self._start_shim, bundle)
            try:
                pid: int = await self._thread(
                    lambda: shim.create(
                        bundle,
                        stdin=req.stdin,
                        stdout=req.stdout,
                        stderr=req.stderr,
                        terminal=req.terminal,
                        options=values,
                    )
                )
                address = shim.address
            except BaseException:
                # runc create failed: the shim serves nothing, stop it (containerd
                # shuts a shim down when its task's create fails)
                with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._thread(lambda: shim.shutdown(now=True))
                raise
            finally:
                shim.close()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._thread(self._discard, bundle)
            raise
        ref = await self.tasks.ref((ns, container.id))
        io = (req.stdin, req.stdout, req.stderr, req.terminal)
        try:  # attached: live (the actor says so before it handles anything else)
            await ref.call(Attach(bundle, address, pid, io, [_mount(m) for m in mounts]))
        except BaseException:
            # its shim died before it was attached: nothing else will clean it up
            with trio.CancelScope(shield=True):
                await self._thread(self._abandon, bundle, address)
            raise
        return pid

    def _start_shim(self, bundle: Bundle) -> Any:
        # The task actor is the single publisher of task events, so the shim gets
        # no daemon address to forward them to; its socket is <state>/s/<sha256>.
        return start_shim(bundle, daemon_address="", socket_dir=self.socket_dir)

    @classmethod
    def _abandon(cls, bundle: Bundle, address: str) -> None:
        """Stop a created task's shim and force-delete its container (an attach failed)."""
        with contextlib.suppress(errdefs.ErrdefsError), ShimClient(address, bundle.id) as shim:
            shim.shutdown(now=True)
        cls._discard(bundle)

    @staticmethod
    def _discard(bundle: Bundle) -> None:
        with contextlib.suppress(errdefs.ErrdefsError):
            delete_shim(bundle)
        bundle.delete()

    async def _snapshot_mounts(
        self, ns: str, container: tables.containers.ContainerRecord
    ) -> list[Mount]:
        backend = self.snapshotters.get(container.snapshotter)
        if backend is None:
            raise errdefs.InvalidArgument(f"snapshotter not loaded: {container.snapshotter}")
        store = NamespacedSnapshotter(self.runner, backend, container.snapshotter, ns)
        mounts: list[Mount] = await self._thread(store.mounts, container.snapshot_key)
        return mounts

    # -- the rest, through the task's actor -----------------------------------------

    async def start(self, call: Call) -> Wait:
        return await self._ask(
            call, Start(call.request.exec_id), lambda pid: api.StartTaskResponse(pid=pid)
        )

    async def delete(self, call: Call) -> Wait:
        return await self._ask(call, Delete(""), lambda r: r)

    async def delete_process(self, call: Call) -> Wait:
        if not call.request.exec_id:
            raise errdefs.InvalidArgument("exec id must be set to delete a process")
        return await self._ask(call, Delete(call.request.exec_id), lambda r: r)

    async def get(self, call: Call) -> Wait:
        return await self._ask(
            call, Get(call.request.exec_id), lambda p: api.GetTaskResponse(process=p)
        )

    async def list(self, call: Call) -> Wait:
        ns = call.namespace
        refs = [self._ref(ns, cid) for (n, cid) in sorted(self.live) if n == ns]

        async def wait() -> api.ListTasksResponse:
            found = []
            for ref in refs:
                try:
                    found.append(await ref.call(Get("")))
                except errdefs.NotFound:
                    continue  # deleted meanwhile
            return api.ListTasksResponse(tasks=found)

        return wait

    async def kill(self, call: Call) -> Wait:
        r: api.KillRequest = call.request
        # 0 is the shim's default (SIGTERM); beyond SIGRTMAX no signal exists
        if not 0 <= r.signal <= signal.SIGRTMAX:
            raise errdefs.InvalidArgument(
                f"invalid signal {r.signal}: signals are 1 to {int(signal.SIGRTMAX)}"
            )
        return await self._ask(call, Kill(r.exec_id, r.signal, r.all))

    async def exec(self, call: Call) -> Wait:
        r: api.ExecProcessRequest = call.request
        if not r.exec_id:
            raise errdefs.InvalidArgument("exec id must not be empty")
        identifiers.validate(r.exec_id)
        if r.spec is None:
            raise errdefs.InvalidArgument("exec: a process spec is required")
        return await self._ask(call, Exec(r))

    async def resize_pty(self, call: Call) -> Wait:
        r: api.ResizePtyRequest = call.request
        fields = {"exec_id": r.exec_id, "width": r.width, "height": r.height}
        return await self._ask(call, ShimCall("resize_pty", fields))

    async def close_io(self, call: Call) -> Wait:
        r: api.CloseIORequest = call.request
        return await self._ask(call, ShimCall("close_io", {"exec_id": r.exec_id, "stdin": r.stdin}))

    async def pause(self, call: Call) -> Wait:
        return await self._ask(call, Pause(resume=False))

    async def resume(self, call: Call) -> Wait:
        return await self._ask(call, Pause(resume=True))

    async def list_pids(self, call: Call) -> Wait:
        def reply(r: Any) -> api.ListPidsResponse:
            processes = []
            for p in r.get("processes", []):
                info = p.get("info")
                value = None if not info else AnyValue(type_url="", value=info)
                processes.append(api.ProcessInfo(pid=int(p["pid"]), info=value))
            return api.ListPidsResponse(processes=processes)

        return await self._ask(call, ShimCall("pids", {}), reply)

    async def update(self, call: Call) -> Wait:
        r: api.UpdateTaskRequest = call.request
        fields = {"resources": api.any_map(r.resources), "annotations": dict(r.annotations)}
        return await self._ask(call, ShimCall("update", fields))

    async def metrics(self, call: Call) -> Wait:
        ns = call.namespace
        match = filters.parse_all(call.request.filters)
        refs = [
            (cid, self._ref(ns, cid))
            for (n, cid) in sorted(self.live)
            if n == ns and match.match(filters.adapt({"id": cid}))
        ]

        async def wait() -> api.MetricsResponse:
            out = []
            for cid, ref in refs:
                try:
                    stats = (await ref.call(ShimCall("stats", {})))["stats"]
                except (errdefs.NotFound, errdefs.Unavailable):
                    continue
                data = AnyValue(type_url=str(stats.get("type_url", "")), value=stats.get("value"))
                out.append(api.Metric(timestamp=datetime.now(UTC), id=cid, data=data))
            return api.MetricsResponse(metrics=out)

        return wait

    async def wait(self, call: Call) -> Wait:
        return await self._ask(call, WaitExit(call.request.exec_id), lambda r: r)

    # -- recovery --------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild task actors from the state directory (before serving calls)."""
        loaded = await self._thread(load_existing, self.state, self.root)
        for task in loaded:
            ns, cid = task.bundle.namespace, task.bundle.id
            if task.state == "live" and task.shim is not None:
                address = task.shim.address
                task.shim.close()
                ref = await self.tasks.ref((ns, cid))
                try:
                    await ref.call(
                        Attach(task.bundle, address, task.pid, ("", "", "", False), [], True)
                    )
                except errdefs.ErrdefsError as exc:
                    log.warning("task %s/%s: cannot recover: %s", ns, cid, exc)
                continue
            if task.known:
                await self._ended_while_down(ns, cid, task.pid, task.exit_status, task.exited_at)

    async def _ended_while_down(
        self, ns: str, cid: str, pid: int, status: int, at: datetime | None
    ) -> None:
        """Publish the exit and delete of a task whose shim died or whose delete
        was cut short while the daemon was down (deduplicated: a task whose
        cleanup had published them publishes nothing new)."""
        at = at or datetime.now(UTC)
        exit_event = {
            "container_id": cid,
            "id": cid,
            "pid": pid,
            "exit_status": status,
            "exited_at": at,
        }
        delete_event = {**exit_event, "id": ""}
        key = exit_key(ns, cid, "", pid, at)

        def write(tx: Transaction) -> None:
            events.publish(tx, ns, "/tasks/exit", exit_event, dedup_key=key)
            events.publish(tx, ns, "/tasks/delete", delete_event, dedup_key=key + "/delete")

        await self.metadata.call(Update(write))
