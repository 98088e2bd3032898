"""The content store's vocabulary and interfaces (containerd ``content/content.go``).

Content is addressed by its ``digest`` (``sha256:<hex>``): a committed blob is
immutable and stored once. New content arrives through an **ingest**, named by
a client-chosen ``ref``: a :class:`Writer` appends bytes to it (resumable at
its ``offset`` after a disconnect or a crash) and ``commit`` verifies size and
digest before the blob becomes visible. A ``ref`` has one writer at a time; a
second one gets ``Unavailable``.

    w = store.writer("layer-1", total=len(data), expected=digest)
    w.write(data[:n])                # ... disconnect: status("layer-1").offset == n
    w = store.writer("layer-1")      # resume, w.status().offset == n
    w.write(data[n:])
    w.commit(len(data), digest, labels={"containerd.io/gc.root": now})
    with store.reader_at(digest) as r:
        r.read_at(0, 16)

The interfaces are small and composed, as containerd's: :class:`Provider`
(reads), :class:`Ingester` (writers), :class:`IngestManager` (ingests in
progress), :class:`Manager` (committed blobs), and :class:`Store`, all of
them. The local store, the namespaced metadata store and the client proxy each
satisfy :class:`Store`, and one conformance suite checks all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pycontainerd.api.content_values import Info as Info
from pycontainerd.api.content_values import Status as Status


class ReaderAt(Protocol):
    """Random access to one blob; close it (or use ``with``) when done."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the blob)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> ReaderAt: ...

    def __exit__(self, *exc: object) -> None: ...


class Writer(Protocol):
    """One open ingest (see the module docstring)."""

    ref: str

    def write(self, data: bytes) -> int: ...

    def digest(self) -> str:
        """The digest of the bytes written so far."""
        ...

    def status(self) -> Status: ...

    def truncate(self, size: int) -> None:
        """Only ``0`` is supported: start the ingest over."""
        ...

    def commit(
        self, size: int = 0, expected: str = "", labels: Mapping[str, str] | None = None
    ) -> str:
        """Verify and make the blob visible; returns its digest.

        Raises:
            errdefs.FailedPrecondition: ``size`` or ``expected`` differ from what
                was written; the ingest is kept.
            errdefs.AlreadyExists: the blob exists; the ingest is removed.
        """
        ...

    def close(self) -> None:
        """Unlock the ref and keep the ingest for a later resume."""
        ...

    def __enter__(self) -> Writer: ...

    def __exit__(self, *exc: object) -> None: ...


class Provider(Protocol):
    def reader_at(self, digest: str) -> ReaderAt:
        """Raises ``NotFound`` for a missing blob."""
        ...


class Ingester(Protocol):
    def writer(self, ref: str, total: int = 0, expected: str = "") -> Writer:
        """Open or resume the ingest of ``ref``.

        Raises:
            errdefs.InvalidArgument: an empty ref or a malformed digest.
            errdefs.AlreadyExists: ``expected`` is already committed.
            errdefs.Unavailable: another writer holds ``ref``.
        """
        ...


class IngestManager(Protocol):
    def status(self, ref: str) -> Status: ...

    def list_statuses(self, filters: Sequence[str] = ()) -> list[Status]:
        """Ingests in progress; filter field ``ref``."""
        ...

    def abort(self, ref: str) -> None:
        """Remove the ingest; ``NotFound`` if there is none."""
        ...


class Manager(Protocol):
    def info(self, digest: str) -> Info: ...

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """Set labels: ``labels`` or ``labels.<key>`` paths; none = replace all."""
        ...

    def walk(self, filters: Sequence[str] = ()) -> list[Info]:
        """Committed blobs; filter fields ``digest``, ``size``, ``labels.<key>``."""
        ...

    def delete(self, digest: str) -> None: ...


class Store(Manager, Provider, IngestManager, Ingester, Protocol):
    """Everything: what the conformance suite checks."""
