"""The local content store: containerd's ``content/local`` layout and semantics.

No actors, no RPC: the daemon's content actors call it from worker threads.

    <root>/blobs/sha256/<hex>                  committed, read-only blobs
    <root>/ingest/<sha256(ref)>/{ref,data,total,startedat,updatedat}

A :class:`Writer` holds its ``ref`` locked in this process (a second writer
gets ``Unavailable``); closing it keeps the ingest, so a later writer for the
same ref resumes at its offset, also after a crash (the data file is hashed
again). ``commit`` verifies size and digest, then renames into place.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs

from pycontainerd.api import errdefs

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def check_digest(digest: str) -> str:
    """The hex of a ``sha256:<hex>`` digest.

    Raises:
        errdefs.InvalidArgument: not a sha256 digest.
    """
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise errdefs.InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    return digest[7:]


@attrs.frozen(kw_only=True)
class Info:
    digest: str
    size: int
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class Status:
    ref: str
    offset: int
    total: int
    started_at: datetime
    updated_at: datetime
    expected: str = ""


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


class LocalStore:
    """Blobs and ingests under ``root`` (``io.containerd.content.v1.content``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "ingest").mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, datetime] = {}
        self._guard = threading.Lock()

    # -- paths ---------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest)

    def ingest_path(self, ref: str) -> Path:
        return self.root / "ingest" / hashlib.sha256(ref.encode()).hexdigest()

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
        )

    def read_at(self, digest: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (random access)."""
        if offset < 0 or size < 0:
            raise errdefs.InvalidArgument("offset and size must be >= 0")
        try:
            with self.blob_path(digest).open("rb") as f:
                f.seek(offset)
                return f.read(size)
        except FileNotFoundError:
            raise errdefs.NotFound(f"content {digest}: not found") from None

    def walk(self) -> Iterator[Info]:
        for path in sorted((self.root / "blobs" / "sha256").iterdir()):
            digest = f"sha256:{path.name}"
            if _DIGEST.match(digest):
                try:
                    yield self.info(digest)
                except errdefs.NotFound:
                    continue

    def delete(self, digest: str) -> None:
        try:
            self.blob_path(digest).unlink()
        except FileNotFoundError:
            raise errdefs.NotFound(f"content {digest}: not found") from None

    # -- ingests ---------------------------------------------------------------

    def status(self, ref: str) -> Status:
        d = self.ingest_path(ref)
        try:
            stored = (d / "ref").read_text()
            size = (d / "data").stat().st_size
        except FileNotFoundError:
            raise errdefs.NotFound(f"ingest {ref!r}: not found") from None
        total = (d / "total").read_text().strip() if (d / "total").exists() else "0"
        updated = _read_time(d / "updatedat")
        mtime = datetime.fromtimestamp((d / "data").stat().st_mtime, UTC)
        return Status(
            ref=stored,
            offset=size,
            total=int(total or 0),
            started_at=_read_time(d / "startedat"),
            updated_at=max(updated, mtime),
        )

    def list_statuses(self) -> list[Status]:
        out = []
        for d in sorted((self.root / "ingest").iterdir()):
            try:
                out.append(self.status((d / "ref").read_text()))
            except (errdefs.NotFound, FileNotFoundError):
                continue
        return out

    def abort(self, ref: str) -> None:
        d = self.ingest_path(ref)
        if not d.exists():
            raise errdefs.NotFound(f"ingest {ref!r}: not found")
        shutil.rmtree(d)

    def writer(self, ref: str, total: int = 0, expected: str = "") -> Writer:
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
            return Writer(self, ref, total, expected)
        except BaseException:
            self._unlock(ref)
            raise

    def _unlock(self, ref: str) -> None:
        with self._guard:
            self._locks.pop(ref, None)


class Writer:
    """One open ingest; see :meth:`LocalStore.writer`."""

    def __init__(self, store: LocalStore, ref: str, total: int, expected: str) -> None:
        self._store = store
        self.ref = ref
        self.expected = expected
        self._dir = store.ingest_path(ref)
        self._hash = hashlib.sha256()
        self._closed = False
        data = self._dir / "data"
        if self._dir.exists() and data.exists():
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
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    self._hash.update(chunk)
            self.started_at = _read_time(self._dir / "startedat")
        else:
            self._dir.mkdir(parents=True, exist_ok=True)
            (self._dir / "ref").write_text(ref)
            now = _now()
            _write_atomic(self._dir / "startedat", now.isoformat())
            _write_atomic(self._dir / "updatedat", now.isoformat())
            if total > 0:
                _write_atomic(self._dir / "total", str(total))
            data.touch()
            self.total = total
            self.started_at = now
        self._file = data.open("ab")
        self.offset = self._file.tell()
        self.updated_at = _now()

    def write(self, data: bytes) -> int:
        self._check_open()
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        self.updated_at = _now()
        return len(data)

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
        self._file.truncate(0)
        self._file.seek(0)
        self._hash = hashlib.sha256()
        self.offset = 0

    def commit(self, size: int = 0, expected: str = "") -> str:
        """Verify and move the data into ``blobs/``; the ref is unlocked either way.

        Raises:
            errdefs.FailedPrecondition: size or digest differ from what was written.
            errdefs.AlreadyExists: the blob exists (the ingest is removed).
        """
        self._check_open()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
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
            os.replace(self._dir / "data", target)
            os.chmod(target, 0o444)
            shutil.rmtree(self._dir, ignore_errors=True)
            return actual
        finally:
            self._finish()

    def close(self) -> None:
        """Keep the ingest for a later resume and unlock the ref."""
        if self._closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._dir.exists():
                _write_atomic(self._dir / "updatedat", self.updated_at.isoformat())
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            if not self._file.closed:
                self._file.close()
            self._store._unlock(self.ref)

    def _check_open(self) -> None:
        if self._closed:
            raise errdefs.FailedPrecondition(f"ingest {self.ref!r}: writer is closed")

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
