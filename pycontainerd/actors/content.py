"""The ``content.*`` service and its ingest actors.

containerd's ``Content.Write`` is a bidirectional stream; here it is unrolled
into ``content.write`` requests that a client pipelines on one connection. An
:class:`IngestActor` per ``(namespace, ref)`` owns the open writer and the
connection holding the ref::

    conn A ── content.write(ref=r, offset=0, data) ──▶ ingests/<ns>/r ── writer (thread)
    conn A ── content.write(ref=r, offset=n, data) ──▶   (same mailbox, in order)
    conn B ── content.write(ref=r) ──────────────────▶   Unavailable "ref r locked"
    conn A closes ─── Release ───────────────────────▶   writer closed, ingest kept

Writes and commits run in worker threads (hashing, fsync); the actor handles
one message at a time, so a connection's pipelined writes land in order. Reads
(``info``, ``list``) go straight to the metadata actor; ``content.read``
streams 1 MiB chunks read with ``pread`` in worker threads.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from pycontainerd.api import content as api
from pycontainerd.api import errdefs
from pycontainerd.api.convert import Plain
from pycontainerd.api.rpc import Call, Peer, Wait
from pycontainerd.api.types import Empty
from pycontainerd.content import CHUNK, Info, LocalStore, Status, check_digest
from pycontainerd.metadata import ContentStore, NamespacedWriter, Transaction, tables
from pycontainerd.supervisor import Actor, ActorRef, KeyedSupervisor, MailboxFull

from ._service import ask
from .gc import notify
from .metadata import ActorRunner, Update, View

EPOCH = datetime.fromtimestamp(0, UTC)


def info_to_api(info: Info) -> api.ContentInfo:
    return api.ContentInfo(
        digest=info.digest,
        size=info.size,
        created_at=info.created_at,
        updated_at=info.updated_at,
        labels=dict(info.labels),
    )


def status_to_api(st: Status) -> api.ContentStatus:
    return api.ContentStatus(
        started_at=st.started_at,
        updated_at=st.updated_at,
        ref=st.ref,
        offset=st.offset,
        total=st.total,
        expected=st.expected,
    )


@attrs.frozen
class Write:
    peer: Peer
    request: api.WriteContentRequest
    lease: str | None


@attrs.frozen
class Release:
    """The connection ``peer_id`` closed: unlock the ref if it holds it."""

    peer_id: int


@attrs.frozen
class Abort:
    lease: str | None


@attrs.frozen(kw_only=True)
class ContentConfig:
    shared: bool = True
    """containerd's ``content_sharing_policy``: ``shared`` (True) or ``isolated``."""


class IngestActor(Actor):
    """One ingest: its open writer and the connection that holds the ref."""

    def __init__(self, key: tuple[str, str], service: ContentService) -> None:
        super().__init__(name=f"{key[0]}/{key[1]}", mailbox_size=64)
        self.namespace, self.ref = key
        self._service = service
        self._writer: NamespacedWriter | None = None
        self._owner: int | None = None
        self._owner_gone = False

    def busy(self) -> bool:
        return self._writer is not None

    def __repr__(self) -> str:
        return (
            f"<IngestActor ns={self.namespace!r} ref={self.ref!r} "
            f"{self.statistics_repr()} owner={self._owner}>"
        )

    async def _close(self) -> None:
        writer, self._writer, self._owner = self._writer, None, None
        if writer is not None:
            await self.run_sync_in_thread(writer.close)

    async def terminate(self, reason: BaseException | None) -> None:
        await self._close()

    async def _open(self, msg: Write) -> NamespacedWriter:
        req = msg.request
        store = self._service.store(self.namespace, msg.lease)
        writer = await self.run_sync_in_thread(store.writer, self.ref, req.total, req.expected)
        self._writer, self._owner, self._owner_gone = writer, msg.peer.id, False
        peer_id, me = msg.peer.id, self._service.ingests.get((self.namespace, self.ref))

        def on_close() -> None:
            if self._owner == peer_id:
                self._owner_gone = True
                if me is not None:
                    # if the mailbox is full, the next message sees _owner_gone
                    with contextlib.suppress(MailboxFull, errdefs.ErrdefsError):
                        me.send_nowait(Release(peer_id))

        msg.peer.on_close(on_close)
        return writer

    async def on_write(self, msg: Write) -> api.WriteContentResponse:
        req = msg.request
        if self._owner_gone:
            await self._close()
        if self._owner is not None and self._owner != msg.peer.id:
            raise errdefs.Unavailable(f"ref {self.ref} locked by another connection")
        try:
            return await self._write(msg)
        except BaseException:
            if req.action == "commit" or self._writer is None:
                await self._close()  # as containerd's stream ends: unlock, keep the ingest
            raise

    async def _write(self, msg: Write) -> api.WriteContentResponse:
        req = msg.request
        writer = self._writer or await self._open(msg)
        if (
            req.expected
            and req.expected != writer.status().expected
            and await self._service.owns(self.namespace, req.expected)
        ):
            await self._close()
            await self.run_sync_in_thread(self._service.abort, self.namespace, self.ref)
            raise errdefs.AlreadyExists(f"content {req.expected}: already exists")
        run = self.run_sync_in_thread
        if req.action == "stat":
            st = writer.status()
            return self._response(req.action, st, writer.digest(), req.total)
        offset = writer.status().offset
        if req.offset > 0 and req.offset != offset:
            raise errdefs.OutOfRange(f"write @{req.offset} must occur at current offset {offset}")
        if req.offset == 0 and offset > 0:
            await run(writer.truncate, 0)
        if req.data:
            n = await run(writer.write, req.data)
            if n != len(req.data):
                raise errdefs.DataLoss(f"wrote {n} of {len(req.data)} bytes")
        if req.action == "commit":
            st = writer.status()
            digest = await run(writer.commit, req.total, req.expected, req.labels)
            self._writer = self._owner = None
            self._service.mutated()
            return self._response(req.action, st, digest, req.total)
        return self._response(req.action, writer.status(), "", req.total)

    @staticmethod
    def _response(action: str, st: Status, digest: str, total: int) -> api.WriteContentResponse:
        return api.WriteContentResponse(
            action=action,
            started_at=st.started_at,
            updated_at=st.updated_at,
            offset=st.offset,
            total=total or st.total,
            digest=digest,
        )

    async def on_release(self, msg: Release) -> None:
        if self._owner == msg.peer_id:
            await self._close()

    async def on_abort(self, msg: Abort) -> None:
        await self._close()
        await self.run_sync_in_thread(self._service.abort, self.namespace, self.ref, msg.lease)

    handlers = {Write: on_write, Release: on_release, Abort: on_abort}


class ContentService:
    """containerd's Content service over the namespaced content store."""

    def __init__(
        self,
        metadata: ActorRef,
        backend: LocalStore,
        config: ContentConfig,
        gc: ActorRef | None = None,
    ) -> None:
        self.metadata = metadata
        self.backend = backend
        self.config = config
        self.gc = gc
        self.runner = ActorRunner(metadata)
        self.ingests: KeyedSupervisor[tuple[str, str]] = KeyedSupervisor(
            "ingests", lambda key: IngestActor(key, self), idle_timeout=30.0
        )

    def store(self, namespace: str, lease: str | None = None) -> ContentStore:
        return ContentStore(
            self.runner, self.backend, namespace, lease=lease, shared=self.config.shared
        )

    def abort(self, namespace: str, ref: str, lease: str | None = None) -> None:
        self.store(namespace, lease).abort(ref)

    async def owns(self, namespace: str, digest: str) -> bool:
        result: bool = await self.metadata.call(
            View(lambda db: tables.content.has_blob(db, namespace, digest))
        )
        return result

    def mutated(self, dirty: bool = False) -> None:
        notify(self.gc, dirty=dirty)

    def methods(self) -> dict[str, Any]:
        return {
            "content.info": self.info,
            "content.update": self.update,
            "content.list": self.list,
            "content.delete": self.delete,
            "content.read": self.read,
            "content.status": self.status,
            "content.list_statuses": self.list_statuses,
            "content.write": self.write,
            "content.abort": self.abort_call,
        }

    async def info(self, call: Call) -> Wait:
        ns, digest = call.namespace, call.request.digest
        return await ask(
            self.metadata,
            View(lambda db: tables.content.get_blob(db, ns, digest)),
            lambda info: api.InfoResponse(info=info_to_api(info)),
        )

    async def update(self, call: Call) -> Wait:
        req: api.UpdateContentRequest = call.request
        ns = call.namespace
        paths = req.update_mask.paths if req.update_mask is not None else []
        info = Info(
            digest=req.info.digest,
            size=0,
            created_at=req.info.created_at or EPOCH,
            updated_at=req.info.updated_at or EPOCH,
            labels=req.info.labels,
        )

        def write(tx: Transaction) -> Info:
            return tables.content.update_blob(tx, ns, info, paths)

        return await ask(
            self.metadata, Update(write), lambda i: api.UpdateContentResponse(info=info_to_api(i))
        )

    async def list(self, call: Call) -> Wait:
        ns, filters_ = call.namespace, call.request.filters
        return await ask(
            self.metadata,
            View(lambda db: tables.content.list_blobs_wire(db, ns, filters_)),
            lambda infos: Plain({"info": infos}),
        )

    async def delete(self, call: Call) -> Wait:
        ns, digest = call.namespace, call.request.digest

        def write(tx: Transaction) -> None:
            tables.content.delete_blob(tx, ns, digest)

        pending = await self.metadata.request(Update(write))

        async def wait() -> Empty:
            await pending.wait()
            self.mutated(dirty=True)
            return Empty()

        return wait

    async def read(self, call: Call) -> Wait:
        req: api.ReadContentRequest = call.request
        ns = call.namespace
        check_digest(req.digest)
        pending = await self.metadata.request(
            View(lambda db: tables.content.get_blob(db, ns, req.digest))
        )
        stream = call.stream
        assert stream is not None

        async def wait() -> Empty:
            info: Info = await pending.wait()
            offset = max(req.offset, 0)
            if offset > info.size:
                raise errdefs.OutOfRange(f"read @{offset} is past the end of {info.size} bytes")
            end = info.size if req.size <= 0 else min(info.size, offset + req.size)
            reader = await trio.to_thread.run_sync(self.backend.reader_at, req.digest)
            try:
                while offset < end:
                    data = await trio.to_thread.run_sync(
                        reader.read_at, offset, min(CHUNK, end - offset)
                    )
                    if not data:
                        raise errdefs.DataLoss(f"content {req.digest}: ended at {offset}")
                    await stream.send(api.ReadContentResponse(offset=offset, data=data))
                    offset += len(data)
            finally:
                reader.close()
            return Empty()

        return wait

    async def status(self, call: Call) -> Wait:
        store, ref = self.store(call.namespace), call.request.ref

        async def wait() -> api.StatusResponse:
            st = await trio.to_thread.run_sync(store.status, ref)
            return api.StatusResponse(status=status_to_api(st))

        return wait

    async def list_statuses(self, call: Call) -> Wait:
        store, filters_ = self.store(call.namespace), call.request.filters

        async def wait() -> api.ListStatusesResponse:
            sts = await trio.to_thread.run_sync(store.list_statuses, filters_)
            return api.ListStatusesResponse(statuses=[status_to_api(s) for s in sts])

        return wait

    async def write(self, call: Call) -> Wait:
        req: api.WriteContentRequest = call.request
        if not req.ref:
            raise errdefs.InvalidArgument("content.write: ref is required")
        if req.action not in api.WRITE_ACTIONS:
            raise errdefs.InvalidArgument(
                f"content.write: action {req.action!r}: expected stat, write or commit"
            )
        if req.expected:
            check_digest(req.expected)
        if req.offset < 0 or req.total < 0:
            raise errdefs.InvalidArgument("content.write: offset and total must be >= 0")
        pending = await self.ingests.request(
            (call.namespace, req.ref), Write(call.peer, req, call.meta.lease)
        )
        return pending.wait

    async def abort_call(self, call: Call) -> Wait:
        ref = call.request.ref
        if not ref:
            raise errdefs.InvalidArgument("content.abort: ref is required")
        pending = await self.ingests.request((call.namespace, ref), Abort(call.meta.lease))

        async def wait() -> Empty:
            await pending.wait()
            return Empty()

        return wait
