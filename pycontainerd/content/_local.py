"""The local content store: containerd's ``content/local`` layout and semantics.

No actors, no RPC: the daemon's content actors call it from worker threads.

    <root>/blobs/sha256/<hex>                  committed, read-only blobs
    <root>/ingest/<sha256(ref)>/{ref,data,total,startedat,updatedat}

A :class:`LocalWriter` holds its ``ref`` locked in this process (a second
writer gets ``Unavailable``); closing it keeps the ingest, so a later writer
for the same ref resumes at its offset, also after a crash (the data file is
hashed again). ``commit`` fsyncs, verifies size and digest, then renames the
data file into ``blobs/``: a blob path never holds partial or unverified bytes,
whatever moment the process dies at.

Labels are not kept by the plain store (they live in the metadata database);
give it a :class:`MemoryLabelStore` to keep them in memory, as containerd's
``NewLabeledStore`` does for its tests.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pycontainerd.api import errdefs, filters
from pycontainerd.api import labels as label_rules
from pycontainerd.api.content_values import CHUNK as CHUNK

from ._interfaces import Info, Status

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_ALGO_HEX = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def check_digest(digest: str) -> str:
    """The hex of a ``sha256:<hex>`` digest.

    Raises:
        errdefs.InvalidArgument: not an ``algo:hex`` digest, or an algorithm
            other than sha256.
    """
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        if isinstance(digest, str) and _ALGO_HEX.match(digest):
            raise errdefs.InvalidArgument(
                f"invalid digest {digest!r}: unsupported algorithm or malformed hex "
                "(expected sha256:<64 lowercase hex>)"
            )
        raise errdefs.InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    return digest[7:]


def info_fields(info: Info) -> dict[str, object]:
    """What content filters see: ``digest``, ``size``, ``labels.<key>``."""
    return {"digest": info.digest, "size": str(info.size), "labels": dict(info.labels)}


def resource_exhausted(exc: OSError, what: str) -> errdefs.ErrdefsError:
    """The domain error for a failed write: ``ResourceExhausted`` when the disk is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errdefs.ResourceExhausted(
            f"{what}: no space left on device; the ingest is kept and can be "
            "resumed once space is freed"
        )
    return errdefs.Internal(f"{what}: {exc.strerror or exc}")


class RWLock:
    """Many readers or one writer (threads): commits read, the collector writes.

    A commit holds it shared from the moment its blob lands in ``blobs/`` until
    a namespace owns it; the garbage collector holds it exclusively while it
    deletes blobs no namespace owns, so it never deletes one in between.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


class MemoryLabelStore:
    """Labels by digest, in memory (containerd's test label store)."""

    def __init__(self) -> None:
        self._labels: dict[str, dict[str, str]] = {}
        self._guard = threading.Lock()

    def get(self, digest: str) -> dict[str, str]:
        with self._guard:
            return dict(self._labels.get(digest, {}))

    def set(self, digest: str, labels: Mapping[str, str]) -> None:
        with self._guard:
            self._labels[digest] = dict(labels)

    def delete(self, digest: str) -> None:
        with self._guard:
            self._labels.pop(digest, None)


def _now() -> datetime:
    return datetime.now(UTC)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_time(path: Path) -> datetime:
    try:
        return datetime.fromisoformat(path.read_text().strip())
    except (OSError, ValueError):
        return datetime.fromtimestamp(0, UTC)


class FileReaderAt:
    """A :class:`~pycontainerd.content.ReaderAt` over one blob file (``pread``)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise errdefs.InvalidArgument("offset and size must be >= 0")
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileReaderAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


ROOT_MODE = 0o700
"""The store's root: only root reads blobs and ingests."""


class LocalStore:
    """Blobs and ingests under ``root`` (``io.containerd.content.v1.content``)."""

    def __init__(self, root: Path, labels: MemoryLabelStore | None = None) -> None:
        self.root = Path(root)
        # Blobs are 0444 as containerd's, so the root is what keeps them (image
        # layers, configs with secrets, ingests) from other local users: 0700,
        # tightened too when an older install left it looser.
        self.root.mkdir(mode=ROOT_MODE, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o777 != ROOT_MODE:
            os.chmod(self.root, ROOT_MODE)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "ingest").mkdir(parents=True, exist_ok=True)
        self._labels = labels
        self.gc_lock = RWLock()
        self._locks: dict[str, datetime] = {}
        self._guard = threading.Lock()

    # -- paths ---------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest)

    def ingest_path(self, ref: str) -> Path:
        return self.root / "ingest" / hashlib.sha256(ref.encode()).hexdigest()

    def exists(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    # -- blobs -----------------------------------------------------------------

    def info(self, digest: str) -> Info:
        """Raises ``NotFound`` for a missing blob."""
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            raise errdefs.NotFound(f"content {digest}: not found") from None
        return Info(
            digest=digest,
            size=st.st_size,
            created_at=datetime.fromtimestamp(st.st_mtime, UTC),
            updated_at=datetime.fromtimestamp(st.st_atime, UTC),
            labels=self._labels.get(digest) if self._labels is not None else {},
        )

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """Set labels; ``FailedPrecondition`` without a label store, as containerd's."""
        if self._labels is None:
            raise errdefs.FailedPrecondition("update not supported on immutable content store")
        current = self.info(info.digest)
        merged = label_rules.apply_update(
            current.labels, info.labels, paths, what=f"content info {info.digest!r}"
        )
        self._labels.set(info.digest, merged)
        path = self.blob_path(info.digest)  # updated_at is the blob's atime
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
        return self.info(info.digest)

    def reader_at(self, digest: str) -> FileReaderAt:
        try:
            return FileReaderAt(self.blob_path(digest))
        except FileNotFoundError:
            raise errdefs.NotFound(f"content {digest}: not found") from None

    def read_at(self, digest: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (random access)."""
        with self.reader_at(digest) as r:
            return r.read_at(offset, size)

    def walk(self, filters_: Sequence[str] = ()) -> list[Info]:
        match = filters.parse_all(filters_)
        out = []
        for path in sorted((self.root / "blobs" / "sha256").iterdir()):
            digest = f"sha256:{path.name}"
            if not _DIGEST.match(digest):
                continue
            try:
                info = self.info(digest)
            except errdefs.NotFound:
                continue
            if match.match(filters.adapt(info_fields(info))):
                out.append(info)
        return out

    def delete(self, digest: str) -> None:
        try:
            self.blob_path(digest).unlink()
        except FileNotFoundError:
            raise errdefs.NotFound(f"content {digest}: not found") from None
        if self._labels is not None:
            self._labels.delete(digest)

    # -- ingests ---------------------------------------------------------------

    def status(self, ref: str) -> Status:
        d = self.ingest_path(ref)
        try:
            stored = (d / "ref").read_text()
            st = (d / "data").stat()
        except FileNotFoundError:
            raise errdefs.NotFound(f"ingest {ref!r}: not found") from None
        total = (d / "total").read_text().strip() if (d / "total").exists() else "0"
        mtime = datetime.fromtimestamp(st.st_mtime, UTC)
        return Status(
            ref=stored,
            offset=st.st_size,
            total=int(total or 0),
            started_at=_read_time(d / "startedat"),
            updated_at=max(_read_time(d / "updatedat"), mtime),
        )

    def list_statuses(self, filters_: Sequence[str] = ()) -> list[Status]:
        match = filters.parse_all(filters_)
        out = []
        for d in sorted((self.root / "ingest").iterdir()):
            try:
                st = self.status((d / "ref").read_text())
            except (errdefs.NotFound, FileNotFoundError):
                continue
            if match.match(filters.adapt({"ref": st.ref})):
                out.append(st)
        return out

    def abort(self, ref: str) -> None:
        d = self.ingest_path(ref)
        if not d.exists():
            raise errdefs.NotFound(f"ingest {ref!r}: not found")
        shutil.rmtree(d)

    def writer(self, ref: str, total: int = 0, expected: str = "") -> LocalWriter:
        """Open (or resume) the ingest of ``ref``.

        Raises:
            errdefs.InvalidArgument: empty ref or a bad digest.
            errdefs.AlreadyExists: ``expected`` is already committed.
            errdefs.Unavailable: another writer holds ``ref``.
            errdefs.FailedPrecondition: ``total`` differs from the ingest's.
        """
        if not ref:
            raise errdefs.InvalidArgument("ref must not be empty")
        if expected and self.blob_path(expected).exists():
            raise errdefs.AlreadyExists(f"content {expected}: already exists")
        with self._guard:
            since = self._locks.get(ref)
            if since is not None:
                raise errdefs.Unavailable(f"ref {ref} locked (since {since.isoformat()})")
            self._locks[ref] = _now()
        try:
            return LocalWriter(self, ref, total, expected)
        except BaseException:
            self._unlock(ref)
            raise

    def locked(self, ref: str) -> bool:
        """Whether a writer holds ``ref`` now."""
        with self._guard:
            return ref in self._locks

    def _unlock(self, ref: str) -> None:
        with self._guard:
            self._locks.pop(ref, None)

    def _set_labels(self, digest: str, labels: Mapping[str, str] | None) -> None:
        if self._labels is not None and labels:
            label_rules.validate_labels(labels)
            self._labels.set(digest, labels)


class LocalWriter:
    """One open ingest; see :meth:`LocalStore.writer`."""

    def __init__(self, store: LocalStore, ref: str, total: int, expected: str) -> None:
        self._store = store
        self.ref = ref
        self.expected = expected
        self._dir = store.ingest_path(ref)
        self._hash = hashlib.sha256()
        self._closed = False
        data = self._dir / "data"
        if self._dir.exists() and data.exists() and (self._dir / "ref").exists():
            stored = (
                (self._dir / "total").read_text().strip() if (self._dir / "total").exists() else ""
            )
            old_total = int(stored or 0)
            if total and old_total and total != old_total:
                raise errdefs.FailedPrecondition(
                    f"ingest {ref!r}: total {total} differs from the ingest's {old_total}"
                )
            self.total = total or old_total
            with data.open("rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    self._hash.update(chunk)
            self.started_at = _read_time(self._dir / "startedat")
        else:
            try:
                if self._dir.exists():  # a torn ingest (crash while creating it)
                    shutil.rmtree(self._dir)
                self._dir.mkdir(parents=True)
                now = _now()
                _write_atomic(self._dir / "startedat", now.isoformat())
                _write_atomic(self._dir / "updatedat", now.isoformat())
                if total > 0:
                    _write_atomic(self._dir / "total", str(total))
                data.touch()
                _write_atomic(self._dir / "ref", ref)  # last: marks the ingest complete
            except OSError as exc:
                shutil.rmtree(self._dir, ignore_errors=True)
                raise resource_exhausted(exc, f"ingest {ref!r}") from None
            self.total = total
            self.started_at = now
        self._fd = os.open(data, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self.offset = os.fstat(self._fd).st_size
        self.updated_at = _now()

    def write(self, data: bytes) -> int:
        """Append ``data``; on a failed write nothing of it stays (resume from ``offset``).

        Raises:
            errdefs.ResourceExhausted: the disk is full.
        """
        self._check_open()
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            os.ftruncate(self._fd, self.offset)  # drop the partial write: hash stays true
            raise resource_exhausted(exc, f"ingest {self.ref!r}") from None
        self._hash.update(data)
        self.offset += written
        self.updated_at = _now()
        return written

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def status(self) -> Status:
        return Status(
            ref=self.ref,
            offset=self.offset,
            total=self.total,
            started_at=self.started_at,
            updated_at=self.updated_at,
            expected=self.expected,
        )

    def truncate(self, size: int) -> None:
        """Only ``0`` is supported, as in containerd."""
        self._check_open()
        if size != 0:
            raise errdefs.InvalidArgument("truncate to a size other than 0 is not supported")
        os.ftruncate(self._fd, 0)
        self._hash = hashlib.sha256()
        self.offset = 0

    def commit(
        self, size: int = 0, expected: str = "", labels: Mapping[str, str] | None = None
    ) -> str:
        """Verify and move the data into ``blobs/``; the ref is unlocked either way.

        Raises:
            errdefs.FailedPrecondition: size or digest differ from what was
                written (the ingest is kept).
            errdefs.AlreadyExists: the blob exists (the ingest is removed).
        """
        self._check_open()
        try:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise resource_exhausted(exc, f"ingest {self.ref!r}") from None
            if size > 0 and size != self.offset:
                raise errdefs.FailedPrecondition(
                    f"unexpected commit size {self.offset}, expected {size}"
                )
            actual = self.digest()
            expected = expected or self.expected
            if expected and expected != actual:
                raise errdefs.FailedPrecondition(
                    f"unexpected commit digest {actual}, expected {expected}"
                )
            target = self._store.blob_path(actual)
            if target.exists():
                shutil.rmtree(self._dir, ignore_errors=True)
                raise errdefs.AlreadyExists(f"content {actual}: already exists")
            os.chmod(self._dir / "data", 0o444)
            os.replace(self._dir / "data", target)
            os.utime(target, None)  # created_at (mtime) and updated_at (atime): now
            shutil.rmtree(self._dir, ignore_errors=True)
            self._store._set_labels(actual, labels)
            return actual
        finally:
            self._finish()

    def close(self) -> None:
        """Keep the ingest for a later resume and unlock the ref."""
        if self._closed:
            return
        try:
            if self._dir.exists():
                os.fsync(self._fd)
                _write_atomic(self._dir / "updatedat", self.updated_at.isoformat())
        except OSError:
            pass  # the data file is what counts; its mtime stands in for updatedat
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            self._store._unlock(self.ref)

    def _check_open(self) -> None:
        if self._closed:
            raise errdefs.FailedPrecondition(f"ingest {self.ref!r}: writer is closed")

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
