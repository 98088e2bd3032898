"""The sqlite schema of ``meta.db``, its migrations and its value encodings.

``<root>/io.containerd.metadata.v1.sqlite/meta.db`` (containerd keeps the same
data in bolt buckets, ``metadata/buckets.go``). The schema version is sqlite's
``PRAGMA user_version``: version N means migrations 1..N have run, each in the
one transaction that :meth:`Database.open` applies them in::

    namespaces                          (v1) not namespaced themselves
    ├─ name        TEXT PRIMARY KEY         an identifier (reference §7)
    ├─ labels      BLOB                     msgpack map str -> str
    ├─ created_at  INTEGER                  µs since the Unix epoch, UTC
    └─ updated_at  INTEGER                  µs since the Unix epoch, UTC

    events                              (v1) the durable journal (DESIGN "Events")
    ├─ sequence    INTEGER PRIMARY KEY AUTOINCREMENT
    │                                       from 1, never reused: AUTOINCREMENT
    │                                       keeps the high-water mark in
    │                                       sqlite_sequence even when trimming
    │                                       empties the table
    ├─ timestamp   INTEGER                  µs since the Unix epoch, UTC
    ├─ namespace   TEXT                     no foreign key: events outlive their
    │                                       namespace, and publish needs none
    ├─ topic       TEXT                     "/namespaces/create", "/tasks/exit", ...
    ├─ event       BLOB                     msgpack map (datetimes as ext -1)
    └─ dedup_key   TEXT UNIQUE NULL         publish is a no-op when the key is
                                            held (task exits, exactly once)

    journal_meta                        (v1) key/value bookkeeping of the journal
    ├─ key         TEXT PRIMARY KEY         "trimmed_through": the highest
    └─ value       INTEGER                  sequence trimming has removed;
                                            (v2) "ingest_sequence": the last
                                            number used in a backend ingest ref

    content_blobs                       (v2) a blob's membership in a namespace
    ├─ namespace   TEXT → namespaces        (content is stored once, visible
    ├─ digest      TEXT                      per namespace: containerd's
    ├─ size        INTEGER                   v1/<ns>/content/blob/<digest>)
    ├─ labels      BLOB                     msgpack map
    ├─ created_at  INTEGER                  µs
    └─ updated_at  INTEGER                  µs; key (namespace, digest)

    content_ingests                     (v2) v1/<ns>/content/ingests/<ref>
    ├─ namespace   TEXT → namespaces
    ├─ ref         TEXT                     the client's ref
    ├─ backend_ref TEXT UNIQUE              "<ns>/<seq>/<ref>" in the local store
    ├─ expected    TEXT                     a shared blob the ingest will link
    └─ expire_at   INTEGER NULL             µs; NULL while a lease holds it;
                                            key (namespace, ref)

    leases                              (v2) v1/<ns>/leases/<id>
    ├─ namespace   TEXT → namespaces
    ├─ id          TEXT                     any string (not an identifier)
    ├─ labels      BLOB                     containerd.io/gc.expire, gc.flat, ...
    └─ created_at  INTEGER                  key (namespace, id)

    lease_resources                     (v2) what a lease holds
    ├─ namespace   TEXT                     (namespace, lease) → leases
    ├─ lease       TEXT                     ON DELETE CASCADE
    ├─ type        TEXT                     "content", "ingests", "snapshots/<sn>"
    └─ id          TEXT                     digest, ingest ref, snapshot key

    images                              (v2) v1/<ns>/images/<name>
    ├─ namespace   TEXT → namespaces
    ├─ name        TEXT
    ├─ media_type  TEXT                     the target descriptor
    ├─ digest      TEXT                       "
    ├─ size        INTEGER                    "
    ├─ annotations BLOB                       "
    ├─ labels      BLOB
    ├─ created_at  INTEGER
    └─ updated_at  INTEGER                  key (namespace, name)

    snapshots                           (v2) v1/<ns>/snapshots/<snapshotter>/<key>
    ├─ namespace   TEXT → namespaces
    ├─ snapshotter TEXT
    ├─ key         TEXT                     the namespaced key or name
    ├─ backend_key TEXT                     "<ns>/<seq>/<key>" in the snapshotter
    ├─ parent      TEXT                     namespaced name of the parent, ""
    ├─ labels      BLOB
    ├─ created_at  INTEGER
    └─ updated_at  INTEGER                  key (namespace, snapshotter, key);
                                            (v3) index (namespace, snapshotter,
                                            parent): "has children?"

    snapshot_sequences                  (v3) containerd's bucket NextSequence
    ├─ snapshotter TEXT PRIMARY KEY         "overlayfs", "native", ...
    └─ value       INTEGER                  the last <seq> used in a backend key

    containers                          (v4) v1/<ns>/containers/<id>
    ├─ namespace   TEXT → namespaces
    ├─ id          TEXT                     an identifier
    ├─ labels      BLOB
    ├─ image       TEXT                     the image name (informational)
    ├─ runtime_name TEXT                    "io.containerd.runc.v2"
    ├─ runtime_options BLOB NULL            msgpack Any {type_url, value}
    ├─ spec        BLOB NULL                msgpack Any: the OCI runtime spec
    ├─ snapshotter TEXT                     with snapshot_key: the rootfs
    ├─ snapshot_key TEXT                      (a GC root while the container exists)
    ├─ extensions  BLOB                     msgpack map name → Any
    ├─ sandbox     TEXT
    ├─ created_at  INTEGER
    └─ updated_at  INTEGER                  key (namespace, id)

Adding tables (content, images, containers, snapshots, leases, ...): write a
``_vN(cur)`` function below, append ``Migration(N, "what", _vN)`` to
:data:`MIGRATIONS`, and draw the new tables above. Never edit a migration that
has shipped; later tables that belong to a namespace reference
``namespaces(name)`` (foreign keys are on), and register a check with
:func:`pycontainerd.metadata.tables.namespaces.register_namespace_user` so that
deleting a namespace still in use answers ``FailedPrecondition``. Migrations run
inside a transaction: use ``cur.execute`` per statement, never
``executescript`` (it commits first).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack

from pycontainerd.api import errdefs
from pycontainerd.sqlite import Migration, check_migrations

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _v1(cur: sqlite3.Cursor) -> None:
    cur.execute(
        """
        CREATE TABLE namespaces (
            name TEXT PRIMARY KEY NOT NULL,
            labels BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID
        """
    )
    cur.execute(
        """
        CREATE TABLE events (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp INTEGER NOT NULL,
            namespace TEXT NOT NULL,
            topic TEXT NOT NULL,
            event BLOB NOT NULL,
            dedup_key TEXT UNIQUE
        )
        """
    )
    cur.execute(
        """
        CREATE TABLE journal_meta (
            key TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """
    )
    cur.execute("INSERT INTO journal_meta (key, value) VALUES ('trimmed_through', 0)")


def _v2(cur: sqlite3.Cursor) -> None:
    ns = "namespace TEXT NOT NULL REFERENCES namespaces(name)"
    times = "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
    cur.execute(
        f"""
        CREATE TABLE content_blobs (
            {ns}, digest TEXT NOT NULL, size INTEGER NOT NULL, labels BLOB NOT NULL,
            {times}, PRIMARY KEY (namespace, digest)
        ) WITHOUT ROWID
        """
    )
    cur.execute("CREATE INDEX content_blobs_digest ON content_blobs (digest)")
    cur.execute(
        f"""
        CREATE TABLE content_ingests (
            {ns}, ref TEXT NOT NULL, backend_ref TEXT NOT NULL UNIQUE,
            expected TEXT NOT NULL, expire_at INTEGER,
            PRIMARY KEY (namespace, ref)
        ) WITHOUT ROWID
        """
    )
    cur.execute(
        f"""
        CREATE TABLE leases (
            {ns}, id TEXT NOT NULL, labels BLOB NOT NULL, created_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, id)
        ) WITHOUT ROWID
        """
    )
    cur.execute(
        """
        CREATE TABLE lease_resources (
            namespace TEXT NOT NULL, lease TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
            PRIMARY KEY (namespace, lease, type, id),
            FOREIGN KEY (namespace, lease) REFERENCES leases (namespace, id) ON DELETE CASCADE
        ) WITHOUT ROWID
        """
    )
    cur.execute(
        f"""
        CREATE TABLE images (
            {ns}, name TEXT NOT NULL, media_type TEXT NOT NULL, digest TEXT NOT NULL,
            size INTEGER NOT NULL, annotations BLOB NOT NULL, labels BLOB NOT NULL,
            {times}, PRIMARY KEY (namespace, name)
        ) WITHOUT ROWID
        """
    )
    cur.execute(
        f"""
        CREATE TABLE snapshots (
            {ns}, snapshotter TEXT NOT NULL, key TEXT NOT NULL, backend_key TEXT NOT NULL,
            parent TEXT NOT NULL, labels BLOB NOT NULL,
            {times}, PRIMARY KEY (namespace, snapshotter, key)
        ) WITHOUT ROWID
        """
    )
    cur.execute("INSERT INTO journal_meta (key, value) VALUES ('ingest_sequence', 0)")


def _v3(cur: sqlite3.Cursor) -> None:
    cur.execute("CREATE INDEX snapshots_parent ON snapshots (namespace, snapshotter, parent)")
    cur.execute(
        """
        CREATE TABLE snapshot_sequences (
            snapshotter TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL
        ) WITHOUT ROWID
        """
    )


def _v4(cur: sqlite3.Cursor) -> None:
    cur.execute(
        """
        CREATE TABLE containers (
            namespace TEXT NOT NULL REFERENCES namespaces(name), id TEXT NOT NULL,
            labels BLOB NOT NULL, image TEXT NOT NULL, runtime_name TEXT NOT NULL,
            runtime_options BLOB, spec BLOB, snapshotter TEXT NOT NULL,
            snapshot_key TEXT NOT NULL, extensions BLOB NOT NULL, sandbox TEXT NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, id)
        ) WITHOUT ROWID
        """
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(version=1, description="namespaces and the event journal", apply=_v1),
    Migration(
        version=2,
        description="content, ingests, leases, images and snapshot ownership",
        apply=_v2,
    ),
    Migration(version=3, description="snapshot backend key sequences", apply=_v3),
    Migration(version=4, description="containers", apply=_v4),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


check_migrations(MIGRATIONS)


def to_micros(when: datetime) -> int:
    """Microseconds since the Unix epoch; a naive ``when`` is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of ``micros`` since the Unix epoch (exact)."""
    return EPOCH + timedelta(microseconds=micros)


def pack_labels(labels: Mapping[str, str]) -> bytes:
    """The stored form of a label map."""
    data: bytes = msgpack.packb(dict(labels), use_bin_type=True)
    return data


def unpack_labels(data: bytes) -> dict[str, str]:
    """A label map from its stored form."""
    labels: dict[str, str] = msgpack.unpackb(data, raw=False)
    return labels


def pack_event(event: Mapping[str, Any]) -> bytes:
    """The stored form of an event payload.

    Raises:
        errdefs.InvalidArgument: the payload holds something msgpack cannot
            carry (an object, a naive datetime, ...).
    """
    try:
        data: bytes = msgpack.packb(event, use_bin_type=True, datetime=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise errdefs.InvalidArgument(f"event: cannot be encoded: {exc}") from None
    return data


def unpack_event(data: bytes) -> dict[str, Any]:
    """An event payload from its stored form (datetimes come back aware, UTC)."""
    event: dict[str, Any] = msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)
    return event


def quote(s: str) -> str:
    """``s`` double-quoted and escaped, as Go's ``%q`` prints it in containerd's errors."""
    return json.dumps(s, ensure_ascii=False)
