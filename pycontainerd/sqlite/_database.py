"""The sqlite database: one connection, explicit transactions, migrations at open.

What the metadata store (``meta.db``) and each snapshotter's metastore
(``metadata.db``) stand on; each brings its own :class:`Migration` list. The
daemon's metadata actor owns one :class:`Database` and is its only writer:
every change runs in ``with db.transaction() as tx:`` (one ``BEGIN IMMEDIATE``
… ``COMMIT``, rolled back on any exception), every read on the database itself
(one statement, autocommit) or in ``with db.read() as r:`` (several statements
seeing one snapshot). Calls are synchronous and short: statements are cached
prepared by the connection (``cached_statements``), so a small query costs tens
of microseconds.

Events published inside a transaction (:func:`pycontainerd.metadata.events.publish`)
are appended to the journal in that same transaction; after the commit they are
in ``tx.published`` with their sequence numbers, for the caller to fan out
live. A rolled-back transaction publishes nothing.

Errors. What sqlite raises becomes a domain error here, in one place
(:func:`store_errors`): a full disk is ``ResourceExhausted``, a broken
uniqueness constraint ``AlreadyExists``, another constraint
``FailedPrecondition``, a value sqlite cannot hold (an integer beyond int64, a
string over its size limit) ``InvalidArgument``, a lock held too long by
another process ``Unavailable``. Anything else is a bug and is raised as is.

Durability. The database runs in WAL mode with ``synchronous=NORMAL``: a
commit appends its pages to the ``-wal`` file with ``write()`` before ``COMMIT``
returns, but fsyncs only at checkpoints. Data handed to the kernel survives the
death of the process (SIGKILL, OOM kill, a crash of the daemon), so every
committed transaction is there when the daemon restarts; only a power loss or
kernel crash can lose the last few commits, and even then the database stays
consistent (WAL never corrupts on a torn write). ``FULL`` would fsync on every
commit, costing a disk flush per request for a guarantee the daemon does not
otherwise give (running containers do not survive a power loss either).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

from pycontainerd.api import errdefs

from ._migration import Migration, check_migrations, pending

BUSY_TIMEOUT = 5.0
CACHED_STATEMENTS = 256

Params = Sequence[object]

RecordT = TypeVar("RecordT")
"""What a transaction publishes (the metadata store's ``EventRecord``)."""

_ALREADY_EXISTS = (sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)


def domain_error(exc: BaseException) -> errdefs.ErrdefsError | None:
    """The domain error a store failure means, or ``None`` when it is a bug.

    ``sqlite3.Error`` carries sqlite's (extended) result code; ``OverflowError``
    is what the sqlite module raises for an integer beyond int64.
    """
    if isinstance(exc, errdefs.ErrdefsError):
        return exc
    if isinstance(exc, OverflowError):
        return errdefs.InvalidArgument(f"value out of range for the metadata store: {exc}")
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return errdefs.ResourceExhausted(f"metadata database: no space left on device ({exc})")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return errdefs.Unavailable(f"metadata database is locked by another process: {exc}")
    if primary == sqlite3.SQLITE_TOOBIG:
        return errdefs.InvalidArgument(f"value too large for the metadata store: {exc}")
    if primary == sqlite3.SQLITE_CONSTRAINT:
        if code in _ALREADY_EXISTS:
            return errdefs.AlreadyExists(f"metadata: {exc}")
        return errdefs.FailedPrecondition(f"metadata: {exc}")
    return None


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the domain error a store failure in the block means (see
    :func:`domain_error`); bugs go through unchanged.

    Raises:
        errdefs.ResourceExhausted: the disk is full.
        errdefs.AlreadyExists: a uniqueness constraint failed.
        errdefs.FailedPrecondition: another constraint failed.
        errdefs.InvalidArgument: a value sqlite cannot hold.
        errdefs.Unavailable: another process held the lock too long.
    """
    try:
        yield
    except (sqlite3.Error, OverflowError) as exc:
        mapped = domain_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


class Queryable(Protocol):
    """Anything reads can run on: a :class:`Database`, :class:`Reader` or :class:`Transaction`."""

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor: ...


class Reader:
    """A read-only view of one consistent snapshot (``with db.read() as r:``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._open = True

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement in this snapshot.

        Raises:
            RuntimeError: the ``with`` block has ended.
        """
        if not self._open:
            raise RuntimeError(f"{type(self).__name__} used after its block ended")
        return self._conn.execute(sql, params)

    @property
    def cursor(self) -> sqlite3.Cursor:
        """A fresh cursor on this snapshot (what namespace-user checks receive)."""
        if not self._open:
            raise RuntimeError(f"{type(self).__name__} used after its block ended")
        return self._conn.cursor()

    def _close(self) -> None:
        self._open = False


class Transaction(Reader, Generic[RecordT]):
    """One write transaction (``with db.transaction() as tx:``).

    ``published`` holds the journal records written by this transaction, in
    sequence order; after a commit they are durable, after a rollback the list
    is empty.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.published: list[RecordT] = []


FILE_MODE = 0o600
"""The database's mode, and so its ``-wal`` and ``-shm`` (sqlite gives them the
database's): container specs, labels and leases are for root alone."""


def _make_private(file: Path) -> None:
    """Create ``file`` 0600 if missing; tighten it and its sqlite companions
    (an install from before this default) if they are looser."""
    fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = file.with_name(file.name + suffix)
        try:
            if companion.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(companion, FILE_MODE)
        except FileNotFoundError:
            pass


class Database(Generic[RecordT]):
    """A sqlite database; open it with :meth:`Database.open`.

    Not thread-safe: one owner (the metadata actor) serialises every call, and
    may hand the whole database to one worker thread at a time.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = BUSY_TIMEOUT,
        migrations: Sequence[Migration],
    ) -> Self:
        """Open (creating it and its parent directories if needed) and migrate.

        The file and its ``-wal`` and ``-shm`` are made :data:`FILE_MODE` (0600),
        also when they already existed with a looser mode.

        Args:
            path: the database file, e.g. ``<root>/io.containerd.metadata.v1.sqlite/meta.db``.
            busy_timeout: seconds to wait for another process's write lock.
            migrations: the schema to bring the file to (the store's own list).

        Returns:
            The database at the current schema version.

        Raises:
            errdefs.FailedPrecondition: the database was written by a newer
                pycontainerd (its schema version is unknown to this code).
            errdefs.Internal: ``migrations`` are not numbered 1, 2, ...
            errdefs.Unavailable: another process holds the write lock longer
                than the busy timeout.
        """
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        _make_private(file)
        conn = sqlite3.connect(
            file,
            isolation_level=None,  # autocommit: we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
            cached_statements=CACHED_STATEMENTS,
        )
        try:
            # PRAGMA takes no parameters; the value is our own int.
            conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000):d}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise errdefs.FailedPrecondition(
                    f"metadata database {file}: cannot enable WAL mode (got {mode!r})"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            db = cls(conn, file)
            db._migrate(migrations)
        except BaseException:
            conn.close()
            raise
        return db

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        check_migrations(migrations)
        # Cheap check first, then again under the write lock: another process
        # may have migrated in between. All pending steps run in one
        # transaction: a failing step leaves the file at its old version.
        if not pending(self.schema_version, migrations):
            return
        with self.transaction() as tx:
            current = tx.execute("PRAGMA user_version").fetchone()[0]
            todo = pending(current, migrations)
            cur = tx.cursor
            for migration in todo:
                migration.apply(cur)
            if todo:
                # PRAGMA takes no parameters; the value is our own int.
                cur.execute(f"PRAGMA user_version = {int(todo[-1].version)}")

    @property
    def schema_version(self) -> int:
        """The database's ``PRAGMA user_version``."""
        version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        return version

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one read statement (autocommit: it sees one snapshot)."""
        return self._conn.execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` or :meth:`read` block is open."""
        return self._conn.in_transaction

    @property
    def idle(self) -> bool:
        """Whether the connection is open and no transaction is: what a failed
        request must leave behind (its block rolled back), or the owner's
        machinery is broken."""
        try:
            return not self._conn.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False

    @contextmanager
    def transaction(self) -> Iterator[Transaction[RecordT]]:
        """One write transaction: committed when the block ends, rolled back on any exception.

        A store failure in the block or at the commit is raised as its domain
        error (:func:`store_errors`), after the rollback.

        Raises:
            errdefs.Unavailable: another process holds the write lock longer
                than the busy timeout.
            errdefs.ResourceExhausted: the disk is full.
            errdefs.AlreadyExists, errdefs.FailedPrecondition: a constraint failed.
            errdefs.InvalidArgument: a value sqlite cannot hold.
            RuntimeError: a transaction is already open on this database.
        """
        if self._conn.in_transaction:
            raise RuntimeError("metadata transaction already open (transactions do not nest)")
        self._begin("BEGIN IMMEDIATE")
        tx: Transaction[RecordT] = Transaction(self._conn)
        try:
            with store_errors():
                yield tx
                self._conn.execute("COMMIT")
        except BaseException:
            tx.published.clear()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            tx._close()

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """A read-only snapshot for several statements.

        Inside an open :meth:`transaction` it reads that transaction's state.
        """
        if self._conn.in_transaction:
            reader = Reader(self._conn)
            try:
                yield reader
            finally:
                reader._close()
            return
        self._begin("BEGIN DEFERRED")
        reader = Reader(self._conn)
        try:
            with store_errors():
                yield reader
        finally:
            reader._close()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _begin(self, statement: str) -> None:
        with store_errors():
            self._conn.execute(statement)

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __repr__(self) -> str:
        return f"<Database path={str(self.path)!r}>"
