"""The namespaced content store: the local store seen through the metadata
(containerd ``metadata/content.go``, ``namespacedWriter``).

Bytes live once in the :class:`~pycontainerd.content.LocalStore`; which
namespace may see them, with which labels, is metadata. A
:class:`ContentStore` is bound to one namespace (and, optionally, the lease of
the call) and reaches the database only through a :class:`Runner`:
:class:`DirectRunner` runs transactions on a :class:`Database` in the calling
thread (tests, tools); the daemon's runner sends them to its metadata actor
from a worker thread. Either way each step below is one transaction::

    writer(ref)   tx: the namespace owns ``expected``? → AlreadyExists
                      another namespace has it (shared content)? → a writer
                      pre-filled to offset == total == size, nothing to write
                      else: record the ingest, open the backend ingest
                      "<ns>/<seq>/<ref>"
    commit        backend commit (verify size and digest, rename into blobs/)
                  tx: drop the ingest record, the namespace owns the blob

Writing to a pre-filled writer first copies the stored blob into a real
ingest (containerd's ``createAndCopy``), so appending makes a new blob and
leaves the shared one intact.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import attrs

from pycontainerd.api import errdefs, filters
from pycontainerd.content import (
    CHUNK,
    FileReaderAt,
    Info,
    LocalStore,
    LocalWriter,
    Status,
    check_digest,
)

from . import gc, tables
from ._db import Database, Queryable, Transaction

T = TypeVar("T")


class Runner(Protocol):
    """Runs a function in one metadata transaction (``update``) or snapshot (``view``)."""

    def update(self, fn: Callable[[Transaction], T]) -> T: ...

    def view(self, fn: Callable[[Queryable], T]) -> T: ...


class DirectRunner:
    """A :class:`Runner` on a database owned by the caller (one thread at a time)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()

    def update(self, fn: Callable[[Transaction], T]) -> T:
        with self._lock, self.db.transaction() as tx:
            return fn(tx)

    def view(self, fn: Callable[[Queryable], T]) -> T:
        with self._lock, self.db.read() as r:
            return fn(r)


class ContentStore:
    """The content of one namespace (see the module docstring).

    Args:
        runner: reaches the metadata database.
        backend: the local store holding the bytes.
        namespace: whose content this is.
        lease: the call's lease: what this store creates is added to it.
        shared: containerd's ``content_sharing_policy = "shared"`` (default);
            ``False`` is ``"isolated"``: a blob of another namespace must be
            written again, unless that namespace is labelled
            ``containerd.io/namespace.shareable=true``.
    """

    def __init__(
        self,
        runner: Runner,
        backend: LocalStore,
        namespace: str,
        *,
        lease: str | None = None,
        shared: bool = True,
    ) -> None:
        self.runner = runner
        self.backend = backend
        self.namespace = namespace
        self.lease = lease
        self.shared = shared

    def with_namespace(self, namespace: str) -> ContentStore:
        return ContentStore(
            self.runner, self.backend, namespace, lease=self.lease, shared=self.shared
        )

    # -- Manager, Provider -------------------------------------------------------

    def info(self, digest: str) -> Info:
        return self.runner.view(lambda q: tables.content.get_blob(q, self.namespace, digest))

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        return self.runner.update(
            lambda tx: tables.content.update_blob(tx, self.namespace, info, paths)
        )

    def walk(self, filters_: Sequence[str] = ()) -> list[Info]:
        return self.runner.view(lambda q: tables.content.list_blobs(q, self.namespace, filters_))

    def delete(self, digest: str) -> None:
        """Remove from this namespace now; the bytes go at the next collection."""
        self.runner.update(lambda tx: tables.content.delete_blob(tx, self.namespace, digest))

    def reader_at(self, digest: str) -> FileReaderAt:
        self.info(digest)
        return self.backend.reader_at(digest)

    def blob_path(self, digest: str) -> Path:
        """The local file of a blob this namespace owns (``NotFound`` otherwise)."""
        self.info(digest)
        return self.backend.blob_path(digest)

    # -- IngestManager -------------------------------------------------------------

    def _ingest(self, ref: str) -> tables.content.IngestRecord:
        rec = self.runner.view(lambda q: tables.content.get_ingest(q, self.namespace, ref))
        if rec is None:
            raise errdefs.NotFound(f"ingest {ref!r}: not found")
        return rec

    def _status(self, rec: tables.content.IngestRecord) -> Status:
        try:
            return attrs.evolve(self.backend.status(rec.backend_ref), ref=rec.ref)
        except errdefs.NotFound:
            if not rec.expected:
                raise errdefs.NotFound(f"ingest {rec.ref!r}: not found") from None
        size = self.backend.info(rec.expected).size
        now = datetime.now(UTC)
        return Status(
            ref=rec.ref,
            offset=size,
            total=size,
            started_at=now,
            updated_at=now,
            expected=rec.expected,
        )

    def status(self, ref: str) -> Status:
        return self._status(self._ingest(ref))

    def list_statuses(self, filters_: Sequence[str] = ()) -> list[Status]:
        match = filters.parse_all(filters_)
        out = []
        for rec in self.runner.view(lambda q: tables.content.list_ingests(q, self.namespace)):
            if not match.match(filters.adapt({"ref": rec.ref})):
                continue
            try:
                out.append(self._status(rec))
            except errdefs.NotFound:
                continue
        return out

    def abort(self, ref: str) -> None:
        def remove(tx: Transaction) -> tables.content.IngestRecord:
            rec = tables.content.get_ingest(tx, self.namespace, ref)
            if rec is None:
                raise errdefs.NotFound(f"ingest {ref!r}: not found")
            tables.content.remove_ingest(tx, self.namespace, ref, self.lease)
            return rec

        rec = self.runner.update(remove)
        with contextlib.suppress(errdefs.NotFound):
            self.backend.abort(rec.backend_ref)

    # -- Ingester ------------------------------------------------------------------

    def writer(self, ref: str, total: int = 0, expected: str = "") -> NamespacedWriter:
        """Open or resume the ingest of ``ref`` in this namespace.

        Raises:
            errdefs.InvalidArgument: an empty ref or a malformed digest.
            errdefs.AlreadyExists: this namespace owns ``expected`` already.
            errdefs.Unavailable: another writer holds ``ref``.
            errdefs.NotFound: the call's lease does not exist.
        """
        if not ref:
            raise errdefs.InvalidArgument("ref must not be empty")
        if expected:
            check_digest(expected)
        ns = self.namespace

        def open_(tx: Transaction) -> tuple[tables.content.IngestRecord, int] | None:
            if expected and tables.content.has_blob(tx, ns, expected):
                tables.leases.hold(tx, ns, self.lease, "content", expected)
                return None
            shared_size = -1
            if (
                expected
                and self.backend.exists(expected)
                and (self.shared or tables.content.is_shareable(tx, expected))
            ):
                size = self.backend.info(expected).size
                if total in (0, size):
                    shared_size = size
            rec = tables.content.open_ingest(
                tx, ns, ref, expected if shared_size >= 0 else "", self.lease
            )
            return rec, shared_size

        opened = self.runner.update(open_)
        if opened is None:
            raise errdefs.AlreadyExists(f"content {expected}: already exists")
        rec, shared_size = opened
        if shared_size >= 0:
            return NamespacedWriter(self, rec, expected, shared_size, None)
        backend = self.backend.writer(rec.backend_ref, total=total)
        return NamespacedWriter(self, rec, expected, total, backend)


class NamespacedWriter:
    """A writer of one namespace's ingest (see :class:`ContentStore.writer`)."""

    def __init__(
        self,
        store: ContentStore,
        rec: tables.content.IngestRecord,
        expected: str,
        size: int,
        backend: LocalWriter | None,
    ) -> None:
        self._store = store
        self.ref = rec.ref
        self._bref = rec.backend_ref
        self._expected = expected
        self._size = size
        self._w = backend
        self._started = datetime.now(UTC)
        self._closed = False

    @property
    def prefilled(self) -> bool:
        """Whether this writer only links a blob another namespace stored."""
        return self._w is None

    def _create_and_copy(self, size: int) -> LocalWriter:
        store = self._store
        w = store.backend.writer(self._bref, total=self._size)
        try:
            if w.offset:
                w.truncate(0)
            if size:
                with store.backend.reader_at(self._expected) as r:
                    offset = 0
                    while offset < size:
                        chunk = r.read_at(offset, min(CHUNK, size - offset))
                        if not chunk:
                            raise errdefs.DataLoss(f"content {self._expected}: shorter than {size}")
                        w.write(chunk)
                        offset += len(chunk)
        except BaseException:
            w.close()
            raise
        ns, ref = store.namespace, self.ref
        store.runner.update(lambda tx: tables.content.set_ingest_expected(tx, ns, ref, ""))
        self._w = w
        return w

    def write(self, data: bytes) -> int:
        self._check_open()
        w = self._w if self._w is not None else self._create_and_copy(self._size)
        return w.write(data)

    def digest(self) -> str:
        return self._w.digest() if self._w is not None else self._expected

    def status(self) -> Status:
        if self._w is not None:
            return attrs.evolve(self._w.status(), ref=self.ref, expected=self._expected)
        return Status(
            ref=self.ref,
            offset=self._size,
            total=self._size,
            started_at=self._started,
            updated_at=self._started,
            expected=self._expected,
        )

    def truncate(self, size: int) -> None:
        self._check_open()
        if size != 0:
            raise errdefs.InvalidArgument("truncate to a size other than 0 is not supported")
        if self._w is not None:
            self._w.truncate(0)
        else:
            self._expected = ""
            self._create_and_copy(0)

    def commit(
        self, size: int = 0, expected: str = "", labels: Mapping[str, str] | None = None
    ) -> str:
        """Verify, store, and make this namespace own the blob.

        Raises:
            errdefs.FailedPrecondition: size or digest differ (the ingest is kept).
            errdefs.AlreadyExists: this namespace owns the blob already.
        """
        self._check_open()
        store = self._store
        if expected:
            check_digest(expected)
        store.backend.gc_lock.acquire_read()
        try:
            if self._w is None:
                if size and size != self._size:
                    raise errdefs.FailedPrecondition(
                        f"{self.ref!r} failed size validation: {self._size} != {size}"
                    )
                if expected and expected != self._expected:
                    raise errdefs.FailedPrecondition(f"{self.ref!r} unexpected digest {expected}")
                actual, size = self._expected, self._size
            else:
                offset = self._w.offset
                if size and size != offset:
                    raise errdefs.FailedPrecondition(
                        f"{self.ref!r} failed size validation: {offset} != {size}"
                    )
                size = offset
                # stored already (by another namespace): link it
                with contextlib.suppress(errdefs.AlreadyExists):
                    self._w.commit(size, expected)
                actual = self._w.digest()
            ns, ref, lease = store.namespace, self.ref, store.lease

            def link(tx: Transaction) -> bool:
                tables.content.remove_ingest(tx, ns, ref, lease)
                try:
                    tables.content.add_blob(tx, ns, actual, size, labels, lease)
                except errdefs.AlreadyExists:
                    return False
                return True

            self._closed = True
            if not store.runner.update(link):
                raise errdefs.AlreadyExists(f"content {actual}: already exists")
            return actual
        finally:
            store.backend.gc_lock.release_read()

    def close(self) -> None:
        """Keep the ingest for a later resume and unlock the ref."""
        self._closed = True
        if self._w is not None:
            self._w.close()

    def _check_open(self) -> None:
        if self._closed:
            raise errdefs.FailedPrecondition(f"ingest {self.ref!r}: writer is closed")

    def __enter__(self) -> NamespacedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def collect_garbage(
    runner: Runner,
    backend: LocalStore,
    remove_snapshots: Callable[[list[tuple[str, str, str, str]]], None] | None = None,
) -> gc.GcResult:
    """One full collection: mark and sweep the metadata, then remove the bytes.

    Blobs that no namespace owns and no ingest expects are deleted from the
    local store while holding its ``gc_lock`` exclusively, so a commit between
    its backend rename and its metadata link is never lost.
    """
    result = runner.update(gc.collect)
    for bref in result.ingests:
        if not backend.locked(bref):
            with contextlib.suppress(errdefs.NotFound):
                backend.abort(bref)
    backend.gc_lock.acquire_write()
    try:
        digests, brefs = runner.view(gc.referenced)
        for info in backend.walk():
            if info.digest not in digests:
                with contextlib.suppress(errdefs.NotFound):
                    backend.delete(info.digest)
        for st in backend.list_statuses():
            if st.ref not in brefs and not backend.locked(st.ref):
                with contextlib.suppress(errdefs.NotFound):
                    backend.abort(st.ref)
    finally:
        backend.gc_lock.release_write()
    if remove_snapshots is not None and result.snapshots:
        remove_snapshots(result.snapshots)
    return result
