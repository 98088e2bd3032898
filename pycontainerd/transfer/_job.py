"""What every transfer job shares: the stores it works on, its lease, progress.

The stores are synchronous (sqlite transactions, file IO); a job is async and
hands each store call to a worker thread through :meth:`Job.run`. A job runs
under one lease from start to end — the caller's, or one it creates with
containerd's 24 h expiry and deletes when it ends, however it ends::

    async with open_job(stores, progress=report) as job:
        info = await job.run(job.content.info, digest)   # held by job.lease
        ...                                              # image record created last
    # lease deleted (a job's own): what no image references is garbage now
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.api.transfer import Progress
from pycontainerd.api.types import Descriptor as ApiDescriptor
from pycontainerd.content import Info
from pycontainerd.diff import WalkingDiffer
from pycontainerd.images import Descriptor
from pycontainerd.metadata import (
    ContentStore,
    NamespacedSnapshotter,
    NamespacedWriter,
    Queryable,
    Runner,
    Transaction,
    gc,
    tables,
)
from pycontainerd.metadata.tables.images import ImageRecord

P = ParamSpec("P")
T = TypeVar("T")

ProgressFn = Callable[[Progress], Awaitable[None]]
"""Receives each progress item; a slow receiver slows the job (backpressure)."""

LEASE_EXPIRY = timedelta(hours=24)
"""containerd's default for the lease of a pull (``leases.WithExpiration(24 * time.Hour)``)."""

DEFAULT_SNAPSHOTTER = "overlayfs"


async def _discard(_: Progress) -> None:
    return None


@attrs.frozen(kw_only=True)
class Stores:
    """The namespace's stores, as a job needs them.

    Args:
        namespace: whose content, snapshots and images.
        runner: reaches the metadata database (images, leases).
        content: the content store bound to a lease (``None``: no lease).
        snapshotter: the namespaced snapshotter called ``name`` bound to a lease.
        differ: applies layers onto snapshot mounts.
        limiter: bounds the worker threads (``None``: trio's default).
    """

    namespace: str
    runner: Runner
    content: Callable[[str | None], ContentStore]
    snapshotter: Callable[[str, str | None], NamespacedSnapshotter]
    differ: WalkingDiffer
    limiter: trio.CapacityLimiter | None = None


def commit_bytes(
    content: ContentStore, ref: str, desc: Descriptor, data: bytes, labels: dict[str, str]
) -> None:
    """Commit a blob already in memory as ``desc``; one the namespace has is left as it is.

    Raises:
        errdefs.FailedPrecondition: ``data`` is not ``desc``'s size or digest.
        errdefs.Unavailable: another writer holds ``ref``.
    """
    try:
        writer = content.writer(ref, desc.size, desc.digest)
    except errdefs.AlreadyExists:
        return
    try:
        if writer.status().offset:
            writer.truncate(0)
        writer.write(data)
        writer.commit(desc.size, desc.digest, labels)
    except errdefs.AlreadyExists:
        pass
    finally:
        writer.close()


class Job:
    """One transfer under one lease (made by :func:`open_job`)."""

    def __init__(self, stores: Stores, lease: str, progress: ProgressFn) -> None:
        self.stores = stores
        self.lease = lease
        self.content = stores.content(lease)
        self._progress = progress

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a worker thread (store calls block)."""
        return await trio.to_thread.run_sync(
            lambda: fn(*args, **kwargs), limiter=self.stores.limiter
        )

    def snapshotter(self, name: str) -> NamespacedSnapshotter:
        """The snapshotter ``name`` bound to this job's lease.

        Raises:
            errdefs.InvalidArgument: no such snapshotter is loaded.
        """
        return self.stores.snapshotter(name or DEFAULT_SNAPSHOTTER, self.lease)

    async def report(
        self,
        event: str,
        name: str = "",
        *,
        desc: Descriptor | None = None,
        progress: int = 0,
        total: int = 0,
        parents: tuple[str, ...] = (),
    ) -> None:
        """Send one :class:`Progress` item."""
        await self._progress(
            Progress(
                event=event,
                name=name,
                parents=list(parents),
                progress=progress,
                total=total,
                desc=None if desc is None else desc.to_api(),
            )
        )

    async def info(self, digest: str) -> Info | None:
        """The namespace's blob, or ``None`` when it does not own it."""
        try:
            return await self.run(self.content.info, digest)
        except errdefs.NotFound:
            return None

    async def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        """A small blob (manifest, index, config) from the content store.

        Raises:
            errdefs.NotFound: the namespace does not own it.
            errdefs.ResourceExhausted: it is larger than ``limit``.
        """
        if desc.size > limit:
            raise errdefs.ResourceExhausted(f"{desc.digest}: {desc.size} bytes, limit {limit}")

        def read() -> bytes:
            self.content.info(desc.digest)
            return self.content.blob_path(desc.digest).read_bytes()

        return await self.run(read)

    async def set_labels(self, digest: str, labels: dict[str, str]) -> None:
        """Set these labels on a blob, keeping its others."""
        if not labels:
            return
        info = Info(
            digest=digest,
            size=0,
            created_at=datetime.fromtimestamp(0, UTC),
            updated_at=datetime.fromtimestamp(0, UTC),
            labels=labels,
        )
        await self.run(self.content.update, info, [f"labels.{k}" for k in labels])

    async def open_writer(self, ref: str, desc: Descriptor) -> NamespacedWriter | None:
        """A writer for ``desc``'s ingest, or ``None`` once the namespace owns the blob.

        While another job holds the ref (the same blob pulled twice at once)
        this waits, as containerd's ``content.OpenWriter`` does, and reports
        ``waiting`` once.
        """
        delay, reported = 0.05, False
        while True:
            if await self.info(desc.digest) is not None:
                return None
            try:
                return await self.run(self.content.writer, ref, desc.size, desc.digest)
            except errdefs.AlreadyExists:
                return None
            except errdefs.Unavailable:
                if not reported:
                    await self.report("waiting", ref, desc=desc, total=desc.size)
                    reported = True
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def write_blob(
        self, ref: str, desc: Descriptor, data: bytes, labels: dict[str, str]
    ) -> None:
        """Commit ``data`` as ``desc`` with ``labels`` (kept if the namespace has it).

        Raises:
            errdefs.FailedPrecondition: ``data`` is not ``desc``'s size or digest.
        """

        delay = 0.05
        while True:
            try:
                await self.run(commit_bytes, self.content, ref, desc, data, labels)
                return
            except errdefs.Unavailable:  # another job writes it: wait for its commit
                if await self.info(desc.digest) is not None:
                    return
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def save_image(
        self, name: str, target: Descriptor, labels: dict[str, str] | None = None
    ) -> ImageRecord:
        """Create the image ``name``, or point the existing one at ``target``.

        containerd's ``ImageStore.Store``: create, and on ``AlreadyExists``
        update the target (and the given labels). Reports ``saved``.

        Raises:
            errdefs.InvalidArgument: an invalid name or label.
        """
        ns, api_target = self.stores.namespace, _api_descriptor(target)
        values = dict(labels or {})

        def store(tx: Transaction) -> ImageRecord:
            try:
                return tables.images.create(tx, ns, name, api_target, values)
            except errdefs.AlreadyExists:
                paths = ["target", *(f"labels.{k}" for k in values)]
                return tables.images.update(tx, ns, name, api_target, values, paths)

        rec = await self.run(self.stores.runner.update, store)
        await self.report("saved", name, desc=target)
        return rec

    async def get_image(self, name: str) -> ImageRecord:
        """The image ``name`` of the namespace.

        Raises:
            errdefs.NotFound: no such image.
        """
        ns = self.stores.namespace
        rec: ImageRecord = await self.run(
            self.stores.runner.view, lambda q: tables.images.get(q, ns, name)
        )
        return rec


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out


@contextlib.asynccontextmanager
async def open_workers() -> AsyncIterator[trio.Nursery]:
    """A nursery for a job's parallel steps that fails with the first real error.

    A failing worker cancels its siblings; the caller sees that worker's
    error (a domain error first), not a group of it and their cancellations.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = [e for e in _leaves(group) if not isinstance(e, trio.Cancelled)]
        domain = [e for e in leaves if isinstance(e, errdefs.ErrdefsError)]
        if domain or leaves:
            raise (domain or leaves)[0] from None
        raise


def _api_descriptor(desc: Descriptor) -> ApiDescriptor:
    return desc.to_api()


def extract_key(chain_id: str) -> str:
    """containerd's unpack key: ``extract-<nanos>-<rand> <chainID>``."""
    return f"extract-{time.time_ns()}-{secrets.token_urlsafe(6)} {chain_id}"


def _expiry() -> str:
    return (datetime.now(UTC) + LEASE_EXPIRY).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.asynccontextmanager
async def open_job(
    stores: Stores, *, lease: str | None = None, progress: ProgressFn | None = None
) -> AsyncIterator[Job]:
    """A :class:`Job` under ``lease``, or under a lease of its own.

    Its own lease carries ``containerd.io/gc.expire`` (24 h) and is deleted
    when the block ends, even when cancelled: what the job wrote and no image
    references then goes at the next collection.

    Raises:
        errdefs.NotFound: ``lease`` does not exist.
    """
    ns, runner = stores.namespace, stores.runner
    limiter = stores.limiter
    own = lease is None
    if lease is None:
        new_id = f"transfer-{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}"
        labels = {gc.EXPIRE_LABEL: _expiry()}

        def create(tx: Transaction) -> str:
            return tables.leases.create(tx, ns, new_id, labels).id

        lease = await trio.to_thread.run_sync(runner.update, create, limiter=limiter)
    else:

        def check(q: Queryable) -> None:
            tables.leases.get(q, ns, lease)

        await trio.to_thread.run_sync(runner.view, check, limiter=limiter)
    try:
        yield Job(stores, lease, progress or _discard)
    finally:
        if own:
            owned = lease

            def delete(tx: Transaction) -> None:
                with contextlib.suppress(errdefs.NotFound):
                    tables.leases.delete(tx, ns, owned)

            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(runner.update, delete, limiter=limiter)
