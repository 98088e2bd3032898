"""The snapshotters' metadata: a transactional sqlite store (containerd ``snapshots/storage``).

Every snapshotter keeps ``<root>/metadata.db``; the backends differ only in how
they lay out and mount directories. One table, in sqlite::

    snapshots                           (v1)
    ├─ id          INTEGER PRIMARY KEY AUTOINCREMENT
    │                                   the backend's directory name; from a
    │                                   sequence, never reused (bolt NextSequence)
    ├─ key         TEXT UNIQUE          active/view key or committed name
    ├─ kind        TEXT                 "active" | "view" | "committed"
    ├─ parent_id   INTEGER NULL         REFERENCES snapshots(id): a parent with
    │                                   children cannot be deleted
    ├─ labels      TEXT                 JSON object str -> str
    ├─ created_at  INTEGER              µs since the Unix epoch, UTC
    ├─ updated_at  INTEGER              µs since the Unix epoch, UTC
    ├─ size        INTEGER              usage recorded at commit (committed only)
    └─ inodes      INTEGER

Committing keeps the row's ``id`` (the directory stays where it is) and changes
its key, kind, labels and timestamps. ``parent_ids`` lists the ancestors
immediate parent first, base last: the order of overlay's ``lowerdir=``.

Use: ``with ms.transaction(writable=True) as st:`` then ``st.create_snapshot``,
``st.commit_active``, ...; an exception inside the block rolls everything back,
so a backend does its filesystem work inside the block and only irreversible
deletions after it (containerd's ``WithTransaction``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Never

import attrs

from pycontainerd.api import errdefs, filters, labels
from pycontainerd.sqlite import Database, Migration, Queryable

from ._interfaces import Info, Kind, Usage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _v1(cur: sqlite3.Cursor) -> None:
    cur.execute(
        """
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
            parent_id INTEGER NULL REFERENCES snapshots(id) ON DELETE RESTRICT,
            labels TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            inodes INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    cur.execute("CREATE INDEX snapshots_parent ON snapshots(parent_id)")


MIGRATIONS = (Migration(version=1, description="snapshots table", apply=_v1),)


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _now() -> datetime:
    # Truncated to what the database keeps, so returned and stored values agree.
    return _from_micros(_micros(datetime.now(UTC)))


@attrs.frozen(kw_only=True)
class Snapshot:
    """What a backend needs to lay out and mount a snapshot (containerd ``storage.Snapshot``)."""

    id: str
    kind: Kind
    parent_ids: tuple[str, ...] = ()


def _check_labels(values: Mapping[str, str] | None) -> dict[str, str]:
    result = {k: v for k, v in (values or {}).items() if v != ""}
    labels.validate_labels(result)
    return result


_SELECT = """
    SELECT s.id, s.key, s.kind, COALESCE(p.key, ''), s.labels, s.created_at, s.updated_at,
           s.size, s.inodes
    FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id
"""

_Row = tuple[int, str, str, str, str, int, int, int, int]


def _info(row: _Row) -> Info:
    return Info(
        kind=Kind(row[2]),
        name=row[1],
        parent=row[3],
        labels=json.loads(row[4]),
        created_at=_from_micros(row[5]),
        updated_at=_from_micros(row[6]),
    )


class Storage:
    """One transaction's view of the metastore; valid inside its ``with`` block only."""

    def __init__(self, q: Queryable) -> None:
        self._q = q

    def _row(self, key: str) -> _Row:
        row: _Row | None = self._q.execute(_SELECT + " WHERE s.key = ?", (key,)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"snapshot {key!r} does not exist")
        return row

    def _parent_ids(self, parent_id: int | None) -> tuple[str, ...]:
        ids: list[str] = []
        while parent_id is not None:
            ids.append(str(parent_id))
            (parent_id,) = self._q.execute(
                "SELECT parent_id FROM snapshots WHERE id = ?", (parent_id,)
            ).fetchone()
        return tuple(ids)

    def get_info(self, key: str) -> tuple[str, Info, Usage]:
        """``(id, info, usage)`` of any snapshot; usage is the stored one (committed).

        Raises:
            errdefs.NotFound: no such key.
        """
        row = self._row(key)
        return str(row[0]), _info(row), Usage(row[7], row[8])

    def get_snapshot(self, key: str) -> Snapshot:
        """The mountable snapshot ``key`` (containerd ``storage.GetSnapshot``).

        Raises:
            errdefs.NotFound: no such key.
            errdefs.FailedPrecondition: it is committed ("not active or view").
        """
        row = self._row(key)
        kind = Kind(row[2])
        if kind is Kind.COMMITTED:
            raise errdefs.FailedPrecondition(f"snapshot {key!r} is not active or view")
        (parent_id,) = self._q.execute(
            "SELECT parent_id FROM snapshots WHERE id = ?", (row[0],)
        ).fetchone()
        return Snapshot(id=str(row[0]), kind=kind, parent_ids=self._parent_ids(parent_id))

    def create_snapshot(
        self, kind: Kind, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> Snapshot:
        """Record a new active snapshot or view (containerd ``storage.CreateSnapshot``).

        Raises:
            errdefs.InvalidArgument: ``kind`` is committed, ``parent`` is not
                committed, or a label is invalid.
            errdefs.NotFound: ``parent`` does not exist.
            errdefs.AlreadyExists: ``key`` is taken.
        """
        if kind is Kind.COMMITTED:
            raise errdefs.InvalidArgument(
                f"snapshot kind {kind.value} invalid: only active or view snapshots can be created"
            )
        stored = _check_labels(labels)
        parent_id: int | None = None
        if parent:
            row = self._q.execute(
                "SELECT id, kind FROM snapshots WHERE key = ?", (parent,)
            ).fetchone()
            if row is None:
                raise errdefs.NotFound(f"parent snapshot {parent!r} does not exist")
            if row[1] != Kind.COMMITTED.value:
                raise errdefs.InvalidArgument(f"parent {parent!r} is not a committed snapshot")
            parent_id = row[0]
        if self._q.execute("SELECT 1 FROM snapshots WHERE key = ?", (key,)).fetchone():
            raise errdefs.AlreadyExists(f"snapshot {key!r} already exists")
        now = _micros(_now())
        cur = self._q.execute(
            "INSERT INTO snapshots (key, kind, parent_id, labels, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key, kind.value, parent_id, json.dumps(stored, sort_keys=True), now, now),
        )
        return Snapshot(id=str(cur.lastrowid), kind=kind, parent_ids=self._parent_ids(parent_id))

    def commit_active(
        self, key: str, name: str, usage: Usage, labels: Mapping[str, str] | None = None
    ) -> str:
        """Turn active ``key`` into committed ``name`` keeping its id (``storage.CommitActive``).

        The committed snapshot gets only ``labels`` (the active one's are
        dropped, as in containerd) and fresh timestamps.

        Returns:
            The snapshot's id.

        Raises:
            errdefs.AlreadyExists: ``name`` is taken (checked first).
            errdefs.NotFound: ``key`` does not exist.
            errdefs.FailedPrecondition: ``key`` is not active.
            errdefs.InvalidArgument: a label is invalid.
        """
        stored = _check_labels(labels)
        # containerd's order: the name is taken, then the key is missing, then not active.
        if self._q.execute("SELECT 1 FROM snapshots WHERE key = ?", (name,)).fetchone():
            raise errdefs.AlreadyExists(f"committed snapshot {name!r} already exists")
        row = self._row(key)
        if row[2] != Kind.ACTIVE.value:
            raise errdefs.FailedPrecondition(
                f"snapshot {key!r} is {row[2]}, only an active snapshot can be committed"
            )
        now = _micros(_now())
        self._q.execute(
            "UPDATE snapshots SET key = ?, kind = ?, labels = ?, created_at = ?, updated_at = ?,"
            " size = ?, inodes = ? WHERE id = ?",
            (
                name,
                Kind.COMMITTED.value,
                json.dumps(stored, sort_keys=True),
                now,
                now,
                usage.size,
                usage.inodes,
                row[0],
            ),
        )
        return str(row[0])

    def remove(self, key: str) -> tuple[str, Kind]:
        """Delete ``key``'s record (containerd ``storage.Remove``).

        Returns:
            ``(id, kind)`` of the removed snapshot, for the backend to delete.

        Raises:
            errdefs.NotFound: no such key.
            errdefs.FailedPrecondition: "cannot remove snapshot with child".
        """
        row = self._row(key)
        if self._q.execute("SELECT 1 FROM snapshots WHERE parent_id = ?", (row[0],)).fetchone():
            raise errdefs.FailedPrecondition(f"cannot remove snapshot with child: {key!r}")
        self._q.execute("DELETE FROM snapshots WHERE id = ?", (row[0],))
        return str(row[0]), Kind(row[2])

    def update_info(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """Update labels (containerd ``storage.UpdateInfo``); see ``Snapshotter.update``.

        Raises:
            errdefs.NotFound: no such snapshot.
            errdefs.InvalidArgument: an immutable path, or an invalid label.
        """
        row = self._row(info.name)
        current = _info(row)
        updated = dict(current.labels)
        if not paths:
            updated = dict(info.labels)
        for path in paths:
            if path.startswith("labels."):
                label = path.removeprefix("labels.")
                updated[label] = info.labels.get(label, "")
            elif path == "labels":
                updated = dict(info.labels)
            else:
                raise errdefs.InvalidArgument(
                    f"cannot update {path!r} field on snapshot {info.name!r}"
                )
        stored = _check_labels(updated)
        now = _now()
        self._q.execute(
            "UPDATE snapshots SET labels = ?, updated_at = ? WHERE id = ?",
            (json.dumps(stored, sort_keys=True), _micros(now), row[0]),
        )
        return attrs.evolve(current, labels=stored, updated_at=now)

    def walk_info(self, filter_strings: Sequence[str] = ()) -> list[Info]:
        """Every snapshot matching the filters, in key order (``storage.WalkInfo``).

        Raises:
            errdefs.InvalidArgument: a filter does not parse.
        """
        match = filters.parse_all(list(filter_strings))
        result: list[Info] = []
        for row in self._q.execute(_SELECT + " ORDER BY s.key"):
            info = _info(row)
            fields = {
                "name": info.name,
                "parent": info.parent,
                "kind": info.kind.value,
                "labels": dict(info.labels),
            }
            if match.match(filters.adapt(fields)):
                result.append(info)
        return result

    def id_map(self) -> dict[str, str]:
        """Every snapshot id mapped to its key (containerd ``storage.IDMap``)."""
        return {str(i): k for i, k in self._q.execute("SELECT id, key FROM snapshots")}


class MetaStore:
    """``<root>/metadata.db`` of one snapshotter (containerd ``storage.MetaStore``).

    Thread-safe: transactions are serialised by a lock, so the daemon may call
    a snapshotter from several worker threads.
    """

    def __init__(self, db: Database[Never]) -> None:
        self._db = db  # publishes nothing: no journal here
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: str | Path) -> MetaStore:
        """Open (creating and migrating) the metastore at ``path``.

        Raises:
            errdefs.FailedPrecondition: written by a newer pycontainerd.
        """
        return cls(Database.open(path, migrations=MIGRATIONS))

    @contextlib.contextmanager
    def transaction(self, *, writable: bool) -> Iterator[Storage]:
        """A write transaction (committed at the end of the block) or a read snapshot.

        Raises:
            errdefs.Unavailable: the store is closed, or another process holds
                the database's write lock.
        """
        with self._lock:
            if self._closed:
                raise errdefs.Unavailable("snapshotter metadata store is closed")
            if writable:
                with self._db.transaction() as tx:
                    yield Storage(tx)
            else:
                with self._db.read() as r:
                    yield Storage(r)

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
