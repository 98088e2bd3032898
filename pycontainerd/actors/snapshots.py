"""The ``snapshots.*`` service and its snapshot actors.

Every request names a snapshotter (a loaded ``io.containerd.snapshotter.v1``
plugin). Operations on one key are serialised by a :class:`SnapshotActor` per
``(snapshotter, namespace, key)``, started on demand under a keyed supervisor
and passivated when idle; each operation runs the
:class:`~pycontainerd.metadata.NamespacedSnapshotter` in a worker thread, which
reaches the metadata actor through an :class:`ActorRunner`::

    snapshots.prepare(sn, key=k) ──▶ snapshots/<sn>/<ns>/<k> ── thread: tx, backend, tx
    snapshots.stat(sn, key=k)    ──▶   (same mailbox: after the prepare)
    snapshots.list(sn)           ──▶ thread: metadata rows + backend walk, one reply

``commit`` is routed by its ``key`` (the active snapshot it consumes); the
new name is reserved in the metadata, so two commits to one name cannot both
win. Creations and removals are reported to the garbage collector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.api import snapshots as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import Empty
from pycontainerd.metadata import NamespacedSnapshotter
from pycontainerd.snapshots import Info, Kind, Snapshotter
from pycontainerd.supervisor import Actor, ActorRef, KeyedSupervisor, io_limiter

from .gc import notify
from .metadata import ActorRunner

EPOCH = datetime.fromtimestamp(0, UTC)

SnapshotKey = tuple[str, str, str]
"""``(snapshotter, namespace, key)``"""


def info_to_api(info: Info) -> api.SnapshotInfo:
    return api.SnapshotInfo(
        name=info.name,
        parent=info.parent,
        kind=info.kind.value,
        created_at=info.created_at,
        updated_at=info.updated_at,
        labels=dict(info.labels),
    )


def info_from_api(info: api.SnapshotInfo) -> Info:
    """An :class:`Info` from the wire (only ``name`` and ``labels`` matter to updates).

    Raises:
        errdefs.InvalidArgument: an unknown kind.
    """
    return Info(
        kind=Kind.parse(info.kind) if info.kind else Kind.ACTIVE,
        name=info.name,
        parent=info.parent,
        labels=dict(info.labels),
        created_at=info.created_at or EPOCH,
        updated_at=info.updated_at or EPOCH,
    )


@attrs.frozen
class Operation:
    """Run ``fn`` on the key's namespaced snapshotter in a worker thread."""

    fn: Callable[[NamespacedSnapshotter], Any]
    lease: str | None


class SnapshotActor(Actor):
    """Serialises the operations on one snapshot key."""

    def __init__(self, key: SnapshotKey, service: SnapshotsService) -> None:
        super().__init__(name="/".join(key), mailbox_size=64)
        self.snapshotter, self.namespace, self.key = key
        self._service = service

    async def on_operation(self, msg: Operation) -> Any:
        store = self._service.store(self.snapshotter, self.namespace, msg.lease)
        return await self.run_sync_in_thread(msg.fn, store)

    handlers = {Operation: on_operation}


class SnapshotsService:
    """containerd's Snapshots service over the namespaced snapshotters.

    Args:
        metadata: the metadata actor.
        backends: the loaded snapshotters by name.
        gc: the collector, told about creations and removals.
    """

    def __init__(
        self,
        metadata: ActorRef,
        backends: Mapping[str, Snapshotter],
        gc: ActorRef | None = None,
    ) -> None:
        self.metadata = metadata
        self.backends = dict(backends)
        self.gc = gc
        self.runner = ActorRunner(metadata)
        self.actors: KeyedSupervisor[SnapshotKey] = KeyedSupervisor(
            "snapshots", lambda key: SnapshotActor(key, self), idle_timeout=30.0
        )

    def backend(self, name: str) -> Snapshotter:
        """The snapshotter called ``name``.

        Raises:
            errdefs.InvalidArgument: empty or not loaded (containerd's words).
        """
        if not name:
            raise errdefs.InvalidArgument("snapshotter argument missing")
        backend = self.backends.get(name)
        if backend is None:
            raise errdefs.InvalidArgument(f"snapshotter not loaded: {name}")
        return backend

    def store(
        self, snapshotter: str, namespace: str, lease: str | None = None
    ) -> NamespacedSnapshotter:
        backend = self.backend(snapshotter)
        return NamespacedSnapshotter(self.runner, backend, snapshotter, namespace, lease=lease)

    def mutated(self, dirty: bool = False) -> None:
        notify(self.gc, dirty=dirty)

    def methods(self) -> dict[str, Any]:
        return {
            "snapshots.prepare": self.prepare,
            "snapshots.view": self.view,
            "snapshots.mounts": self.mounts,
            "snapshots.commit": self.commit,
            "snapshots.remove": self.remove,
            "snapshots.stat": self.stat,
            "snapshots.update": self.update,
            "snapshots.list": self.list,
            "snapshots.usage": self.usage,
            "snapshots.cleanup": self.cleanup,
        }

    async def _on_key(
        self,
        call: Call,
        key: str,
        fn: Callable[[NamespacedSnapshotter], Any],
        reply: Callable[[Any], Any],
        mutation: bool | None = None,
    ) -> Wait:
        """Enqueue ``fn`` on the key's actor; the Wait answers ``reply(result)``."""
        snapshotter: str = call.request.snapshotter
        self.backend(snapshotter)
        pending = await self.actors.request(
            (snapshotter, call.namespace, key), Operation(fn, call.meta.lease)
        )

        async def wait() -> Any:
            result = await pending.wait()
            if mutation is not None:
                self.mutated(dirty=mutation)
            return reply(result)

        return wait

    async def prepare(self, call: Call) -> Wait:
        req: api.PrepareSnapshotRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.prepare(req.key, req.parent, req.labels),
            lambda mounts: api.PrepareSnapshotResponse(mounts=mounts),
            mutation=False,
        )

    async def view(self, call: Call) -> Wait:
        req: api.ViewSnapshotRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.view(req.key, req.parent, req.labels),
            lambda mounts: api.ViewSnapshotResponse(mounts=mounts),
            mutation=False,
        )

    async def mounts(self, call: Call) -> Wait:
        req: api.MountsRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.mounts(req.key),
            lambda mounts: api.MountsResponse(mounts=mounts),
        )

    async def commit(self, call: Call) -> Wait:
        req: api.CommitSnapshotRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.commit(req.name, req.key, req.labels),
            lambda _: Empty(),
            mutation=False,
        )

    async def remove(self, call: Call) -> Wait:
        req: api.RemoveSnapshotRequest = call.request
        return await self._on_key(
            call, req.key, lambda s: s.remove(req.key), lambda _: Empty(), mutation=True
        )

    async def stat(self, call: Call) -> Wait:
        req: api.StatSnapshotRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.stat(req.key),
            lambda info: api.StatSnapshotResponse(info=info_to_api(info)),
        )

    async def update(self, call: Call) -> Wait:
        req: api.UpdateSnapshotRequest = call.request
        info = info_from_api(req.info)
        paths = req.update_mask.paths if req.update_mask is not None else []
        return await self._on_key(
            call,
            info.name,
            lambda s: s.update(info, paths),
            lambda updated: api.UpdateSnapshotResponse(info=info_to_api(updated)),
        )

    async def usage(self, call: Call) -> Wait:
        req: api.UsageRequest = call.request
        return await self._on_key(
            call,
            req.key,
            lambda s: s.usage(req.key),
            lambda u: api.UsageResponse(size=u.size, inodes=u.inodes),
        )

    async def list(self, call: Call) -> Wait:
        req: api.ListSnapshotsRequest = call.request
        store = self.store(req.snapshotter, call.namespace)

        def walk() -> list[Info]:
            return [*store.walk(req.filters)]

        async def wait() -> api.ListSnapshotsResponse:
            infos = await trio.to_thread.run_sync(walk, limiter=io_limiter())
            return api.ListSnapshotsResponse(info=[info_to_api(i) for i in infos])

        return wait

    async def cleanup(self, call: Call) -> Wait:
        req: api.CleanupRequest = call.request
        store = self.store(req.snapshotter, call.namespace)

        async def wait() -> Empty:
            await trio.to_thread.run_sync(store.cleanup, limiter=io_limiter())
            return Empty()

        return wait
